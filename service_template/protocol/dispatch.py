"""JSON-RPC 2.0 dispatch: request bytes in, response bytes (or ``None``) out.

Pure protocol: no sockets, no HTTP, no Tornado. The caller supplies three seams:

- ``invoke(method, args, kwargs)``: runs a method (thread pool, deadline, ...) and returns its
  result or raises; ``RPCError`` passes to the client as is.
- ``CallContext.authenticate()``: the caller's principal or None (asked only when a private
  method or a hook needs it, at most once per request); its ``request_id`` and ``headers``
  reach methods through ``calls.current_call()``.
- ``CallContext.record(...)``: called once per call with its outcome, for metrics and logs.
- ``around(call, proceed)``: optional, wraps every call to an exposed method (the service's
  hooks, composed); without it nothing but the context variable is added per call.

Section numbers in comments refer to the JSON-RPC 2.0 specification.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol

from . import codec
from .aio import Resume
from .calls import CURRENT, NO_ID, Around, Authentication, CallInfo, Transport
from .errors import (
    AccessDenied,
    InternalError,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    RPCError,
)
from .methods import Method, Params

log = logging.getLogger("service_template.rpc")


UNKNOWN_METHOD: Final = "__unknown__"
"""Metric/log label for calls to names that are not exposed (bounds label cardinality)."""
INVALID: Final = "__invalid__"
"""Metric/log label for bodies or batch members that are not valid requests."""

_ID_TYPES: Final = (str, int, float)

Invoke = Callable[[Method, tuple[Any, ...], dict[str, Any]], Awaitable[Any]]


class CallContext(Transport, Protocol):
    """What dispatch needs from the transport for one request: ``request_id``, ``headers``
    and ``authenticate()`` (``calls.Transport``), and a place to record outcomes."""

    def record(
        self, method: str, request_id: Any, params: Params, code: int | None, seconds: float
    ) -> None:
        """Observe one finished call (``code`` is None on success)."""
        ...


class Dispatcher:
    """Dispatches JSON-RPC bodies to a fixed table of methods."""

    def __init__(
        self,
        methods: Mapping[str, Method],
        invoke: Invoke,
        *,
        max_batch: int = 100,
        debug: bool = False,
        on_batch: Callable[[int], None] | None = None,
        around: Around | None = None,
    ) -> None:
        self.methods = dict(methods)
        self.invoke = invoke
        self.max_batch = max_batch
        self.debug = debug
        self.on_batch = on_batch
        self.around = around

    async def dispatch(self, body: bytes, ctx: CallContext) -> bytes | None:
        """Answer one HTTP body. ``None`` means no response at all (only notifications)."""
        started = time.perf_counter()
        try:
            payload = codec.loads(body)
        except ParseError as exc:
            ctx.record(INVALID, None, None, exc.code, time.perf_counter() - started)
            return _error_bytes(None, exc)  # section 5: id is null when it cannot be known
        if type(payload) is not list:
            return await self._call(payload, ctx, Authentication(ctx))
        if not payload or len(payload) > self.max_batch:
            reason = "empty batch" if not payload else f"batch longer than {self.max_batch}"
            ctx.record(INVALID, None, None, InvalidRequest.default_code, 0.0)
            return _error_bytes(None, InvalidRequest(data={"reason": reason}))
        if self.on_batch is not None:
            self.on_batch(len(payload))
        replies = await self._batch(payload, ctx, Authentication(ctx))
        parts = [reply for reply in replies if reply is not None]
        if not parts:
            return None  # a batch of notifications only: nothing is returned (section 6)
        return b"[" + b",".join(parts) + b"]"

    async def _batch(
        self, items: list[Any], ctx: CallContext, auth: Authentication
    ) -> list[bytes | None]:
        """Answer the members of a batch (section 6: in any order, possibly concurrently).

        Members run one after another in this task while they finish without suspending, so a
        batch of cheap calls creates no task at all. When one suspends (it waits on I/O), every
        later member starts in a task of its own, so they run concurrently with it. Each member
        runs wholly in one task: timeouts and cancel scopes inside methods stay correct.
        """
        replies: list[bytes | None] = []
        for index, item in enumerate(items):
            coro = self._call(item, ctx, auth)
            try:
                suspended = coro.send(None)
            except StopIteration as done:
                replies.append(done.value)
                continue
            rest = [asyncio.ensure_future(self._call(i, ctx, auth)) for i in items[index + 1 :]]
            try:
                replies.append(await Resume(coro, suspended))
            finally:
                replies.extend(await asyncio.gather(*rest))
            break
        return replies

    async def _call(self, item: Any, ctx: CallContext, auth: Authentication) -> bytes | None:
        started = time.perf_counter()
        request_id, method, params, problem = _validate(item)
        if problem is not None:
            ctx.record(INVALID, request_id, None, problem.code, time.perf_counter() - started)
            return _error_bytes(request_id, problem)
        entry = self.methods.get(method)
        label = method if entry is not None else UNKNOWN_METHOD
        try:
            if entry is None:
                raise MethodNotFound(data={"method": method})
            if self.around is None:  # the fast path: a CallInfo is made only if asked for
                token = CURRENT.set((method, request_id, ctx, auth))
                try:
                    if entry.requires_auth and await auth.principal() is None:
                        raise AccessDenied()
                    args, kwargs = entry.bind(params)
                    result = await self.invoke(entry, args, kwargs)
                finally:
                    CURRENT.reset(token)
            else:
                call = CallInfo(method, request_id, ctx, auth)
                token = CURRENT.set(call)
                try:
                    result = await self.around(call, lambda: self._proceed(entry, params, auth))
                finally:
                    CURRENT.reset(token)
            reply = None if request_id is NO_ID else _result_bytes(request_id, result, method)
            # _result_bytes raises InternalError for an unencodable result: recorded as a fault.
        except RPCError as exc:
            error = exc
        except Exception as exc:
            log.exception("method %r raised", method)
            error = self._internal(exc)
        else:
            ctx.record(label, request_id, params, None, time.perf_counter() - started)
            return reply
        ctx.record(label, request_id, params, error.code, time.perf_counter() - started)
        if request_id is NO_ID:
            return None  # section 4.1: notifications are never answered, not even errors
        return _error_bytes(request_id, error)

    async def _proceed(self, entry: Method, params: Params, auth: Authentication) -> Any:
        """Authenticate (private methods), bind and run one call: the innermost hook's next."""
        if entry.requires_auth and await auth.principal() is None:
            raise AccessDenied()
        args, kwargs = entry.bind(params)
        return await self.invoke(entry, args, kwargs)

    def _internal(self, exc: BaseException) -> RPCError:
        """The client's view of a server fault: generic unless the service is in debug mode."""
        if not self.debug:
            return InternalError()
        return InternalError(
            data={
                "exception": type(exc).__name__,
                "message": str(exc),
                "traceback": traceback.format_exception(exc),
            }
        )


def _validate(item: Any) -> tuple[Any, str, Params, RPCError | None]:
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


def _result_bytes(request_id: Any, result: Any, method: str) -> bytes:
    try:
        return codec.dumps({"jsonrpc": "2.0", "result": result, "id": request_id})
    except (TypeError, ValueError, OverflowError) as exc:
        log.error("result of %r is not JSON serializable: %s", method, exc)
        raise InternalError() from None


def _error_bytes(request_id: Any, error: RPCError) -> bytes:
    body = {"jsonrpc": "2.0", "error": error.to_dict(), "id": request_id}
    try:
        return codec.dumps(body)
    except (TypeError, ValueError, OverflowError):
        # Only application data can fail to encode; drop it rather than the whole reply.
        log.error("error data for code %s is not JSON serializable", error.code)
        body["error"] = {"code": error.code, "message": error.message}
        return codec.dumps(body)
