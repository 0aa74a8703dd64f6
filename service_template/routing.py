"""A service's own HTTP routes: how they are declared and checked (the serving is in ``http/``).

    from service_template import MicroService, Route
    from service_template.http import ServiceHandler

    class StripeWebhook(ServiceHandler):
        async def post(self) -> None:
            await self.service.record_payment(self.request.body)
            self.set_status(204)

    class Billing(MicroService):
        routes = [Route("/webhooks/stripe", StripeWebhook, max_body_bytes=256 * 1024)]

A path is a Tornado route pattern (a regular expression matched against the whole path; its
groups become the handler's arguments) and is also the ``route`` label of the metrics, so
label values stay bounded. Paths the runtime serves itself cannot be taken.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

RESERVED_PATHS = ("/api", "/livez", "/readyz", "/metrics", "/openrpc.json")


@dataclass(frozen=True)
class Route:
    """One declared route: ``handler`` (a Tornado ``RequestHandler`` subclass) serves ``path``.

    ``max_body_bytes`` caps request bodies (413 above; the ``route_max_body_bytes`` setting
    when None). ``kwargs`` go to the handler's ``initialize``, as in Tornado.
    """

    path: str
    handler: type
    max_body_bytes: int | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Compiled:
    route: Route
    pattern: re.Pattern[str]
    limit: int


class RouteTable:
    """The declared routes, checked, in order; finds the one serving a path."""

    def __init__(self, declared: Sequence[Route | tuple[str, type]], default_limit: int) -> None:
        """Raise ``ValueError`` listing every problem, each naming its route."""
        problems: list[str] = []
        self.entries: list[_Compiled] = []
        seen: set[str] = set()
        for item in declared:
            route = _as_route(item)
            if route is None:
                problems.append(f"{item!r}: declare a route as Route(path, handler)")
                continue
            where = f"route {route.path!r}"
            pattern = _compile(route.path)
            if pattern is None:
                problems.append(f"{where}: path must start with '/' and be a valid pattern")
                continue
            taken = [path for path in RESERVED_PATHS if pattern.fullmatch(path)]
            if taken:
                problems.append(f"{where}: {', '.join(taken)} is served by the runtime")
                continue
            if route.path in seen:
                problems.append(f"{where}: declared twice")
                continue
            limit = route.max_body_bytes
            if limit is None:
                limit = default_limit
            elif type(limit) is not int or limit < 0:
                problems.append(f"{where}: max_body_bytes must be a whole number >= 0")
                continue
            seen.add(route.path)
            self.entries.append(_Compiled(route, pattern, limit))
        if problems:
            raise ValueError("invalid routes:\n  " + "\n  ".join(problems))

    @property
    def routes(self) -> list[Route]:
        return [entry.route for entry in self.entries]

    def match(self, path: str) -> tuple[Route, int] | None:
        """The first route whose pattern matches ``path`` and its body limit, or None."""
        for entry in self.entries:
            if entry.pattern.fullmatch(path):
                return entry.route, entry.limit
        return None


def _as_route(item: object) -> Route | None:
    if isinstance(item, Route):
        route = item
    elif isinstance(item, tuple) and len(item) == 2:
        route = Route(*item)
    else:
        return None
    if not isinstance(route.path, str) or not isinstance(route.handler, type):
        return None
    return route


def _compile(path: str) -> re.Pattern[str] | None:
    if not path.startswith("/"):
        return None
    try:
        return re.compile(path)
    except re.error:
        return None
