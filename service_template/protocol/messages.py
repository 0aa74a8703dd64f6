"""Request objects checked (section 4) and response bytes built (section 5), one at a time.

Section numbers in comments refer to the JSON-RPC 2.0 specification.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from . import codec
from .calls import NO_ID
from .errors import InternalError, InvalidRequest, RPCError
from .methods import Params

log = logging.getLogger("service_template.rpc")

_ID_TYPES: Final = (str, int, float)


def validate(item: Any) -> tuple[Any, str, Params, RPCError | None]:
    """Check a request object (section 4); return (id, method, params, problem)."""
    if type(item) is not dict:
        return None, "", None, InvalidRequest(data={"reason": "request must be an object"})
    request_id = item.get("id", NO_ID)
    # bool is an int subclass in Python but not a valid id; ids are str, number or null.
    if request_id is not NO_ID and request_id is not None and type(request_id) not in _ID_TYPES:
        reason = "id must be a string, number or null"
        return None, "", None, InvalidRequest(data={"reason": reason})
    method = item.get("method")
    params = item.get("params")
    if item.get("jsonrpc") != "2.0":
        reason = 'jsonrpc must be exactly "2.0"'
    elif type(method) is not str:
        reason = "method must be a string"
    elif "params" in item and type(params) not in (list, dict):
        reason = "params must be an array or an object"  # null too: "a Structured value"
    else:
        return request_id, method, params, None
    # An invalid request is answered even without an id (section 5.1, examples of section 7).
    answer_id = None if request_id is NO_ID else request_id
    return answer_id, "", None, InvalidRequest(data={"reason": reason})


def result_bytes(request_id: Any, result: Any, method: str) -> bytes:
    try:
        return codec.encode({"jsonrpc": "2.0", "result": result, "id": request_id})
    except (TypeError, ValueError, OverflowError) as exc:
        log.error("result of %r is not JSON serializable: %s", method, exc)
        raise InternalError() from None


def batch_bytes(replies: list[bytes | None]) -> bytes | None:
    """A batch's answers as one array, in one copy (one join of "[", a, ",", b, ..., "]");
    None when there are none (a batch of notifications only, section 6)."""
    pieces: list[bytes] = []
    for reply in replies:
        if reply is not None:
            pieces += (b",", reply)
    if not pieces:
        return None
    pieces[0] = b"["
    pieces.append(b"]")
    return b"".join(pieces)


def too_large(payload: Any, limit: int) -> bytes:
    """The reply sent instead of one over ``limit`` bytes: error -32603 (the limit in its
    data) for every request object of ``payload`` that gets an answer, under its own id."""
    data = {"reason": "response too large", "limit_bytes": limit}
    error = InternalError("Response too large", data=data)
    if type(payload) is not list:
        return error_bytes(validate(payload)[0], error)
    ids = [validate(item)[0] for item in payload]
    return b"[" + b",".join(error_bytes(i, error) for i in ids if i is not NO_ID) + b"]"


def clip(method: str) -> str:
    """A method name as echoed in an error: a client's mistake need not come back whole."""
    return method if len(method) <= 200 else method[:200] + "..."


def error_bytes(request_id: Any, error: RPCError) -> bytes:
    body = {"jsonrpc": "2.0", "error": error.to_dict(), "id": request_id}
    try:
        return codec.dumps(body)
    except (TypeError, ValueError, OverflowError):
        # Only application data can fail to encode; drop it rather than the whole reply.
        log.error("error data for code %s is not JSON serializable", error.code)
        body["error"] = {"code": error.code, "message": error.message}
        return codec.dumps(body)
