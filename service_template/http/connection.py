"""HTTP/1.1 connections on asyncio, parsed by httptools (llhttp, the parser uvicorn uses).

Why not Tornado's own HTTP1Connection: measured here, a bare HTTPServerConnectionDelegate that
returns a fixed body tops out near 12k requests/s on one core, below what aiohttp-rpc serves
with all its JSON-RPC work; an asyncio protocol on httptools serves the same fixed body at about
98k/s. So the connection layer is ours, and Tornado keeps what it is good at: the web
application that serves every route except ``/api`` (health, metrics, OpenRPC), through a small
``HTTPConnection`` bridge, on the same event loop.

One ``Connection`` per TCP connection. Requests are answered in order (pipelining-safe): while
one is being answered, later ones wait and reading pauses. Timeouts cost nothing per request:
each connection keeps a deadline that a sweeper (``HTTPServer``) checks twice a second.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import re
import select
from typing import TYPE_CHECKING, Any

import httptools
from tornado import httputil

from ..protocol import codec
from ..protocol.calls import HeaderView
from ..protocol.errors import InternalError, InvalidRequest, RPCError, ServerOverloaded
from ..protocol.methods import Params

if TYPE_CHECKING:
    from ..runtime import Runtime
    from .server import HTTPServer

log = logging.getLogger("service_template.http")

API_PATH = "/api"
JSON_TYPES = frozenset({"application/json", "application/json-rpc", "application/jsonrequest"})
MAX_HEADER_BYTES = 64 * 1024
RUNTIME_ROUTES_MAX_BODY = 64 * 1024  # the runtime's GET routes never need a body
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_REASONS = {
    200: b"OK",
    204: b"No Content",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    408: b"Request Timeout",
    413: b"Content Too Large",
    415: b"Unsupported Media Type",
    431: b"Request Header Fields Too Large",
    500: b"Internal Server Error",
    503: b"Service Unavailable",
}


_STATUS_LINES = {
    status: b"HTTP/1.1 %d %s\r\n" % (status, reason) for status, reason in _REASONS.items()
}


def error_body(error: RPCError) -> bytes:
    """A JSON-RPC error response with id null, for refusals made before dispatch."""
    return codec.dumps({"jsonrpc": "2.0", "error": error.to_dict(), "id": None})


class Request:
    """One HTTP request, from its first byte to its response; the protocol's ``CallContext``."""

    __slots__ = (
        "admitted",
        "body",
        "chunks",
        "conn",
        "headers",
        "keep_alive",
        "method",
        "path",
        "reject",
        "request_id",
        "route",
        "size",
        "started",
        "url",
    )

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.url = b""
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.size = 0
        self.method = ""
        self.path = ""
        self.body = b""
        self.keep_alive = True
        self.admitted = False
        self.request_id = ""
        # A service's own route serving this path (its pattern, its body limit), if any.
        self.route: tuple[str, int] | None = None
        self.started = 0.0  # loop time at the end of the headers, for a route's duration
        # (status, body, extra headers) when the request is refused before dispatch
        self.reject: tuple[int, bytes, tuple[tuple[str, str], ...]] | None = None

    def get(self, name: str, /) -> str | None:
        """Case-insensitive header lookup (the ``auth.Headers`` interface)."""
        return self.headers.get(name.lower())

    # -- CallContext (protocol seam) ------------------------------------------------------------

    async def authenticate(self) -> Any:
        return await self.conn.runtime.authenticate(HeaderView(self.headers))

    def record(
        self, method: str, request_id: Any, params: Params, code: int | None, seconds: float
    ) -> None:
        runtime = self.conn.runtime
        if runtime.metrics is not None:
            runtime.metrics.observe_call(method, code, seconds)
        if runtime.call_log is not None:
            runtime.call_log(
                method, request_id, params, code, seconds, http_request_id=self.request_id
            )


