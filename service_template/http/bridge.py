"""The bridge that lets a ``tornado.web.Application`` answer requests on our connections.

Every path except ``/api`` (health, metrics, OpenRPC, 404s) is served by Tornado's web
application (``routes.py``) on the same event loop: the wire protocol hands it the complete
request through Tornado's ``HTTPConnection`` interface and sends the response it builds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tornado import httputil, web

from .framing import date_line
from .limits import Limits

if TYPE_CHECKING:
    from .framing import Refusal
    from .request import Request
    from .wire import Connection


class TornadoRoutes:
    """Serves requests with a Tornado web application (a ``request.Handler``)."""

    def __init__(self, app: web.Application, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    def body_limit(self, request: Request) -> int:
        return self.limits.other_routes_max_body

    def check(self, request: Request) -> Refusal | None:
        return None

    def serve(self, request: Request, conn: Connection) -> None:
        _Exchange(self.app, conn, request).run()


def serve_with_app(
    app: web.Application,
    request: Request,
    conn: Connection,
    on_finish: Callable[[int], None] | None = None,
) -> None:
    """Answer ``request`` with ``app``; ``on_finish(status)`` runs when the response is sent."""
    _Exchange(app, conn, request, on_finish).run()


class _Context:
    """What Tornado's HTTPServerRequest reads from ``connection.context``."""

    __slots__ = ("protocol", "remote_ip")

    def __init__(self, remote_ip: str) -> None:
        self.remote_ip = remote_ip
        self.protocol = "http"


class _Exchange(httputil.HTTPConnection):
    """One request answered by the application, from memory."""

    def __init__(
        self,
        app: web.Application,
        conn: Connection,
        request: Request,
        on_finish: Callable[[int], None] | None = None,
    ) -> None:
        self.app = app
        self.on_finish = on_finish
        self.conn = conn
        self.request = request
        self.context = _Context(conn.peer)
        self.status = 200
        self.reason = "OK"
        self.headers = httputil.HTTPHeaders()
        self.chunks: list[bytes] = []
        self.done = False

    def run(self) -> None:
        request = self.request
        delegate = self.app.start_request(self.conn, self)
        start_line = httputil.RequestStartLine(request.method, request.target, "HTTP/1.1")
        headers = httputil.HTTPHeaders()
        for name, value in request.all_headers():
            headers.add(name, value)
        if "Host" not in headers:
            # HTTP/1.0 needs no Host (the wire refuses a 1.1 request without one), but
            # Tornado's request object insists on it: the server's own name stands in
            # (RFC 9112 3.3, the default authority). Without it the request went unanswered.
            headers["Host"] = "localhost"
        delegate.headers_received(start_line, headers)
        if request.body:
            delegate.data_received(request.body)
        delegate.finish()

    def _resolved(self) -> asyncio.Future[None]:
        future: asyncio.Future[None] = self.conn.loop.create_future()
        future.set_result(None)
        return future

    def write_headers(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
        chunk: bytes | None = None,
    ) -> asyncio.Future[None]:
        assert isinstance(start_line, httputil.ResponseStartLine)
        self.status, self.reason, self.headers = start_line.code, start_line.reason, headers
        if chunk:
            self.chunks.append(chunk)
        return self._resolved()

    def write(self, chunk: bytes) -> asyncio.Future[None]:
        self.chunks.append(chunk)
        return self._resolved()

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        body = b"".join(self.chunks)
        headers = self.headers
        if self.status not in (204, 304) and "Content-Length" not in headers:
            headers["Content-Length"] = str(len(body))
        headers["X-Request-Id"] = self.request.request_id
        close = self.conn.will_close(self.request)
        if close:
            headers["Connection"] = "close"
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines.extend(f"{name}: {value}" for name, value in headers.get_all())
        head = ("\r\n".join(lines) + "\r\n").encode("latin-1")
        if "Date" not in headers:
            head += date_line()
        if self.request.method == "HEAD":
            body = b""
        self.conn.respond_raw(self.request, head + b"\r\n", body, close)
        if self.on_finish is not None:
            self.on_finish(self.status)

    def set_close_callback(self, callback: Any) -> None:
        """Not needed: the bridge answers from memory."""

    def set_max_body_size(self, max_body_size: int) -> None:
        """The connection enforces body limits itself."""

    def set_body_timeout(self, timeout: float) -> None:
        """The connection enforces timeouts itself."""
