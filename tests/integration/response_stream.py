"""Reading the HTTP/1.1 responses a server writes on one socket, one after another.

``http.client`` reads one response through a buffered file that it throws away afterwards, so
the bytes of a second pipelined response are lost with it. ``ResponseStream`` keeps one buffer
for the whole connection and hands out responses in the order they arrive, including interim
(1xx) ones, so a test can check order and count exactly. Framing follows RFC 9112 section 6.3:
no body for 1xx, 204 and 304 (and for a response to HEAD), ``Content-Length`` when given, else
the body runs to the end of the connection. The servers under test never send chunked
responses; one that did fails the test with a clear message.
"""

from __future__ import annotations

import json
import socket
import time
from dataclasses import dataclass, field
from typing import Any


class ClosedEarly(AssertionError):
    """The server closed the connection in the middle of a response."""


@dataclass
class Response:
    """One response as it came off the wire (header names lower case)."""

    status: int
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The value of a header sent once; fails if it was sent more than once."""
        values = self.headers.get(name.lower(), [])
        assert len(values) <= 1, f"{name} sent {len(values)} times: {values}"
        return values[0] if values else None

    @property
    def closes(self) -> bool:
        """The response says the server closes the connection after it."""
        value = self.header("connection") or ""
        return "close" in value.lower()

    def json(self) -> Any:
        return json.loads(self.body)


class ResponseStream:
    """Successive responses read from ``sock`` (which the caller owns and closes)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.eof = False

    def next(self, timeout: float, *, head: bool = False) -> Response | None:
        """The next response (interim ones included); None if the server closed cleanly first.

        Raises ``TimeoutError`` when no complete response arrives within ``timeout`` seconds,
        ``ClosedEarly`` when the connection ends inside one, and ``ConnectionResetError`` when
        the server resets it. ``head``: the request was a HEAD (a body is never sent).
        """
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill(deadline):
                if self.buffer:
                    raise ClosedEarly(f"closed inside a response head: {bytes(self.buffer)!r}")
                return None
        end = self.buffer.index(b"\r\n\r\n")
        head_bytes = bytes(self.buffer[:end])
        del self.buffer[: end + 4]
        response = _parse_head(head_bytes)
        if head or response.status < 200 or response.status in (204, 304):
            return response
        if response.header("transfer-encoding") is not None:
            raise AssertionError(f"unexpected chunked response: {head_bytes!r}")
        length = response.header("content-length")
        if length is None:  # close-delimited body
            while self._fill(deadline):
                pass
            response.body = bytes(self.buffer)
            self.buffer.clear()
            return response
        size = int(length)
        while len(self.buffer) < size:
            if not self._fill(deadline):
                raise ClosedEarly(f"closed after {len(self.buffer)} of {size} body bytes")
        response.body = bytes(self.buffer[:size])
        del self.buffer[:size]
        return response

    def final(self, timeout: float) -> tuple[list[Response], Response | None]:
        """The interim responses, then the next final one (None: closed cleanly first)."""
        deadline = time.monotonic() + timeout
        interim: list[Response] = []
        while True:
            response = self.next(max(deadline - time.monotonic(), 0.001))
            if response is None or response.status >= 200:
                return interim, response
            interim.append(response)

    def closed(self, timeout: float) -> bytes:
        """Wait until the server closes; returns what arrived meanwhile (a reset counts)."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
        except ConnectionResetError:
            pass
        rest = bytes(self.buffer)
        self.buffer.clear()
        return rest

    def _fill(self, deadline: float) -> bool:
        """Read more bytes; False at the end of the stream."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no complete response in time")
        self.sock.settimeout(remaining)
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True


def _parse_head(head: bytes) -> Response:
    lines = head.split(b"\r\n")
    version, _, rest = lines[0].partition(b" ")
    assert version in (b"HTTP/1.1", b"HTTP/1.0"), f"not an HTTP response: {head[:200]!r}"
    response = Response(int(rest[:3]))
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        assert sep, f"malformed response header line {line!r}"
        response.headers.setdefault(name.decode("latin-1").lower(), []).append(
            value.strip().decode("latin-1")
        )
    return response
