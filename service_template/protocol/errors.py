"""JSON-RPC 2.0 error codes and the exception a method raises for an application error.

The exception tree, in one place:

- ``RPCError(code, message, data=None)``: an error object as the specification defines it
  (section 5.1). A method raises it to send the client a specific error; the client library
  raises it (or a subclass) when a server answers with an error object.
- ``ParseError``, ``InvalidRequest``, ``MethodNotFound``, ``InvalidParams``, ``InternalError``:
  the standard codes (-32700, -32600, -32601, -32602, -32603).
- ``AccessDenied`` (-32001), ``DeadlineExceeded`` (-32002), ``ServerOverloaded`` (-32003):
  this framework's own server errors, inside the range -32000..-32099 that the specification
  reserves for implementation-defined server errors.

Any other exception raised by a method is a server fault: it is logged with its traceback and
the client sees only ``InternalError`` with a generic message (unless the service is in debug mode).
"""

from __future__ import annotations

from typing import Any, ClassVar

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
ACCESS_DENIED = -32001
DEADLINE_EXCEEDED = -32002
SERVER_OVERLOADED = -32003


class RPCError(Exception):
    """A JSON-RPC error object: ``code`` (int), ``message`` (str), optional ``data``."""

    default_code: ClassVar[int] = INTERNAL_ERROR
    default_message: ClassVar[str] = "Internal error"

    def __init__(self, code: int | None = None, message: str | None = None, data: Any = None):
        self.code = self.default_code if code is None else code
        self.message = self.default_message if message is None else message
        self.data = data
        super().__init__(self.code, self.message)

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The error member of a response, built fresh on every call."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


class _StandardError(RPCError):
    """Base of the predefined errors: constructed with an optional message and data only."""

    def __init__(self, message: str | None = None, data: Any = None) -> None:
        super().__init__(None, message, data)


class ParseError(_StandardError):
    """The body is not valid JSON (or not JSON this server can represent)."""

    default_code = PARSE_ERROR
    default_message = "Parse error"


class InvalidRequest(_StandardError):
    """The JSON is valid but is not a valid Request object."""

    default_code = INVALID_REQUEST
    default_message = "Invalid Request"


class MethodNotFound(_StandardError):
    """No method of that name is exposed."""

    default_code = METHOD_NOT_FOUND
    default_message = "Method not found"


class InvalidParams(_StandardError):
    """The params do not bind to the method's signature."""

    default_code = INVALID_PARAMS
    default_message = "Invalid params"


class InternalError(_StandardError):
    """A server fault; details go to the log, not the client."""

    default_code = INTERNAL_ERROR
    default_message = "Internal error"


class AccessDenied(_StandardError):
    """A private method was called without a valid API token."""

    default_code = ACCESS_DENIED
    default_message = "Access denied"


class DeadlineExceeded(_StandardError):
    """The method ran past its deadline."""

    default_code = DEADLINE_EXCEEDED
    default_message = "Deadline exceeded"


class ServerOverloaded(_StandardError):
    """Over the concurrency limit; the client may retry later."""

    default_code = SERVER_OVERLOADED
    default_message = "Server overloaded"


_BY_CODE: dict[int, type[_StandardError]] = {
    cls.default_code: cls
    for cls in (
        ParseError,
        InvalidRequest,
        MethodNotFound,
        InvalidParams,
        InternalError,
        AccessDenied,
        DeadlineExceeded,
        ServerOverloaded,
    )
}


def error_from_dict(error: dict[str, Any]) -> RPCError:
    """Turn a received error object into the most specific exception class for its code."""
    code = error.get("code")
    message = error.get("message")
    if not isinstance(code, int) or isinstance(code, bool) or not isinstance(message, str):
        return RPCError(INVALID_REQUEST, "Malformed error object in response", error)
    cls = _BY_CODE.get(code)
    if cls is None:
        return RPCError(code, message, error.get("data"))
    return cls(message, error.get("data"))
