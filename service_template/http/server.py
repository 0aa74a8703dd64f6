"""Tornado's HTTP server with a root delegate that routes ``/api`` to the lean path and
everything else to the web application; start, and drain on shutdown.

Tornado's own defaults do not fit a service (100 MiB bodies answered with 400, no body
timeout, an hour of idle keep-alive): they are replaced from the settings here.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable

from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from ..runtime import Runtime
from .api import API_PATH, APIRequest
from .routes import make_app

log = logging.getLogger("service_template.http")

# Bodies on the GET routes are never needed; refuse big ones before Tornado buffers them.
_OTHER_ROUTES_MAX_BODY = 64 * 1024
# /api counts its own body (to answer 413), so Tornado's limit must never trigger first.
_UNLIMITED = 1 << 62


class _RootDelegate(httputil.HTTPServerConnectionDelegate):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.app = make_app(runtime)

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        return _Router(self, server_conn, request_conn)

    def on_close(self, server_conn: object) -> None:
        self.app.on_close(server_conn)


class _Router(httputil.HTTPMessageDelegate):
    """Chooses the delegate for one request once its start line is known."""

    __slots__ = ("request_conn", "root", "server_conn", "target")

    def __init__(
        self, root: _RootDelegate, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> None:
        self.root = root
        self.server_conn = server_conn
        self.request_conn = request_conn
        self.target: httputil.HTTPMessageDelegate | None = None

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Awaitable[None] | None:
        assert isinstance(start_line, httputil.RequestStartLine)
        if start_line.path.partition("?")[0] == API_PATH:
            self.target = APIRequest(self.root.runtime, self.request_conn)
        else:
            self.request_conn.set_max_body_size(_OTHER_ROUTES_MAX_BODY)  # type: ignore[attr-defined]
            self.target = self.root.app.start_request(self.server_conn, self.request_conn)
        return self.target.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        assert self.target is not None
        return self.target.data_received(chunk)

    def finish(self) -> None:
        assert self.target is not None
        self.target.finish()

    def on_connection_close(self) -> None:
        if self.target is not None:
            self.target.on_connection_close()


class Server:
    """The HTTP side of one service process."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.http = HTTPServer(
            _RootDelegate(runtime),
            idle_connection_timeout=settings.idle_timeout,  # also bounds slow headers
            body_timeout=settings.body_timeout,  # a slow body is cut off after this
            max_body_size=_UNLIMITED,
            decompress_request=False,
        )
        self.port = 0

    def listen(self, sockets: list[socket.socket] | None = None) -> int:
        """Start accepting on ``sockets`` (bound already by a pre-fork parent) or on newly
        bound ones; returns the port (useful with port 0)."""
        if sockets is None:
            settings = self.runtime.settings
            sockets = bind_sockets(settings.port, settings.host)
        self.http.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        return self.port

    async def drain(self) -> None:
        """Fail readiness, close the listener, let admitted requests finish (up to the drain
        deadline), then close every connection."""
        runtime = self.runtime
        runtime.draining = True
        self.http.stop()
        finished = await runtime.wait_idle(runtime.settings.drain_timeout)
        if not finished:
            log.warning("drain deadline passed with %d requests in flight", runtime.in_flight)
        await self.http.close_all_connections()
