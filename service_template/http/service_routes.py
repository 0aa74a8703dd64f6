"""A service's own routes: ``ServiceHandler``, the Tornado rules, and ``ServiceRoutes``, the
``request.Handler`` that serves them through the bridge.

Requests reach these handlers through the same wire protocol as ``/api``: the same request
id (``X-Request-Id`` honoured or made, and echoed), a body limit (per route), an access line,
metrics and drain (an answer in progress delays the drain up to its deadline).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import tornado.web

from ..errors import StartupError
from ..protocol import codec
from ..protocol.calls import HeaderView
from .bridge import serve_with_app

if TYPE_CHECKING:
    from ..routing import Route
    from ..runtime import Runtime
    from .framing import Refusal
    from .request import Request
    from .wire import Connection


class ServiceHandler(tornado.web.RequestHandler):
    """Base class of a service's route handler: ``self.service`` is the service instance,
    ``self.request_id`` the request's id (logs, peers) and ``await self.authenticate()`` the
    caller's principal as ``/api`` sees it (``MicroService.authenticate``). Errors are answered
    as JSON ``{"error": reason}``, never with a traceback. A route's ``kwargs`` go to
    ``initialize`` as in Tornado."""

    @property
    def service(self) -> Any:
        """The service instance (any handler finds it in ``application.settings["service"]``)."""
        return self.application.settings["service"]

    async def authenticate(self) -> Any:
        """The principal of this request, or None; fails closed like ``/api``."""
        runtime: Runtime = self.application.settings["runtime"]
        return await runtime.access.authenticate(HeaderView(self.request.headers))

    @property
    def request_id(self) -> str:
        connection = self.request.connection
        request = getattr(connection, "request", None)
        request_id = getattr(request, "request_id", "")
        return request_id if isinstance(request_id, str) else ""

    def set_default_headers(self) -> None:
        self.clear_header("Server")  # do not advertise the framework or its version

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(codec.dumps({"error": self._reason}))


def service_rules(runtime: Runtime) -> list[tuple[str, type[tornado.web.RequestHandler], Any]]:
    """Tornado rules for the service's declared routes; ``StartupError`` names a route whose
    handler is not a ``RequestHandler``."""
    rules: list[tuple[str, type[tornado.web.RequestHandler], Any]] = []
    problems: list[str] = []
    for route in runtime.routes.routes:
        handler = route.handler
        if not issubclass(handler, tornado.web.RequestHandler):
            problems.append(f"route {route.path!r}: {handler!r} is not a tornado RequestHandler")
            continue
        rules.append((route.path, handler, dict(route.kwargs)))
    if problems:
        raise StartupError("invalid routes:\n  " + "\n  ".join(problems))
    return rules


class ServiceRoutes:
    """Finds the declared route serving a path (``runtime.routes``)."""

    def __init__(self, app: tornado.web.Application, runtime: Runtime) -> None:
        self.table = runtime.routes
        self.handlers = {
            entry.route.path: _RouteHandler(app, runtime, entry.route, entry.limit)
            for entry in runtime.routes.entries
        }

    def find(self, path: str) -> _RouteHandler | None:
        if not self.handlers:
            return None
        match = self.table.match(path)
        return None if match is None else self.handlers[match[0].path]


class _RouteHandler:
    """Serves one declared route (a ``request.Handler``): its body limit, then the Tornado
    application, then its access line and metrics."""

    def __init__(
        self, app: tornado.web.Application, runtime: Runtime, route: Route, limit: int
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.template = route.path
        self.limit = limit

    def body_limit(self, request: Request) -> int:
        return self.limit

    def check(self, request: Request) -> Refusal | None:
        return None

    def serve(self, request: Request, conn: Connection) -> None:
        started = conn.loop.time()

        def finished(status: int) -> None:
            seconds = conn.loop.time() - started
            self.runtime.observe_route(
                self.template, request.method, status, seconds, request.request_id
            )

        serve_with_app(self.app, request, conn, finished)
