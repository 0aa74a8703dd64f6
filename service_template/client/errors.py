"""The client's exceptions (the tree is drawn in the package docstring) and their wording."""

from __future__ import annotations

import builtins
import os
import re
from typing import Any

from service_template.protocol import errors

__all__ = [
    "ClientError",
    "ConnectError",
    "HTTPStatusError",
    "ProtocolError",
    "RequestTimeout",
    "ServerOverloaded",
    "TransportError",
]


class ClientError(Exception):
    """No usable answer came back for a request."""


class TransportError(ClientError):
    """The HTTP exchange with ``url`` failed."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class ConnectError(TransportError, builtins.ConnectionError):
    """Could not connect to the service, or the connection broke before the answer."""


class RequestTimeout(TransportError, builtins.TimeoutError):
    """The service did not answer within the client's timeout."""


class HTTPStatusError(TransportError):
    """The service answered with a non-2xx status and no JSON-RPC body."""

    def __init__(self, message: str, *, url: str, status_code: int) -> None:
        super().__init__(message, url=url)
        self.status_code = status_code


class ProtocolError(ClientError):
    """The answer is not a valid JSON-RPC response to the request that was sent."""


class ServerOverloaded(errors.ServerOverloaded):
    """The service is over its concurrency limit; wait ``retry_after`` seconds (if given)."""

    def __init__(
        self, message: str | None = None, data: Any = None, *, retry_after: float | None = None
    ) -> None:
        super().__init__(message, data)
        self.retry_after = retry_after


def reason(exc: BaseException) -> str:
    """The operating system's words for a failure ("connection refused"), else the message."""
    cause: BaseException | None = exc
    for _ in range(8):  # bounded walk down the cause chain
        if cause is None:
            break
        if isinstance(cause, OSError) and (cause.errno or cause.strerror):
            # The system's words for the errno: asyncio's own strerror quotes the address
            # ("Connect call failed ('10.0.0.7', 8000)"), which a peer's message must not show.
            text = os.strerror(cause.errno) if cause.errno else str(cause.strerror)
            return text[:1].lower() + text[1:]
        cause = cause.__cause__ or cause.__context__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)) or type(exc).__name__
    return text[:1].lower() + text[1:]
