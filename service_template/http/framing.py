"""Response framing: status lines, the cached ``Date`` header, response heads, refusals.

Heads are built from pre-encoded pieces (this is the hot path); the ``Date`` line is formatted
at most once per second by the server's sweeper, not per response (RFC 9110 6.6.1: an origin
server with a clock MUST send Date).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import formatdate

from ..protocol import codec
from ..protocol.errors import RPCError

REASONS = {
    100: b"Continue",
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
    505: b"HTTP Version Not Supported",
}
_STATUS_LINES = {
    status: b"HTTP/1.1 %d %s\r\n" % (status, reason) for status, reason in REASONS.items()
}
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# The head of the most common response (200, JSON body, keep-alive), formatted in one step:
# % (DATE.line, content length, request id).
OK_HEAD = (
    b"HTTP/1.1 200 OK\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n"
    b"X-Request-Id: %s\r\n\r\n"
)
_JSON_LENGTH = b"Content-Type: application/json\r\nContent-Length: %d\r\n"
# The answer to a request of notifications only (no body, keep-alive): % (DATE.line, request id).
NO_CONTENT_HEAD = _STATUS_LINES[204] + b"%sX-Request-Id: %s\r\n\r\n"


class _DateCache:
    __slots__ = ("line", "second")

    def __init__(self) -> None:
        self.second = -1
        self.line = b""


DATE = _DateCache()  # DATE.line: the current Date header line


def refresh_date() -> None:
    """Format the ``Date`` line again if the second changed (the server's sweeper calls this
    twice a second, so responses only read a cached line)."""
    second = int(time.time())
    if second != DATE.second:
        DATE.line = b"Date: %s\r\n" % formatdate(second, usegmt=True).encode("ascii")
        DATE.second = second


def date_line() -> bytes:
    """``Date: <IMF-fixdate>\\r\\n``, at most half a second old while a server runs."""
    return DATE.line


refresh_date()


Headers = tuple[tuple[str, str], ...]


def response_head(
    status: int, length: int | None, request_id: str, extra: Headers = (), close: bool = False
) -> bytes:
    """The status line and headers of a response with a JSON body of ``length`` bytes (None:
    no body at all), ending with the blank line."""
    head = _STATUS_LINES.get(status) or b"HTTP/1.1 %d Unknown\r\n" % status
    head += DATE.line
    if length is not None:
        head += _JSON_LENGTH % length
    head += b"X-Request-Id: %s\r\n" % request_id.encode("latin-1")
    for name, value in extra:
        head += f"{name}: {value}\r\n".encode("latin-1")
    if close:
        head += b"Connection: close\r\n"
    return head + b"\r\n"


def error_body(error: RPCError) -> bytes:
    """A JSON-RPC error response with id null, for refusals made before dispatch."""
    return codec.dumps({"jsonrpc": "2.0", "error": error.to_dict(), "id": None})


@dataclass(frozen=True, slots=True)
class Refusal:
    """An HTTP-level refusal of a request, made before any JSON-RPC dispatch.

    ``final``: the request cannot be read to its end (too large, malformed, too slow), so the
    connection closes after answering it; otherwise its body is read and discarded and the
    connection stays usable.
    """

    status: int
    body: bytes
    headers: Headers = ()
    final: bool = False

    @classmethod
    def of(
        cls, status: int, error: RPCError, headers: Headers = (), *, final: bool = False
    ) -> Refusal:
        return cls(status, error_body(error), headers, final)
