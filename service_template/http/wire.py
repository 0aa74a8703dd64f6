"""HTTP/1.1 connections on asyncio, parsed by httptools (llhttp, the parser uvicorn uses).

Why not Tornado's own HTTP1Connection: measured here, a bare HTTPServerConnectionDelegate that
returns a fixed body tops out near 12k requests/s on one core; an asyncio protocol on httptools
serves the same body at about 98k/s. So the wire protocol is ours; what a request means is
decided by the ``Handler`` its server routes it to (``request.py``).

One ``Connection`` per TCP connection. Requests are answered one at a time, in order
(pipelining-safe): while one is answered, the next may be received, and reading pauses as soon
as a complete one waits. Every bound comes from ``Limits`` (``limits.py``). Timeouts cost
nothing per request: each connection keeps deadlines that the server's sweeper checks twice a
second.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import re
import select
import socket
import struct

import httptools

from ..protocol.errors import InvalidRequest, ServerOverloaded
from .framing import CONTINUE, Refusal, response_head
from .request import Host, Request

log = logging.getLogger("service_template.http")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_SMALL_BODY = 16 * 1024  # below this, head and body go out in one write (one copy is cheap)
_MALFORMED = InvalidRequest("Malformed HTTP request")


class _Stop(Exception):
    """Raised in a parser callback to stop parsing: the request was refused for good."""


class Connection(asyncio.Protocol):
    """One client connection: framing, ordering, flow control and deadlines."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.limits = host.limits
        self.route = host.route
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.current: Request | None = None  # being received
        self.queue: collections.deque[Request] = collections.deque()  # received, waiting
        self.active: Request | None = None  # being answered
        self.receiving = True  # False once a request was refused for good: parse no further
        self.closing = False
        self.lingering = False  # half-closed after a refusal: discarding input, then closing
        self.reading = True
        self.write_blocked = False  # the client is not reading: above the high-water mark
        self.deadline: float | None = None  # headers, body, idle or linger deadline
        self.write_deadline: float | None = None  # output must drain by then
        self.peer = ""
        self.opened = self.loop.time()
        self.begun = 0  # requests whose first byte arrived
        self.began_at = 0.0  # when the request being received began
        self.served = 0  # responses written
        self.eof = False  # the client closed its sending side
        self._advancing = False
        self._begins = 0  # messages begun during the current read
        # A request that offered an upgrade (h2c): llhttp stops at its headers, so its body
        # (Content-Length bytes) is read here before parsing goes on. (request, bytes missing)
        self.upgrade_body: tuple[Request, int] | None = None

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.host.opened(self):
            # Over the per-process cap: as cheap a refusal as HTTP allows, nothing parsed.
            self.closing = True
            self.host.count_rejection(503)
            transport.write(_at_capacity())
            transport.close()
            return
        transport.set_write_buffer_limits(self.limits.write_high_water, self.limits.write_low_water)
        peer = transport.get_extra_info("peername")
        self.peer = peer[0] if isinstance(peer, tuple) else ""
        # The first request's headers are due header_timeout after the connection opens.
        self.deadline = self.loop.time() + self.limits.header_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.host.closed(self)
        self.queue.clear()
        self.current = None
        self.active = None

    def data_received(self, data: bytes) -> None:
        if not self.receiving:
            return  # lingering after a refusal, or refused for good: discard
        if self.upgrade_body is not None:
            data = self._read_upgrade_body(data)
            if not data:
                return
        start = self.current
        in_body = start is not None and start.headers_done
        size_before = start.size if start is not None else 0
        self._begins = 0
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args and isinstance(exc.args[0], int) else len(data)
            self._ignore_upgrade(data[offset:])
        except httptools.HttpParserCallbackError:
            if self.receiving:  # not our _Stop: a bug in a callback
                log.exception("HTTP parser callback failed")
                self._refuse_final(Refusal.of(400, _MALFORMED))
        except httptools.HttpParserError as exc:
            if self.receiving:
                if "version" in str(exc).lower():
                    self._refuse_final(_unsupported_version())
                else:
                    self._refuse_final(Refusal.of(400, _MALFORMED))
        else:
            self._account(data, start, in_body, size_before)

    def _account(self, data: bytes, start: Request | None, in_body: bool, size: int) -> None:
        """Count a read that fell wholly inside one message against that message's bounds.

        The parser's callbacks count header fields exactly, but httptools holds a field that
        is still arriving (a huge value, a trailer) where no callback sees it; counting whole
        reads bounds that too. A read that also holds the end of an earlier message is counted
        by the callbacks only, so what the parser may hold unseen is one read (256 KiB) at most.
        """
        request = self.current
        if request is None or not self.receiving:
            return
        if request is start and self._begins == 0:
            if not request.headers_done:  # still inside the head
                request.raw_head += len(data)
            elif in_body:
                request.overhead += len(data) - (request.size - size)
                allowed = self.limits.max_header_bytes + self.limits.chunk_overhead * (
                    request.chunk_count + 1
                )
                if request.overhead > allowed:
                    self._refuse_final(_header_too_large())
                return
        elif start is None and self._begins == 1 and not request.headers_done:
            request.raw_head += len(data)
        if request.raw_head > self.limits.max_header_bytes:
            self._refuse_final(_header_too_large())

    def eof_received(self) -> bool:
        """The client half-closed: answer what it sent, then close (keep writing till then)."""
        self.eof = True
        if self.lingering:
            return False  # it read our answer and is done: close now
        # True keeps the transport open for the responses still owed; False (idle) closes it.
        return self.active is not None or self.current is not None or bool(self.queue)

    def pause_writing(self) -> None:
        # The client is not reading its responses: read and dispatch nothing more for it until
        # it does, and cut it off if it does not within write_timeout.
        self.write_blocked = True
        self.write_deadline = self.loop.time() + self.limits.write_timeout
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_blocked = False
        self.write_deadline = None
        self._advance()

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if not self.receiving:
            raise _Stop
        self._begins += 1
        self.current = Request()
        self.began_at = now = self.loop.time()
        if self.begun:  # the first request keeps the deadline set when the connection opened
            self.deadline = now + self.limits.header_timeout
        self.begun += 1

    def on_url(self, url: bytes) -> None:
        request = self.current
        assert request is not None
        request.url += url
        request.head_bytes += len(url)
        if request.head_bytes > self.limits.max_header_bytes:
            self._refuse_final(_header_too_large())
            raise _Stop

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.current
        assert request is not None
        request.head_bytes += len(name) + len(value) + 4
        if request.head_bytes > self.limits.max_header_bytes:
            self._refuse_final(_header_too_large())
            raise _Stop
        if request.headers_done:
            # A trailer field: counted above, never merged into the headers (RFC 9112 7.1.2),
            # so nothing (a token, a Content-Type) can be slipped in after the checks.
            return
        key = name.decode("latin-1").lower()
        headers = request.headers
        if key in headers:
            if request.repeated is None:
                request.repeated = []
            request.repeated.append((key, value.decode("latin-1")))
        else:
            headers[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        request = self.current
        assert request is not None
        request.headers_done = True
        parser = self.parser
        request.method = parser.get_method().decode("latin-1")
        request.version = version = parser.get_http_version()
        request.keep_alive = parser.should_keep_alive()
        given = request.headers.get("x-request-id")
        request.request_id = (
            given if given is not None and _REQUEST_ID_RE.match(given) else os.urandom(8).hex()
        )
        if version not in ("1.1", "1.0"):
            self._refuse_final(_unsupported_version())
            raise _Stop
        refusal = _check_head(request)  # sets request.path, which routing needs
        handler = request.handler = self.route(request)
        refusal = request.refusal = refusal or handler.check(request)
        request.limit = limit = handler.body_limit(request)
        length = _content_length(request)
        if length > limit:
            self._refuse_final(_too_large(limit))  # at once: no point reading a body we refuse
            raise _Stop
        # The body is due body_timeout after the request's first byte.
        self.deadline = self.began_at + self.limits.body_timeout
        expect = request.headers.get("expect")
        if expect is not None and expect.lower() == "100-continue" and version == "1.1":
            # RFC 9110 10.1.1: a request that will be refused gets its final status instead
            # of a 100; one that will be read gets a 100, but never ahead of an earlier
            # response still owed on this connection (then it is sent when that is out).
            if refusal is not None:
                self._refuse_final(refusal)
                raise _Stop
            request.continue_owed = True
            self._continue_if_due()

    def on_chunk_header(self) -> None:
        if self.current is not None:
            self.current.chunk_count += 1

    def on_body(self, body: bytes) -> None:
        request = self.current
        assert request is not None
        request.size += len(body)
        if request.size > request.limit:
            self._refuse_final(_too_large(request.limit))
            raise _Stop
        if request.refusal is None:
            request.chunks.append(body)

    def on_message_complete(self) -> None:
        request = self.current
        assert request is not None
        self.current = None
        if self.parser.should_upgrade():
            # RFC 9110 7.8: a server may ignore an Upgrade offer. llhttp ends the message at its
            # headers here; its body, if any, is read by _ignore_upgrade before dispatch.
            self.upgrade_body = (request, _content_length(request))
            return
        self._complete(request)

    # -- receiving ------------------------------------------------------------------------------

    def _complete(self, request: Request) -> None:
        chunks = request.chunks
        request.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        request.chunks = []
        request.continue_owed = False
        self.deadline = None  # no timeout while the request is answered: calls have deadlines
        if len(self.queue) >= self.limits.max_pipelined:
            # Past the pipelining bound (only reachable within one read): refuse this one and
            # read no further; every request before it is still answered, in order.
            request.refusal = _too_many_pipelined(self.limits.max_pipelined)
            self.receiving = False
        elif self.active is None and not self.queue and not self.write_blocked and not self.closing:
            # The common case, nothing before it: serve it now. (A handler that answers at
            # once goes through _finish and _advance, which take care of what follows.)
            refusal = request.refusal
            if refusal is None:
                assert request.handler is not None
                self.active = request
                request.handler.serve(request, self)
                return
        self.queue.append(request)
        self._advance()

    def _refuse_final(self, refusal: Refusal) -> None:
        """Refuse the request being received (or the stream, if none began) and read no more.

        Requests received before it are answered first; its own answer is the last on this
        connection (``Connection: close``), then the connection half-closes and lingers.
        """
        request = self.current or Request()
        self.current = None
        self.upgrade_body = None
        if not request.request_id:
            request.request_id = os.urandom(8).hex()
        request.refusal = refusal if refusal.final else Refusal(*_fields(refusal), final=True)
        request.continue_owed = False
        self.receiving = False
        self.deadline = None
        self.queue.append(request)
        self._advance()

    def _ignore_upgrade(self, rest: bytes) -> None:
        """Go on as if the Upgrade header were absent: read the body, then parse afresh."""
        if self.upgrade_body is None:
            if self.receiving:
                self._refuse_final(Refusal.of(400, _MALFORMED))
            return
        request, missing = self.upgrade_body
        if missing < 0:  # chunked or unknown length: cannot tell where the body ends
            reason = "Upgrade offered with a body of unknown length"
            self.current = request
            self._refuse_final(Refusal.of(400, InvalidRequest(reason)))
            return
        self.parser = httptools.HttpRequestParser(self)
        leftover = self._read_upgrade_body(rest)
        if leftover and self.receiving:
            self.data_received(leftover)

    def _read_upgrade_body(self, data: bytes) -> bytes:
        """Take the upgrade request's body from ``data``; return what follows it."""
        assert self.upgrade_body is not None
        request, missing = self.upgrade_body
        take = data[:missing]
        request.size += len(take)
        if request.size > request.limit:
            self.current = request
            self._refuse_final(_too_large(request.limit))
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

    def _advance(self) -> None:
        """Start waiting requests in order while nothing else is answered and the client
        reads its output. A loop, not recursion: a handler that answers at once re-enters here
        and returns, and this loop takes the next request."""
        if self._advancing:
            return
        self._advancing = True
        try:
            while (
                self.active is None and self.queue and not self.write_blocked and not self.closing
            ):
                request = self.active = self.queue.popleft()
                refusal = request.refusal
                if refusal is not None:
                    self.host.count_rejection(refusal.status)
                    self.respond(request, refusal.status, refusal.body, refusal.headers)
                else:
                    assert request.handler is not None
                    request.handler.serve(request, self)
        finally:
            self._advancing = False
        if self.closing or self.active is not None or self.queue:
            self._update_reading()
            return
        # Nothing owed: the connection is between requests (or receiving one).
        if self.eof:
            self._close()
            return
        if self.current is None:
            if self.deadline is None:
                self.deadline = self.loop.time() + self.limits.idle_timeout
        else:
            self._continue_if_due()
        self._update_reading()

    def will_close(self, request: Request) -> bool:
        """Whether the connection closes after the response to ``request``."""
        refusal = request.refusal
        return (
            not request.keep_alive
            or self.host.draining
            or (refusal is not None and refusal.final)
            or (not self.queue and (self.eof or not self.receiving) and self.current is None)
        )

    def respond(
        self,
        request: Request,
        status: int,
        body: bytes | None,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Send the complete response to ``request`` (a JSON body, or none when None)."""
        transport = self.transport
        if request is not self.active or transport is None or self.closing:
            return  # the connection went away while the request was answered
        close = self.will_close(request)
        length = None if body is None else len(body)
        head = response_head(status, length, request.request_id, extra, close)
        if body is None or request.method == "HEAD":
            # HEAD: the headers say what a GET would get; no body follows (RFC 9110 9.3.2).
            transport.write(head)
        elif len(body) < _SMALL_BODY:
            transport.write(head + body)
        else:
            transport.write(head)  # no head+body copy of a big body
            transport.write(body)
        self._finish(request, close)

    def respond_raw(self, request: Request, head: bytes, body: bytes, close: bool) -> None:
        """Send a response framed elsewhere (the Tornado bridge); ``close`` from
        ``will_close``."""
        transport = self.transport
        if request is not self.active or transport is None or self.closing:
            return
        transport.write(head + body if len(body) < _SMALL_BODY else head)
        if len(body) >= _SMALL_BODY:
            transport.write(body)
        self._finish(request, close)

    def _finish(self, request: Request, close: bool) -> None:
        self.active = None
        self.served += 1
        if close:
            refusal = request.refusal
            if refusal is not None and refusal.final:
                self._linger()
            else:
                self._close()
            return
        self._advance()

    def _continue_if_due(self) -> None:
        request = self.current
        if (
            request is not None
            and request.continue_owed
            and self.active is None
            and not self.queue
            and self.transport is not None
        ):
            request.continue_owed = False
            self.transport.write(CONTINUE)

    # -- closing and deadlines ------------------------------------------------------------------

    def _close(self) -> None:
        if self.transport is not None and not self.closing:
            self.closing = True
            self.transport.close()  # after the buffered output is written

    def _linger(self) -> None:
        """Half-close after a refusal and discard input briefly, so that a client still
        sending its body reads the refusal rather than a reset (RFC 9112 9.6)."""
        transport = self.transport
        assert transport is not None
        self.closing = self.lingering = True
        self.receiving = False
        self.deadline = self.loop.time() + self.limits.linger_seconds
        if transport.can_write_eof():
            transport.write_eof()
        self._update_reading()

    def _abort(self) -> None:
        """Close at once, dropping unsent output, with a reset (not a FIN after the output)."""
        transport = self.transport
        if transport is None:
            return
        self.closing = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0: the kernel would otherwise keep trying to send the buffered output.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    def due(self, now: float) -> bool:
        """Whether a deadline has passed (the sweeper then calls ``expire``)."""
        return (self.deadline is not None and now >= self.deadline) or (
            self.write_deadline is not None and now >= self.write_deadline
        )

    def expire(self, now: float) -> None:
        """Act on a passed deadline (called by the sweeper)."""
        if self.transport is None:
            return
        if self.write_deadline is not None and now >= self.write_deadline:
            log.info("client %s left its responses unread for too long; closed", self.peer)
            self._abort()
            return
        if self.deadline is None or now < self.deadline:
            return
        if self.lingering:
            self._abort()
        elif self.closing:
            return
        elif self.current is not None and self.receiving:  # headers or body too slow
            self._refuse_final(Refusal.of(408, InvalidRequest("Request not received in time")))
        elif self.active is None and not self.queue:  # idle, or nothing ever sent
            self._close()

    def close_if_idle(self, now: float, grace: float) -> bool:
        """Close the connection unless a request is being received or answered.

        A connection accepted just before the drain that has not sent its first request yet
        gets ``grace`` seconds to send it: its client has every reason to expect an answer.
        """
        if self.active is not None or self.current is not None or self.queue:
            return False
        if self.transport is None or self.closing:
            return False
        if self.served == 0 and now - self.opened < grace:
            return False
        sock = self.transport.get_extra_info("socket")
        if sock is not None and select.select([sock.fileno()], [], [], 0)[0]:
            return False  # a request already waits unread: read and answer it (Connection: close)
        self._close()
        return True

    def _update_reading(self) -> None:
        want = self.lingering or (
            not self.closing and self.receiving and not self.write_blocked and not self.queue
        )
        transport = self.transport
        if want == self.reading or transport is None or transport.is_closing():
            return
        self.reading = want
        if want:
            transport.resume_reading()
        else:
            transport.pause_reading()


# -- refusals decided by the wire protocol --------------------------------------------------------


def _check_head(request: Request) -> Refusal | None:
    """Request-line and Host checks (RFC 9112 3.2, 3.2.2): a refusal, or None."""
    url = request.url
    if url.startswith(b"/"):
        target = url.decode("latin-1")
    elif url.startswith((b"http://", b"https://")):
        # Absolute form (RFC 9112 3.2.2): a server MUST accept it; the path is in the URL.
        rest = url.decode("latin-1").partition("://")[2]
        slash = rest.find("/")
        query = rest.find("?")
        if slash < 0 or 0 <= query < slash:
            target = "/" + rest[query:] if query >= 0 else "/"
        else:
            target = rest[slash:]
    elif url == b"*":
        target = "*"
    else:
        request.target = request.path = ""
        return Refusal.of(400, InvalidRequest("Malformed request target"))
    request.target = target
    request.path = target.partition("?")[0]
    if request.repeated is None:  # the common case, without building lists
        hosts = 1 if "host" in request.headers else 0
    else:
        hosts = len(request.get_list("host"))
    if hosts > 1 or (hosts == 0 and request.version == "1.1"):
        # RFC 9112 3.2: a 1.1 request without Host, or any with more than one, gets a 400.
        return Refusal.of(400, InvalidRequest("Exactly one Host header is required"))
    return None


def _content_length(request: Request) -> int:
    """The announced body length; 0 without one, -1 when it cannot be known (chunked)."""
    headers = request.headers
    if "transfer-encoding" in headers and (
        "chunked" in ",".join(request.get_list("transfer-encoding")).lower()
    ):
        return -1
    length = headers.get("content-length", "0")
    return int(length) if length.isascii() and length.isdigit() else -1


def _fields(refusal: Refusal) -> tuple[int, bytes, tuple[tuple[str, str], ...]]:
    return refusal.status, refusal.body, refusal.headers


def _too_large(limit: int) -> Refusal:
    error = InvalidRequest("Request body too large", data={"limit_bytes": limit})
    return Refusal.of(413, error, final=True)


def _header_too_large() -> Refusal:
    return Refusal.of(431, InvalidRequest("Request header fields too large"), final=True)


def _unsupported_version() -> Refusal:
    return Refusal.of(505, InvalidRequest("HTTP version not supported; use HTTP/1.1"), final=True)


def _too_many_pipelined(limit: int) -> Refusal:
    error = ServerOverloaded("Too many pipelined requests", data={"limit": limit})
    return Refusal.of(503, error, (("Retry-After", "1"),), final=True)


def _at_capacity() -> bytes:
    body = b'{"jsonrpc":"2.0","error":{"code":-32003,"message":"Server overloaded"},"id":null}'
    head = response_head(503, len(body), os.urandom(8).hex(), (("Retry-After", "1"),), True)
    return head + body
