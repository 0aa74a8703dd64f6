"""HTTP/1.1 connections on asyncio, parsed by httptools (llhttp, the parser uvicorn uses).

Why not Tornado's own HTTP1Connection: measured here, a bare HTTPServerConnectionDelegate that
returns a fixed body tops out near 12k requests/s on one core; an asyncio protocol on httptools
serves the same body at about 98k/s. So the wire protocol is ours; what a request means is
decided by the ``Handler`` its server routes it to (``request.py``).

One ``Connection`` per TCP connection: its ``RequestReader`` (``reader.py``) turns bytes into
requests; the connection answers them one at a time, in order (pipelining-safe), applies flow
control and deadlines, and closes. While one request is answered the next may be received;
reading pauses as soon as a complete one waits, and while the client leaves its output unread.
Every bound comes from ``Limits`` (``limits.py``). Timeouts cost nothing per request: each
connection keeps deadlines that the server's sweeper checks twice a second.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import select
import socket
import struct
import time
from collections.abc import Callable

from ..protocol.errors import InvalidRequest
from .framing import CONTINUE, DATE, NO_CONTENT_HEAD, OK_HEAD, Refusal, response_head
from .head import at_capacity, too_many_pipelined
from .reader import RequestReader
from .request import Host, Request

log = logging.getLogger("service_template.http")

_SMALL_BODY = 16 * 1024  # below this, head and body go out in one write (one copy is cheap)


def _clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """The loop's clock (deadlines are compared with ``loop.time()``): ``time.monotonic``
    itself when the loop's ``time`` is asyncio's own, which returns just that; read twice per
    request, a Python frame fewer each time."""
    if getattr(type(loop), "time", None) is asyncio.BaseEventLoop.time:
        return time.monotonic
    return loop.time


class Connection(asyncio.Protocol):
    """One client connection: ordering, flow control, deadlines and closing."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.limits = host.limits
        self.loop = loop = asyncio.get_running_loop()
        self.clock = _clock(loop)
        self.transport: asyncio.Transport | None = None
        self.reader = RequestReader(self, self.limits, host.route, self.clock)
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
        self.served = 0  # responses written
        self.eof = False  # the client closed its sending side
        self._advancing = False

    # -- asyncio.Protocol -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if not self.host.opened(self):
            # Over the per-process cap: as cheap a refusal as HTTP allows, nothing parsed.
            self.closing = True
            self.host.count_rejection(503)
            transport.write(at_capacity())
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
        self.reader.current = None
        self.active = None

    def data_received(self, data: bytes) -> None:
        if self.receiving:  # else lingering after a refusal, or refused for good: discard
            self.reader.feed(data)

    def eof_received(self) -> bool:
        """The client half-closed: answer what it sent, then close (keep writing till then)."""
        self.eof = True
        if self.lingering:
            return False  # it read our answer and is done: close now
        # True keeps the transport open for the responses still owed; False (idle) closes it.
        return self.active is not None or self.reader.current is not None or bool(self.queue)

    def pause_writing(self) -> None:
        # The client is not reading its responses: read and dispatch nothing more for it until
        # it does, and cut it off if it does not within write_timeout, or at once if the
        # output such clients leave unsent is over the process's budget.
        self.write_blocked = True
        if self.host.blocked(self, True):
            log.info("client %s left output unread past max_unsent_bytes; cut", self.peer)
            self._abort()
            return
        self.write_deadline = self.loop.time() + self.limits.write_timeout
        self._update_reading()

    def resume_writing(self) -> None:
        self.write_blocked = False
        self.host.blocked(self, False)
        self.write_deadline = None
        self._advance()

    # -- reader.Receiver ------------------------------------------------------------------------

    def continue_due(self) -> None:
        self._continue_if_due()

    def request_received(self, request: Request) -> None:
        self.deadline = None  # no timeout while the request is answered: calls have deadlines
        if (
            self.active is None
            and not self.queue
            and request.refusal is None
            and not self.write_blocked
            and not self.closing
        ):
            # The common case, nothing before it: serve it now. (A handler that answers at
            # once goes through _finish and _advance, which take care of what follows.)
            assert request.handler is not None
            self.active = request
            request.handler.serve(request, self)
            return
        if len(self.queue) >= self.limits.max_pipelined:
            # Past the pipelining bound (only reachable within one read): refuse this one and
            # read no further; every request before it is still answered, in order.
            request.refusal = too_many_pipelined(self.limits.max_pipelined)
            self.receiving = False
        self.queue.append(request)
        self._advance()

    def refuse(self, request: Request, refusal: Refusal) -> None:
        """Refuse ``request`` for good and read no more: the requests received before it are
        answered first; its own answer is the last on this connection (``Connection:
        close``), then the connection half-closes and lingers."""
        request.refusal = refusal
        self.receiving = False
        self.deadline = None
        self.queue.append(request)
        self._advance()

    # -- answering ------------------------------------------------------------------------------

    def _advance(self) -> None:
        """Go on after a response (or a newly queued request): start what waits, then settle
        reading, deadlines and a deferred ``100 Continue``."""
        if self._advancing:
            return
        if self.queue:
            self._take_queued()
        if self.closing or self.active is not None or self.queue:
            self._update_reading()
            return
        # Nothing owed: the connection is between requests (or receiving one).
        if self.eof:
            self._close()
            return
        if self.reader.current is None:
            if self.deadline is None:
                self.deadline = self.clock() + self.limits.idle_timeout
        else:
            self._continue_if_due()
        if self.reading != (self.receiving and not self.write_blocked):
            self._update_reading()

    def _take_queued(self) -> None:
        """Start waiting requests in order while nothing else is answered and the client
        reads its output. A loop, not recursion: a handler that answers at once re-enters
        _advance, which returns at once, and this loop takes the next request."""
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

    def will_close(self, request: Request) -> bool:
        """Whether the connection closes after the response to ``request``."""
        refusal = request.refusal
        return (
            not request.keep_alive
            or self.host.draining
            or (refusal is not None and refusal.final)
            or (not self.queue and (self.eof or not self.receiving) and self.reader.current is None)
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
        refusal = request.refusal
        close = (  # will_close, inlined on the hot path
            not request.keep_alive
            or self.host.draining
            or (refusal is not None and refusal.final)
            or (not self.queue and (self.eof or not self.receiving) and self.reader.current is None)
        )
        if status == 200 and body is not None and not extra and not close:
            head = OK_HEAD % (DATE.line, len(body), request.request_id.encode("latin-1"))
        elif status == 204 and body is None and not extra and not close:  # notifications
            head = NO_CONTENT_HEAD % (DATE.line, request.request_id.encode("latin-1"))
        else:
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
        request = self.reader.current
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
        try:
            if transport.can_write_eof():
                transport.write_eof()
        except OSError:
            # The client is gone already (it closed before our answer): nothing to linger for.
            # Raised here, this would end the sweeper that called us, and with it every
            # deadline (tests/integration/test_http_hardening.py::
            # test_timeouts_keep_firing_after_a_client_closes_mid_request).
            self._abort()
            return
        self._update_reading()

    def abandon(self) -> None:
        """The request being served will never be answered (its task was cancelled): close
        once what was written before it is sent (``runtime.Owner``)."""
        self._close()

    def abort(self) -> None:
        """Close at once (the server's last resort for a connection that misbehaved)."""
        self._abort()

    def _abort(self) -> None:
        """Close at once, dropping unsent output, with a reset (not a FIN after the output)."""
        transport = self.transport
        if transport is None:
            return
        self.closing = True
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0: the kernel would otherwise keep trying to send the buffered output.
            with contextlib.suppress(OSError):  # a socket the peer has already torn down
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
        elif self.reader.current is not None and self.receiving:  # headers or body too slow
            self.reader.fail(Refusal.of(408, InvalidRequest("Request not received in time")))
        elif self.active is None and not self.queue:  # idle, or nothing ever sent
            self._close()

    def close_if_idle(self, now: float, grace: float) -> bool:
        """Close the connection unless a request is being received or answered.

        A connection accepted just before the drain that has not sent its first request yet
        gets ``grace`` seconds to send it: its client has every reason to expect an answer.
        """
        if self.active is not None or self.reader.current is not None or self.queue:
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
