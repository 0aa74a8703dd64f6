"""CORS for ``/api``: which web pages of other origins may call the service from a browser.

Off by default: with ``cors_origins`` empty no response carries a CORS header, and a browser
keeps every other origin's page from reading ``/api`` (its own same-origin policy). With origins
listed (``https://app.example.com``, exactly as a browser sends ``Origin``: scheme, host, port
when not the default, nothing else), a request from one of them gets
``Access-Control-Allow-Origin`` naming it, and its preflight (``OPTIONS`` with
``Access-Control-Request-Method: POST``) is answered ``204`` with the methods and request
headers allowed (``Content-Type``, ``X-Request-Id`` and the headers the service's token
strategies read) and ``Access-Control-Max-Age``. ``Access-Control-Allow-Credentials`` (cookies
sent by the browser) only with ``cors_allow_credentials``. A request from any other origin gets
no CORS header at all, so the browser refuses the page the response. While CORS is on, every
``/api`` response says ``Vary: Origin``: what it carries depends on the caller's origin.

There is no wildcard: a service that names its callers cannot be called by every page on the
web by mistake (and credentials with ``*`` are forbidden by the Fetch standard anyway).
"""

from __future__ import annotations

from collections.abc import Iterable

from ..auth import BearerStrategy, HeaderStrategy, TokenStrategy
from .framing import Headers

ALLOWED_METHODS = "POST"
# Besides the token strategies' own headers: the body's type, and the id a caller may set to
# follow its request through the logs.
BASE_HEADERS = ("Content-Type", "X-Request-Id")
EXPOSED_HEADERS = "X-Request-Id"  # readable by the page (simple headers are readable anyway)


def token_headers(strategies: Iterable[TokenStrategy]) -> tuple[str, ...]:
    """The request headers the token strategies read (cookies need no header of their own:
    the browser sends them with credentials)."""
    found = []
    for strategy in strategies:
        if isinstance(strategy, HeaderStrategy):
            found.append(strategy.header)
        elif isinstance(strategy, BearerStrategy):
            found.append("Authorization")
    return tuple(found)


class CORSPolicy:
    """The CORS answer of ``/api`` for each caller origin; build it with ``make_policy``."""

    __slots__ = ("_allowed", "_credentials", "_preflight")

    def __init__(
        self,
        origins: Iterable[str],
        *,
        allow_headers: Iterable[str],
        max_age: int,
        credentials: bool,
    ) -> None:
        self._credentials = credentials
        names = dict.fromkeys(h.lower() for h in (*BASE_HEADERS, *allow_headers))
        self._allowed: dict[str, Headers] = {}
        self._preflight: dict[str, Headers] = {}
        for origin in origins:
            common: Headers = (("Access-Control-Allow-Origin", origin), ("Vary", "Origin"))
            if credentials:
                common += (("Access-Control-Allow-Credentials", "true"),)
            self._allowed[origin] = (*common, ("Access-Control-Expose-Headers", EXPOSED_HEADERS))
            self._preflight[origin] = (
                *common,
                ("Access-Control-Allow-Methods", ALLOWED_METHODS),
                ("Access-Control-Allow-Headers", ", ".join(names)),
                ("Access-Control-Max-Age", str(max_age)),
            )

    def headers_for(self, origin: str | None) -> Headers:
        """The CORS headers of a response to a request from ``origin`` (the ``Origin``
        header, None when absent or sent twice): ``Vary: Origin`` alone unless it is allowed."""
        if origin is not None:
            allowed = self._allowed.get(origin)
            if allowed is not None:
                return allowed
        return _VARY

    def preflight(self, origin: str | None, method: str | None) -> Headers | None:
        """The headers of the ``204`` answer to a preflight from ``origin`` asking for
        ``method`` (``Access-Control-Request-Method``); None when it is not one to allow."""
        if origin is None or method != ALLOWED_METHODS:
            return None
        return self._preflight.get(origin)


_VARY: Headers = (("Vary", "Origin"),)


def make_policy(
    origins: Iterable[str],
    strategies: Iterable[TokenStrategy],
    *,
    max_age: int,
    credentials: bool,
) -> CORSPolicy | None:
    """The policy for these settings, or None when no origin is listed (CORS off)."""
    listed = tuple(origins)
    if not listed:
        return None
    return CORSPolicy(
        listed, allow_headers=token_headers(strategies), max_age=max_age, credentials=credentials
    )