class Connection(asyncio.Protocol):
    """One client connection."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.runtime: Runtime = server.runtime
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.current: Request | None = None  # being received
        self.pending: collections.deque[Request] = collections.deque()  # received, waiting
        self.busy = False  # a request is being answered
        self.closing = False
        self.broken = False  # a later request was refused: close after the current response
        self.reading = True
        self.header_bytes = 0
        self.deadline: float | None = None  # when the sweeper closes this connection
        self.peer = ""
        self.opened = self.loop.time()
        self.served = 0  # responses written
        self.eof = False  # the client closed its sending side
        # A request that offered an upgrade (h2c): llhttp stops at its headers, so its body
        # (Content-Length bytes) is read here before parsing goes on. (request, bytes missing)
        self.upgrade_body: tuple[Request, int] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else ""
        self.server.connections.add(self)
        self.deadline = self.loop.time() + self.runtime.settings.idle_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        for request in (self.current, *self.pending):
            if request is not None and request.admitted:  # received, never dispatched
                request.admitted = False
                self.runtime.release()
        self.pending.clear()
        self.current = None

    def data_received(self, data: bytes) -> None:
        if self.closing or self.broken:
            return
        if self.header_bytes >= 0:  # between requests or inside headers
            end = data.find(b"\r\n\r\n")  # count header bytes only, not a body in the same chunk
            self.header_bytes += len(data) if end < 0 else end
            if self.header_bytes > MAX_HEADER_BYTES:
                self._refuse_now(431, b"")
                return
        if self.upgrade_body is not None:
            data = self._read_upgrade_body(data)
            if not data:
                return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args and isinstance(exc.args[0], int) else len(data)
            self._ignore_upgrade(data[offset:])
        except httptools.HttpParserError:
            if not self.closing:
                self._refuse_now(400, error_body(InvalidRequest("Malformed HTTP request")))

    def eof_received(self) -> bool:
        """The client half-closed: answer what it sent, then close (keep writing till then)."""
        self.eof = True
        # True keeps the transport open for the responses still owed; False (idle) closes it.
        return self.busy or self.current is not None or bool(self.pending)

    def pause_writing(self) -> None:
        # The client is not reading its responses: stop reading its requests too.
        self._pause_reading()

    def resume_writing(self) -> None:
        if not self.pending:
            self._resume_reading()

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.current = Request(self)
        self.header_bytes = 0
        # One deadline for the headers and the body: a slow client is cut off after it.
        self.deadline = self.loop.time() + self.runtime.settings.body_timeout

    def on_url(self, url: bytes) -> None:
        assert self.current is not None
        self.current.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.current is not None
        self.current.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        request = self.current
        assert request is not None
        self.header_bytes = -1  # headers done: stop counting
        request.method = self.parser.get_method().decode("latin-1")
        request.path = request.url.decode("latin-1").partition("?")[0]
        request.keep_alive = self.parser.should_keep_alive()
        given = request.headers.get("x-request-id")
        request.request_id = (
            given if given is not None and _REQUEST_ID_RE.match(given) else os.urandom(8).hex()
        )
        if request.path == API_PATH:
            self._check_api(request)
        else:
            match = self.runtime.routes.match(request.path)
            if match is not None:
                request.route = (match[0].path, match[1])
                request.started = self.loop.time()
        limit = self._body_limit(request)
        if _content_length(request) > limit:
            self._too_large(request, limit)  # at once: no point reading a body we refuse
            return
        if request.headers.get("expect", "").lower() == "100-continue" and request.reject is None:
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        request = self.current
        if request is None or self.closing:
            return
        request.size += len(body)
        limit = self._body_limit(request)
        if request.size > limit:
            self._too_large(request, limit)
        elif request.reject is None:
            request.chunks.append(body)

    def on_message_complete(self) -> None:
        request = self.current
        if request is None or self.closing:
            return
        self.current = None
        if self.parser.should_upgrade():
            # RFC 9110 7.8: a server may ignore an Upgrade offer. llhttp ends the message at its
            # headers here; its body, if any, is read by _ignore_upgrade before dispatch.
            self.upgrade_body = (request, _content_length(request))
            return
        self._complete(request)

    def _complete(self, request: Request) -> None:
        self.deadline = None  # no timeout while the request is answered: calls have deadlines
        self.header_bytes = 0  # the next request's headers start now
        request.body = b"".join(request.chunks)
        request.chunks = []
        if self.busy:
            self.pending.append(request)
            self._pause_reading()
        else:
            self._start(request)

    def _ignore_upgrade(self, rest: bytes) -> None:
        """Go on as if the Upgrade header were absent: read the body, then parse afresh."""
        if self.upgrade_body is None:
            self._refuse_now(400, error_body(InvalidRequest("Malformed HTTP request")))
            return
        request, missing = self.upgrade_body
        if missing < 0:  # chunked or unknown length: cannot tell where the body ends
            self.current = request
            self.upgrade_body = None
            reason = "Upgrade offered with a body of unknown length"
            self._refuse_now(400, error_body(InvalidRequest(reason)))
            return
        self.parser = httptools.HttpRequestParser(self)
        leftover = self._read_upgrade_body(rest)
        if leftover and not self.closing:
            self.data_received(leftover)

    def _read_upgrade_body(self, data: bytes) -> bytes:
        """Take the upgrade request's body from ``data``; return what follows it."""
        assert self.upgrade_body is not None
        request, missing = self.upgrade_body
        take = data[:missing]
        request.size += len(take)
        limit = self._body_limit(request)
        if request.size > limit:
            self.current = request
            self.upgrade_body = None
            self._too_large(request, limit)
            return b""
        request.chunks.append(take)
        missing -= len(take)
        if missing > 0:
            self.upgrade_body = (request, missing)
            return b""
        self.upgrade_body = None
        self._complete(request)
        return data[len(take) :]

    # -- answering ------------------------------------------------------------------------------

    def _check_api(self, request: Request) -> None:
        if request.method != "POST":
            request.reject = (
                405,
                error_body(InvalidRequest("Method not allowed; use POST")),
                (("Allow", "POST"),),
            )
            return
        media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if media not in JSON_TYPES:
            request.reject = (
                415,
                error_body(InvalidRequest("Content-Type must be application/json")),
                (),
            )
            return

    def _body_limit(self, request: Request) -> int:
        if request.path == API_PATH:
            return self.runtime.settings.max_body_bytes
        if request.route is not None:
            return request.route[1]
        return RUNTIME_ROUTES_MAX_BODY

    def _too_large(self, request: Request, limit: int) -> None:
        error = InvalidRequest("Request body too large", data={"limit_bytes": limit})
        self._refuse_now(413, error_body(error))

    def _refuse_now(self, status: int, body: bytes) -> None:
        """Answer a request that cannot be received in full (then close the connection).

        If an earlier request is still being answered, its response goes first and the
        connection closes after it: responses never overtake each other.
        """
        request = self.current or Request(self)
        self.current = None
        if request.admitted:
            request.admitted = False
            self.runtime.release()
        if not request.request_id:
            request.request_id = os.urandom(8).hex()
        self.runtime.count_rejection(status)
        if self.busy:
            self.broken = True
            self._pause_reading()
            return
        self._write(request, status, body or None, (), close=True)

    def _start(self, request: Request) -> None:
        self.busy = True
        if request.reject is not None:
            status, body, extra = request.reject
            self.runtime.count_rejection(status)
            self._write(request, status, body, extra)
        elif request.path == API_PATH:
            # Admission happens here, not on arrival: a client's own pipelined requests wait
            # their turn and do not count against the concurrency limit.
            if not self.runtime.admit():
                self.runtime.count_rejection(503)
                body = error_body(ServerOverloaded(data={"retry_after": 1}))
                self._write(request, 503, body, (("Retry-After", "1"),))
                return
            request.admitted = True
            self.runtime.spawn(self._dispatch(request))
        else:
            _TornadoBridge(self, request).run()

    async def _dispatch(self, request: Request) -> None:
        try:
            reply = await self.runtime.dispatcher.dispatch(request.body, request)
        except Exception:
            # A bug in this framework (the dispatcher catches methods' errors): log it and still
            # answer with a JSON-RPC error, never a 5xx the client cannot read.
            log.exception("dispatch failed")
            reply = error_body(InternalError())
        finally:
            request.admitted = False
            self.runtime.release()
        if reply is None:
            self._write(request, 204, None, ())
        else:
            self._write(request, 200, reply, ())

    def _write(
        self,
        request: Request,
        status: int,
        body: bytes | None,
        extra: tuple[tuple[str, str], ...],
        *,
        close: bool = False,
    ) -> None:
        """Send a complete response (JSON body or none); then close, or go on with the next."""
        if self.transport is None or self.closing:
            return
        close = close or not request.keep_alive or self.runtime.draining
        head = _STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status
        if body is not None:
            head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        head += b"X-Request-Id: %s\r\n" % request.request_id.encode("latin-1")
        for name, value in extra:
            head += f"{name}: {value}\r\n".encode("latin-1")
        if close:
            # Tell keep-alive clients to reconnect (elsewhere, during a drain) and close.
            head += b"Connection: close\r\n"
        if request.method == "HEAD" or body is None:
            # HEAD: the headers say what a GET would get; no body follows (RFC 9110 9.3.2).
            self.transport.write(head + b"\r\n")
        else:
            self.transport.write(head + b"\r\n" + body)
        self.finish_response(close)

    def write_raw(self, data: bytes, close: bool) -> None:
        """Send a response serialized elsewhere (the Tornado bridge)."""
        if self.transport is None or self.closing:
            return
        self.transport.write(data)
        self.finish_response(close)

    def finish_response(self, close: bool) -> None:
        assert self.transport is not None
        self.served += 1
        if close or self.broken:
            self.closing = True
            self.transport.close()  # after the buffered response is written
            return
        self.busy = False
        if self.pending:
            self._start(self.pending.popleft())
            return
        if self.eof and self.current is None:  # the client sent all it will send
            self.closing = True
            self.transport.close()
            return
        self._resume_reading()
        if self.current is None:
            self.deadline = self.loop.time() + self.runtime.settings.idle_timeout

    def expire(self, now: float) -> None:
        """Called by the sweeper when ``deadline`` has passed."""
        if self.busy or self.closing or self.transport is None:
            return
        if self.current is not None:  # headers or body still coming: too slow
            self._refuse_now(408, error_body(InvalidRequest("Request not received in time")))
        else:  # idle keep-alive connection
            self.closing = True
            self.transport.close()

    def close_if_idle(self, now: float, grace: float) -> bool:
        """Close the connection unless a request is being received or answered.

        A connection accepted just before the drain that has not sent its first request yet
        gets ``grace`` seconds to send it: its client has every reason to expect an answer.
        """
        if self.busy or self.current is not None or self.pending or self.transport is None:
            return False
        if self.served == 0 and now - self.opened < grace:
            return False
        sock = self.transport.get_extra_info("socket")
        if sock is not None and select.select([sock.fileno()], [], [], 0)[0]:
            return False  # a request already waits unread: read and answer it (Connection: close)
        self.closing = True
        self.transport.close()
        return True

    def _pause_reading(self) -> None:
        if self.reading and self.transport is not None:
            self.reading = False
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if not self.reading and self.transport is not None and not self.closing:
            self.reading = True
            self.transport.resume_reading()


