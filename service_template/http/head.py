"""What the wire protocol checks in a request head, and the refusals it makes itself.

Pure functions over a ``Request`` whose headers are in; no I/O. The ``/api`` endpoint's own
checks (method, media type, coding) are in ``api.py``.
"""

from __future__ import annotations

import os

from ..protocol.errors import InvalidRequest, ServerOverloaded
from .framing import Refusal, response_head
from .request import Request

MALFORMED = InvalidRequest("Malformed HTTP request")
# RFC 9112 3.2: a 1.1 request without Host, or any with more than one, gets a 400.
_NO_HOST = Refusal.of(400, InvalidRequest("Exactly one Host header is required"))


def check_head(request: Request) -> Refusal | None:
    """Request-line and Host checks (RFC 9112 3.2, 3.2.2): a refusal, or None."""
    url = request.url
    if url[:1] == b"/":
        target = url.decode("latin-1")
        if request.repeated is None:  # the common case, in as few steps as possible
            request.target = target
            request.path = target.partition("?")[0]
            if request.version == "1.1" and "host" not in request.headers:
                return _NO_HOST
            return None
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
        return _NO_HOST
    return None


def content_length(request: Request) -> int:
    """The announced body length; 0 without one, -1 when it cannot be known (chunked)."""
    headers = request.headers
    if "transfer-encoding" in headers and (
        "chunked" in ",".join(request.get_list("transfer-encoding")).lower()
    ):
        return -1
    length = headers.get("content-length", "0")
    return int(length) if length.isascii() and length.isdigit() else -1


def final(refusal: Refusal) -> Refusal:
    """``refusal``, closing the connection after it."""
    if refusal.final:
        return refusal
    return Refusal(refusal.status, refusal.body, refusal.headers, final=True)


def too_large(limit: int) -> Refusal:
    error = InvalidRequest("Request body too large", data={"limit_bytes": limit})
    return Refusal.of(413, error, final=True)


def header_too_large() -> Refusal:
    return Refusal.of(431, InvalidRequest("Request header fields too large"), final=True)


def unsupported_version() -> Refusal:
    return Refusal.of(505, InvalidRequest("HTTP version not supported; use HTTP/1.1"), final=True)


def too_many_pipelined(limit: int) -> Refusal:
    error = ServerOverloaded("Too many pipelined requests", data={"limit": limit})
    return Refusal.of(503, error, (("Retry-After", "1"),), final=True)


def at_capacity() -> bytes:
    """The whole response to a connection over the per-process cap."""
    body = b'{"jsonrpc":"2.0","error":{"code":-32003,"message":"Server overloaded"},"id":null}'
    head = response_head(503, len(body), os.urandom(8).hex(), (("Retry-After", "1"),), True)
    return head + body
