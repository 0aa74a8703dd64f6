"""Turns the bytes of one connection into ``Request`` objects, enforcing head and body bounds.

The httptools parser calls back into a ``RequestReader``; the reader reports to its
``Receiver`` (the connection, ``wire.py``) when a request begins, when its head is in, when it is
complete, and when it must be refused for good (the stream cannot be read on: too large,
malformed, an unsupported version). Head bytes are counted exactly in the callbacks; whole reads
are counted too, because httptools holds a field that is still arriving (a huge value, a
trailer) where no callback sees it.
"""

from __future__ import annotations

import logging
import os
import random
import re
from collections.abc import Callable
from typing import Protocol

import httptools

from ..protocol.errors import InvalidRequest
from .framing import Refusal
from .head import (
    MALFORMED,
    check_head,
    content_length,
    final,
    header_too_large,
    too_large,
    unsupported_version,
)
from .limits import Limits
from .request import Handler, Request

log = logging.getLogger("service_template.http")

_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

# Request ids only need to be unique, not secret: a generator of our own (seeded from the OS,
# re-seeded in each forked worker, untouched by a service's random.seed) makes one in a
# fifth of the time of os.urandom, a system call per request.
_ids = random.Random()  # noqa: S311 (ids are not secrets, see above)
os.register_at_fork(after_in_child=_ids.seed)
_id_bits = _ids.getrandbits


def new_request_id() -> str:
    """A fresh request id: 16 lower-case hex digits."""
    return _id_bits(64).to_bytes(8).hex()


class Receiver(Protocol):
    """What a reader reports to."""

    receiving: bool  # False once the stream was refused for good: the reader then stops
    deadline: float | None  # the reader sets the header and body deadlines of a request

    def continue_due(self) -> None:
        """The current request's client waits for ``100 Continue`` before sending its body."""
        ...

    def request_received(self, request: Request) -> None:
        """The request is complete (its body joined in ``request.body``)."""
        ...

    def refuse(self, request: Request, refusal: Refusal) -> None:
        """``request`` is refused for good (``refusal.final``); read nothing after it."""
        ...


class _Stop(Exception):
    """Raised in a parser callback to stop parsing: the request was refused for good."""


