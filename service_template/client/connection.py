"""One HTTP/1.1 client connection on asyncio and httptools: send a request, read its answer.

The same core as the server (``http/wire.py``): an ``asyncio.Protocol`` feeding httptools, no
streams, no task per request. One request at a time per connection (no pipelining); the pool
(``pool.py``) owns the connections and the timeouts. Every answer is bounded: the head (its bytes
and its number of fields) and the body (``max_body`` bytes); an answer past a bound, a malformed
one, or bytes nobody asked for close the connection.
"""

from __future__ import annotations

import asyncio

import httptools

MAX_HEAD_BYTES = 64 * 1024
MAX_HEADER_FIELDS = 100


class Answer:
    """An HTTP answer as the reply checks read it (``replies.Reply``)."""

    __slots__ = ("content", "headers", "reason_phrase", "status_code")

    def __init__(self, status: int, reason: str, headers: dict[str, str], content: bytes) -> None:
        self.status_code = status
        self.reason_phrase = reason
        self.headers = headers  # names lower-cased; a repeated field keeps its last value
        self.content = content

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300


class ConnectionFailed(Exception):
    """The connection broke, or the answer was malformed or too large; ``reason`` says which."""

    def __init__(self, reason: str, *, cause: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.os_error = cause


class Connection(asyncio.Protocol):
    """One keep-alive connection; ``exchange`` sends a request and resolves with its answer."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Answer] | None = None
        self._reset()

    def _reset(self) -> None:
        self._reason = ""
        self._headers: dict[str, str] = {}
        self._head_bytes = 0
        self._fields = 0
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._head_done = False

    # ---- asyncio.Protocol ----

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # an answer nobody asked for: the stream cannot be trusted
            self._fail(ConnectionFailed("the server sent bytes nobody asked for"))
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ConnectionFailed("the server switched protocols"))
        except httptools.HttpParserError as exc:
            # A bound crossed in a callback arrives wrapped: httptools raises its own error
            # with ours as the context.
            inner = exc.__context__
            if isinstance(inner, ConnectionFailed):
                self._fail(inner)
            else:
                self._fail(ConnectionFailed(f"malformed HTTP answer ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if self._head_done and self._until_close():
                # No length and no chunks: the body ends when the connection does (RFC 9112 6.3).
                self._complete()
                return
            cause = exc if isinstance(exc, OSError) else None
            waiter.set_exception(ConnectionFailed("server disconnected", cause=cause))
        self._waiter = None

    # ---- httptools callbacks ----

    def on_status(self, status: bytes) -> None:
        self._count_head(len(status))
        self._reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_head(len(name) + len(value))
        self._fields += 1
        if self._fields > MAX_HEADER_FIELDS:
            raise ConnectionFailed(f"the answer has more than {MAX_HEADER_FIELDS} header fields")
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._head_done = True
        length = self._headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            raise ConnectionFailed(f"the answer is larger than {self.max_body} bytes")

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.max_body:
            raise ConnectionFailed(f"the answer is larger than {self.max_body} bytes")
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._complete()

    # ---- used by the pool ----

    def exchange(self, request: bytes, loop: asyncio.AbstractEventLoop) -> asyncio.Future[Answer]:
        """Send ``request`` (head and body); the future resolves with the answer."""
        assert self.transport is not None and self._waiter is None
        self._waiter = waiter = loop.create_future()
        self.transport.write(request)
        return waiter

    @property
    def reusable(self) -> bool:
        """True when idle and open: it may carry another request."""
        return not self.closed and self._waiter is None

    def close(self) -> None:
        """Close at once (abort): used after a timeout, a cancellation or a bad answer."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # ---- internals ----

    def _count_head(self, size: int) -> None:
        self._head_bytes += size
        if self._head_bytes > MAX_HEAD_BYTES:
            raise ConnectionFailed(f"the answer's head is larger than {MAX_HEAD_BYTES} bytes")

    def _until_close(self) -> bool:
        headers = self._headers
        return "content-length" not in headers and "chunked" not in headers.get(
            "transfer-encoding", ""
        )

    def _complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        status = self._parser.get_status_code()
        keep = self._parser.should_keep_alive()
        answer = Answer(status, self._reason, self._headers, b"".join(self._body))
        self._reset()
        if not keep:
            self.close_softly()
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    def close_softly(self) -> None:
        """Close after what was written is flushed (the server asked to close)."""
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: ConnectionFailed) -> None:
        waiter, self._waiter = self._waiter, None
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)
