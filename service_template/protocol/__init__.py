"""Pure JSON-RPC 2.0: strict codec, method binding and dispatch. Standard library only
(plus orjson when installed); no I/O, no HTTP."""

from .calls import NO_ID
from .dispatch import INVALID, UNKNOWN_METHOD, CallContext, Dispatcher
from .errors import (
    AccessDenied,
    DeadlineExceeded,
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    RPCError,
    ServerOverloaded,
    error_from_dict,
)
from .methods import Method

__all__ = [
    "INVALID",
    "NO_ID",
    "UNKNOWN_METHOD",
    "AccessDenied",
    "CallContext",
    "DeadlineExceeded",
    "Dispatcher",
    "InternalError",
    "InvalidParams",
    "InvalidRequest",
    "Method",
    "MethodNotFound",
    "ParseError",
    "RPCError",
    "ServerOverloaded",
    "error_from_dict",
]