class RequestReader:
    """The parser side of one connection."""

    def __init__(
        self,
        receiver: Receiver,
        limits: Limits,
        route: Callable[[Request], Handler],
        clock: Callable[[], float],
    ) -> None:
        self.receiver = receiver
        self.route = route  # the handler for a request's path
        self.limits = limits
        self.parser = httptools.HttpRequestParser(self)
        self.current: Request | None = None  # being received
        self.began_at = 0.0  # when it began
        # The request being received, as the reader measures it (reset when one begins):
        self.in_body = False  # its head is in
        self.limit = 0  # body bytes allowed
        self.head_bytes = 0  # trailer fields
        self.raw_head = 0  # bytes of whole reads that fell inside the head
        self.overhead = 0  # chunk framing and trailer bytes of whole reads inside the body
        self.chunk_count = 0
        self.headers: dict[str, str] = {}  # the current request's
        self.header_timeout = limits.header_timeout
        self.body_timeout = limits.body_timeout
        self.max_header_bytes = limits.max_header_bytes
        self._read_len = 0  # bytes in the read being parsed
        self.begin_read_len = 0  # bytes in the read the current request began in
        self.begun = 0  # requests whose first byte arrived
        self._begun_before = 0  # self.begun when the current read started
        self._clock = clock  # the event loop's
        # A request that offered an upgrade (h2c): llhttp stops at its headers, so its body
        # (Content-Length bytes) is read here before parsing goes on. (request, bytes missing)
        self.upgrade_body: tuple[Request, int] | None = None

    def feed(self, data: bytes) -> None:
        """Parse one read."""
        if self.upgrade_body is not None:
            data = self._read_upgrade_body(data)
            if not data:
                return
        start = self.current
        in_body = start is not None and self.in_body
        size_before = start.size if start is not None else 0
        self._begun_before = self.begun
        self._read_len = len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args and isinstance(exc.args[0], int) else len(data)
            self._ignore_upgrade(data[offset:])
        except httptools.HttpParserCallbackError:
            if self.receiver.receiving:  # not our _Stop: a bug in a callback
                log.exception("HTTP parser callback failed")
                self.fail(Refusal.of(400, MALFORMED))
        except httptools.HttpParserError as exc:
            if self.receiver.receiving:
                version = "version" in str(exc).lower()
                self.fail(unsupported_version() if version else Refusal.of(400, MALFORMED))
        else:
            if self.current is not None:  # a request is still arriving after this read
                self._account(data, start, in_body, size_before)

    def fail(self, refusal: Refusal) -> None:
        """Refuse the request being received (or the stream, if none began) for good."""
        request = self.current or Request()
        self.current = None
        self.upgrade_body = None
        if not request.request_id:
            request.request_id = new_request_id()
        request.continue_owed = False
        self.receiver.refuse(request, final(refusal))

    def _account(self, data: bytes, start: Request | None, in_body: bool, size: int) -> None:
        """Count a read that fell wholly inside one message against that message's bounds.

        A read that also holds the end of an earlier message is counted by the callbacks only,
        so what the parser may hold unseen is one read (256 KiB) at most.
        """
        request = self.current
        if request is None or not self.receiver.receiving:
            return
        begins = self.begun - self._begun_before  # messages begun in this read
        if request is start and begins == 0:
            if not self.in_body:  # still inside the head
                self.raw_head += len(data)
            elif in_body:  # chunk framing and trailers: held by the parser, not the body
                self.overhead += len(data) - (request.size - size)
                allowed = self.limits.max_header_bytes + self.limits.chunk_overhead * (
                    self.chunk_count + 1
                )
                if self.overhead > allowed:
                    self.fail(header_too_large())
                return
        elif start is None and begins == 1 and not self.in_body:
            self.raw_head += len(data)
        if self.raw_head > self.limits.max_header_bytes:
            self.fail(header_too_large())

    # -- httptools callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if not self.receiver.receiving:
            raise _Stop
        self.current = request = Request()
        self.headers = request.headers
        self.in_body = False
        self.raw_head = self.head_bytes = 0
        self.begin_read_len = self._read_len
        self.began_at = now = self._clock()
        if self.begun:  # the first request keeps the deadline set when the connection opened
            self.receiver.deadline = now + self.header_timeout
        self.begun += 1

    # The head is measured once complete (cheaper than per field; a single read holds at most
    # 256 KiB, and whole reads are checked in _account); trailer fields are summed as they come
    # and held to the same limit.

    def on_url(self, url: bytes) -> None:
        request = self.current
        assert request is not None
        request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.in_body:
            # A trailer field: counted, never merged into the headers (RFC 9112 7.1.2), so
            # nothing (a token, a Content-Type) can be slipped in after the checks.
            self.head_bytes += len(name) + len(value) + 4
            return
        key = _NAMES.get(name)
        if key is None:
            key = _name(name)
        headers = self.headers
        if key in headers:
            request = self.current
            assert request is not None
            if request.repeated is None:
                request.repeated = []
            request.repeated.append((key, value.decode("latin-1")))
        else:
            headers[key] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        request = self.current
        assert request is not None
        self.in_body = True
        most = self.max_header_bytes
        # The head lies within the reads it arrived in: measure it exactly only if those
        # could hold more than the limit (a small request in one read never needs it).
        if (
            self.raw_head + self.begin_read_len + self._read_len > most
            and _head_size(request) > most
        ):
            self.fail(header_too_large())
            raise _Stop
        parser = self.parser
        request.method = parser.get_method().decode("latin-1")
        request.version = version = parser.get_http_version()
        request.keep_alive = parser.should_keep_alive()
        given = request.headers.get("x-request-id")
        request.request_id = (
            given if given is not None and _REQUEST_ID_RE.match(given) else new_request_id()
        )
        if version not in ("1.1", "1.0"):
            self.fail(unsupported_version())
            raise _Stop
        refusal = check_head(request)  # sets request.path, which routing needs
        handler = request.handler = self.route(request)
        refusal = request.refusal = refusal or handler.check(request)
        self.limit = limit = handler.body_limit(request)
        length = content_length(request)
        if length > limit:
            self.fail(too_large(limit))  # at once: no point reading a body we refuse
            raise _Stop
        if length < 0:  # chunked: its framing is measured in _account
            self.overhead = self.chunk_count = 0
        expect = request.headers.get("expect")
        if expect is not None and expect.lower() == "100-continue" and version == "1.1":
            # RFC 9110 10.1.1: a request that will be refused gets its final status instead
            # of a 100 (and the connection closes: its body may or may not follow).
            if refusal is not None:
                self.fail(refusal)
                raise _Stop
            request.continue_owed = True
            self.receiver.continue_due()
        # The body is due body_timeout after the request's first byte.
        self.receiver.deadline = self.began_at + self.body_timeout

    def on_chunk_header(self) -> None:
        self.chunk_count += 1

    def on_body(self, body: bytes) -> None:
        request = self.current
        assert request is not None
        request.size += len(body)
        if request.size > self.limit:
            self.fail(too_large(self.limit))
            raise _Stop
        if request.refusal is None:
            request.chunks.append(body)

    def on_message_complete(self) -> None:
        request = self.current
        assert request is not None
        if self.head_bytes > self.max_header_bytes:  # the trailer section is held to it too
            self.fail(header_too_large())
            raise _Stop
        self.current = None
        if self.parser.should_upgrade():
            # RFC 9110 7.8: a server may ignore an Upgrade offer. llhttp ends the message at its
            # headers here; its body, if any, is read by _ignore_upgrade before dispatch.
            self.upgrade_body = (request, content_length(request))
            return
        self._complete(request)

    def _complete(self, request: Request) -> None:
        chunks = request.chunks
        request.body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        request.chunks = []
        request.continue_owed = False
        self.receiver.request_received(request)

    # -- an ignored Upgrade offer ---------------------------------------------------------------

    def _ignore_upgrade(self, rest: bytes) -> None:
        """Go on as if the Upgrade header were absent: read the body, then parse afresh."""
        if self.upgrade_body is None:
            if self.receiver.receiving:
                self.fail(Refusal.of(400, MALFORMED))
            return
        request, missing = self.upgrade_body
        if missing < 0:  # chunked or unknown length: cannot tell where the body ends
            self.current = request
            reason = "Upgrade offered with a body of unknown length"
            self.fail(Refusal.of(400, InvalidRequest(reason)))
            return
        self.parser = httptools.HttpRequestParser(self)
        leftover = self._read_upgrade_body(rest)
        if leftover and self.receiver.receiving:
            self.feed(leftover)

    def _read_upgrade_body(self, data: bytes) -> bytes:
        """Take the upgrade request's body from ``data``; return what follows it."""
        assert self.upgrade_body is not None
        request, missing = self.upgrade_body
        take = data[:missing]
        request.size += len(take)
        if request.size > self.limit:
            self.current = request
            self.fail(too_large(self.limit))
            return b""
        request.chunks.append(take)
        missing -= len(take)
        if missing > 0:
            self.upgrade_body = (request, missing)
            return b""
        self.upgrade_body = None
        self._complete(request)
        return data[len(take) :]


# Field names as sent (bytes) -> lower-case str: clients send the same few names on every
# request, and one dict lookup costs less than a decode and a lower() each time. Bounded: the
# names come from clients.
_NAMES: dict[bytes, str] = {}
_NAMES_LIMIT = 512


def _name(raw: bytes) -> str:
    key = raw.decode("latin-1").lower()
    if len(_NAMES) < _NAMES_LIMIT and len(raw) <= 64:
        _NAMES[raw] = key
    return key


def _head_size(request: Request) -> int:
    """The bytes of the request target and header fields (names, values, ": " and CRLF)."""
    headers = request.headers
    size = len(request.url) + sum(map(len, headers)) + sum(map(len, headers.values()))
    size += 4 * len(headers)
    if request.repeated is not None:
        size += sum(len(name) + len(value) + 4 for name, value in request.repeated)
    return size