class _Context:
    """What Tornado's HTTPServerRequest reads from ``connection.context``."""

    __slots__ = ("protocol", "remote_ip")

    def __init__(self, remote_ip: str) -> None:
        self.remote_ip = remote_ip
        self.protocol = "http"


class _TornadoBridge(httputil.HTTPConnection):
    """Lets a ``tornado.web.Application`` answer one request on our connection."""

    def __init__(self, conn: Connection, request: Request) -> None:
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
        delegate = self.conn.server.app.start_request(self.conn, self)
        start_line = httputil.RequestStartLine(
            request.method, request.url.decode("latin-1"), "HTTP/1.1"
        )
        headers = httputil.HTTPHeaders()
        for name, value in request.headers.items():
            headers.add(name, value)
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
        runtime = self.conn.runtime
        close = not self.request.keep_alive or runtime.draining
        if close:
            headers["Connection"] = "close"
        route = self.request.route
        if route is not None:
            seconds = self.conn.loop.time() - self.request.started
            request = self.request
            runtime.observe_route(
                route[0], request.method, self.status, seconds, request.request_id
            )
        lines = [f"HTTP/1.1 {self.status} {self.reason}"]
        lines.extend(f"{name}: {value}" for name, value in headers.get_all())
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.conn.write_raw(head + body, close)

    def set_close_callback(self, callback: Any) -> None:
        """Not needed: the bridge answers from memory."""

    def set_max_body_size(self, max_body_size: int) -> None:
        """The connection enforces body limits itself."""

    def set_body_timeout(self, timeout: float) -> None:
        """The connection enforces timeouts itself."""


def _content_length(request: Request) -> int:
    """The announced body length; 0 without one, -1 when it cannot be known (chunked)."""
    if "chunked" in request.headers.get("transfer-encoding", "").lower():
        return -1
    length = request.headers.get("content-length", "0")
    return int(length) if length.isascii() and length.isdigit() else -1
