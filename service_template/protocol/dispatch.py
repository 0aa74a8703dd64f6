"""JSON-RPC 2.0 dispatch: request bytes in, response bytes (or ``None``) out.

Pure protocol: no sockets, no HTTP, no Tornado. The caller supplies three seams:

- ``invoke(method, args, kwargs)``: runs a method (thread pool, deadline, ...) and returns its
  result or raises; ``RPCError`` passes to the client as is. A result may come already
  encoded (``codec.Encoded``, made in the thread that ran the method).
- ``CallContext.authenticate()``: the caller's principal or None (asked only when a private
  method or a hook needs it, at most once per request); its ``request_id`` and ``headers``
  reach methods through ``calls.current_call()``.
- ``CallContext.record(...)``: called once per call with its outcome, for metrics and logs.
- ``around(call, proceed)``: optional, wraps every call to an exposed method (the service's
  hooks, composed); without it nothing but the context variable is added per call.

and, optionally, what keeps one request from holding the event loop or the server:

- ``offload(fn)``: runs ``fn()`` off the event loop (a thread) and returns its result. Bodies
  over ``inline_limit`` bytes are decoded there, and large results are checked there.
- ``admission``: batch members that run concurrently take a concurrency slot each.
- ``deadline(method)``: the seconds a call may take; for a private method the token check runs
  under that same deadline, so a token check that hangs ends the call with -32002.
- ``max_reply``: the largest response in bytes; a larger one becomes error -32603 for each
  call it answers. A batch's answers are counted as they come and dropped once over it, so a
  batch of large results never holds more than about ``max_reply`` bytes of them.
- ``pool``: starts plain methods in threads (``PoolCalls``). A public method it runs is started
  straight from here, without a coroutine or task of its own, and the members of a batch are
  all started before any is awaited, so the threads get them together (not with hooks: then
  every call goes through ``around`` and ``invoke``).

Section numbers in comments refer to the JSON-RPC 2.0 specification.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
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
    DeadlineExceeded,
    InternalError,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    ParseError,
    RPCError,
    ServerOverloaded,
)
from .messages import batch_bytes, clip, error_bytes, result_bytes, too_large, validate
from .methods import Method, Params
from .pooled import PoolCalls, Pooled

log = logging.getLogger("service_template.rpc")


UNKNOWN_METHOD: Final = "__unknown__"
"""Metric/log label for calls to names that are not exposed (bounds label cardinality)."""
INVALID: Final = "__invalid__"
"""Metric/log label for bodies or batch members that are not valid requests."""

Invoke = Callable[[Method, tuple[Any, ...], dict[str, Any]], Awaitable[Any]]
Offload = Callable[[Callable[[], Any]], Awaitable[Any]]

INLINE_LIMIT: Final = 16 * 1024
"""Bodies up to this size are decoded on the event loop (well under a millisecond); larger ones
through ``offload``. Their params are not copied into call records either (see ``record``)."""
RETRY_AFTER: Final = 1
"""Seconds a client is told to wait (``data.retry_after``) when a batch member is refused."""


class CallContext(Transport, Protocol):
    """What dispatch needs from the transport for one request: ``request_id``, ``headers``
    and ``authenticate()`` (``calls.Transport``), and a place to record outcomes."""

    def record(
        self, method: str, request_id: Any, params: Params, code: int | None, seconds: float
    ) -> None:
        """Observe one finished call (``code`` is None on success)."""
        ...


class Admission(Protocol):
    """Concurrency slots beyond the one the transport took for the request."""

    def acquire(self, count: int) -> int:
        """Take up to ``count`` slots at once; return how many were taken (maybe 0)."""
        ...

    def release(self, count: int) -> None:
        """Give back slots taken with ``acquire``."""
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
        offload: Offload | None = None,
        inline_limit: int = INLINE_LIMIT,
        admission: Admission | None = None,
        deadline: Callable[[Method], float] | None = None,
        max_containers: int = codec.MAX_CONTAINERS,
        around: Around | None = None,
        pool: PoolCalls | None = None,
        max_reply: int | None = None,
    ) -> None:
        self.methods = dict(methods)
        self.invoke = invoke
        self.max_batch = max_batch
        self.debug = debug
        self.on_batch = on_batch
        self.offload = offload
        self.inline_limit = inline_limit
        self.admission = admission
        self.deadline = deadline
        self.max_containers = max_containers
        self.around = around
        self.pool = pool
        self.max_reply = max_reply
        # Methods started straight in the pool: public ones (a private one checks its token
        # under its deadline first), and only without hooks (they wrap every call).
        self._pooled: frozenset[str] = frozenset(
            name
            for name, method in self.methods.items()
            if pool is not None
            and around is None
            and not method.requires_auth
            and pool.runs_in_pool(method)
        )

    async def dispatch(self, body: bytes, ctx: CallContext) -> bytes | None:
        """Answer one HTTP body. ``None`` means no response at all (only notifications).

        Every call counts against the concurrency limit while it runs, batch members included.
        The transport took one slot for the request; see ``_batch`` for how members get theirs.
        """
        started = time.perf_counter()
        large = len(body) > self.inline_limit
        try:
            if large and self.offload is not None:
                decode = functools.partial(codec.loads, body, self.max_containers)
                payload = await self.offload(decode)
            else:
                payload = codec.loads(body, self.max_containers)
        except ParseError as exc:
            ctx.record(INVALID, None, None, exc.code, time.perf_counter() - started)
            return error_bytes(None, exc)  # section 5: id is null when it cannot be known
        state = _Request(ctx, len(body) if large else 0, self.max_reply)
        try:
            if type(payload) is not list:  # _call, inlined: one coroutine fewer per request
                begun = self._begin(payload, state)
                if begun is None or type(begun) is bytes:
                    reply = begun
                elif type(begun) is Pooled:
                    reply = await self._finish(begun, state)
                else:
                    reply = await begun
                limit = self.max_reply
                too_big = reply is not None and limit is not None and len(reply) > limit
                return self._too_large(payload) if too_big else reply
            if not payload or len(payload) > self.max_batch:
                reason = "empty batch" if not payload else f"batch longer than {self.max_batch}"
                ctx.record(INVALID, None, None, InvalidRequest.default_code, 0.0)
                return error_bytes(None, InvalidRequest(data={"reason": reason}))
            if self.on_batch is not None:
                self.on_batch(len(payload))
            replies = await self._batch(payload, state)
        finally:
            state.close()
        return self._too_large(payload) if state.over else batch_bytes(replies)

    def _too_large(self, payload: Any) -> bytes:
        assert self.max_reply is not None
        log.warning("response over the %d-byte limit: error -32603 instead", self.max_reply)
        return too_large(payload, self.max_reply)

    async def _batch(self, items: list[Any], state: _Request) -> list[bytes | None]:
        """Answer the members of a batch (section 6: in any order, possibly concurrently).

        Members run one after another in this task while they finish without suspending, so a
        batch of cheap calls creates no task at all. From the first member that waits on (I/O,
        or a thread), every later member is started at once, so they run concurrently with it:
        one the pool runs goes straight to it (no task: the pool gets the batch's plain members
        together), any other starts in a task of its own. Each member runs wholly in one task:
        timeouts and cancel scopes stay correct.

        Concurrency slots: members that run one after another share the request's slot. From
        the first member that waits on, each later member needs a slot of its own
        (``admission``); when fewer are free, the first ones in batch order run and every later
        call is answered -32003 with ``data.retry_after`` without running (a notification gets
        no answer, section 6). Why not refuse the whole batch: each member's answer stands on
        its own, so a client retries a refused call as it handles any member's error, and a
        batch longer than the limit can still make progress.
        """
        replies: list[bytes | None] = []
        for index, item in enumerate(items):
            begun = self._begin(item, state)
            if begun is None or type(begun) is bytes:
                replies.append(state.keep(begun))
                continue
            if type(begun) is not Pooled:
                try:
                    suspended = begun.send(None)
                except StopIteration as done:
                    replies.append(state.keep(done.value))
                    continue
                begun = Resume(begun, suspended)
            return await self._concurrently(replies, begun, items[index + 1 :], state)
        return replies

    async def _concurrently(
        self, replies: list[bytes | None], first: Any, later: list[Any], state: _Request
    ) -> list[bytes | None]:
        """The rest of a batch once ``first`` waits: start every later member, then collect."""
        admission = self.admission
        slots = len(later) if admission is None else admission.acquire(len(later))
        waiting: list[tuple[int, Any]] = [(len(replies), first)]  # (position, what to await)
        replies.append(None)
        for position, item in enumerate(later):
            begun: Any = self._begin(item, state) if position < slots else self._refuse(item, state)
            if begun is None or type(begun) is bytes:
                replies.append(state.keep(begun))
                continue
            if type(begun) is not Pooled:
                # Counted against the response limit as soon as it is made, not when its
                # turn comes: answers that are made together would otherwise all be held.
                begun = asyncio.ensure_future(_kept(begun, state))
            waiting.append((len(replies), begun))
            replies.append(None)
        try:
            for index, member in waiting:
                if type(member) is Pooled:
                    replies[index] = state.keep(await self._finish(member, state))
                elif type(member) is Resume:
                    replies[index] = state.keep(await member)
                else:
                    replies[index] = await member  # a task: counted already (_kept)
        except BaseException:
            # Cancelled: what was started still ends before the slots go back.
            rest = [
                member.future if type(member) is Pooled else member
                for _, member in waiting
                if type(member) is not Resume
            ]
            await asyncio.gather(*rest, return_exceptions=True)
            raise
        finally:
            if admission is not None and slots:
                admission.release(slots)
        return replies

    def _refuse(self, item: Any, state: _Request) -> bytes | None:
        """Answer a batch member that got no concurrency slot: -32003, never run."""
        request_id, method, params, problem = validate(item)
        error = problem or ServerOverloaded(data={"retry_after": RETRY_AFTER})
        label = INVALID if problem else method if method in self.methods else UNKNOWN_METHOD
        state.ctx.record(
            label, request_id, params if not state.body_bytes else state.summary(), error.code, 0.0
        )
        return None if request_id is NO_ID else error_bytes(request_id, error)

    def _begin(self, item: Any, state: _Request) -> Any:
        """Start one request object: its answer (bytes, or None for a notification) when known
        at once, a ``Pooled`` call started in the pool, or the coroutine that answers it."""
        started = time.perf_counter()
        request_id, method, params, problem = validate(item)
        if problem is not None:
            state.ctx.record(INVALID, request_id, None, problem.code, time.perf_counter() - started)
            return error_bytes(request_id, problem)
        if method not in self._pooled:
            return self._call_checked(request_id, method, params, state, started)
        entry = self.methods[method]
        try:
            args, kwargs = entry.bind(params)
        except InvalidParams as exc:
            return self._failed(method, request_id, params, state, started=started, error=exc)
        context = contextvars.copy_context()
        context.run(CURRENT.set, (method, request_id, state.ctx, state))
        future = self.pool.start(entry, args, kwargs, context)  # type: ignore[union-attr]
        return Pooled(future, request_id, method, params, started)

    async def _finish(self, call: Pooled, state: _Request) -> bytes | None:
        """Answer a call started in the pool, once its thread is done."""
        request_id, method = call.request_id, call.method
        try:
            result = await call.future
            reply = None if request_id is NO_ID else await self._reply(request_id, result, method)
        except RPCError as exc:
            error: RPCError = exc
        except Exception as exc:
            log.exception("method %r raised", method)
            error = self._internal(exc)
        else:
            state.ctx.record(
                method,
                request_id,
                call.params if not state.body_bytes else state.summary(),
                None,
                time.perf_counter() - call.started,
            )
            return reply
        return self._failed(
            method, request_id, call.params, state, started=call.started, error=error
        )

    async def _call_checked(
        self, request_id: Any, method: str, params: Params, state: _Request, started: float
    ) -> bytes | None:
        """Answer a valid request object (section 4) that is not started in the pool."""
        ctx = state.ctx
        entry = self.methods.get(method)
        label = method if entry is not None else UNKNOWN_METHOD
        try:
            if entry is None:
                raise MethodNotFound(data={"method": clip(method)})
            if self.around is None:  # the fast path: a CallInfo is made only if asked for
                token = CURRENT.set((method, request_id, ctx, state))
                try:
                    if entry.requires_auth:
                        result = await self._call_private(entry, params, state)
                    else:  # _run, inlined: one coroutine fewer per call
                        args, kwargs = entry.bind(params)
                        result = await self.invoke(entry, args, kwargs)
                finally:
                    CURRENT.reset(token)
            else:
                call = CallInfo(method, request_id, ctx, state)
                token = CURRENT.set(call)
                try:
                    result = await self.around(call, lambda: self._run(entry, params, state))
                finally:
                    CURRENT.reset(token)
            reply = None if request_id is NO_ID else await self._reply(request_id, result, method)
        except RPCError as exc:
            error: RPCError = exc
        except Exception as exc:
            log.exception("method %r raised", method)
            error = self._internal(exc)
        else:
            ctx.record(
                label,
                request_id,
                params if not state.body_bytes else state.summary(),
                None,
                time.perf_counter() - started,
            )
            return reply
        return self._failed(label, request_id, params, state, started=started, error=error)

    def _failed(
        self,
        label: str,
        request_id: Any,
        params: Params,
        state: _Request,
        *,
        started: float,
        error: RPCError,
    ) -> bytes | None:
        """Record a call that ended in ``error``; its answer (None for a notification)."""
        state.ctx.record(
            label,
            request_id,
            params if not state.body_bytes else state.summary(),
            error.code,
            time.perf_counter() - started,
        )
        if request_id is NO_ID:
            return None  # section 4.1: notifications are never answered, not even errors
        return error_bytes(request_id, error)

    async def _reply(self, request_id: Any, result: Any, method: str) -> bytes:
        """The response to a call that returned ``result``; InternalError for a result JSON
        cannot hold (recorded as a fault)."""
        if type(result) is codec.Encoded:  # encoded where it was made (a thread)
            return b'{"jsonrpc":"2.0","result":%b,"id":%b}' % (
                result.data,
                codec.encode(request_id),
            )
        reply = result_bytes(request_id, result, method)
        if codec.suspect(result, reply):  # orjson writes NaN and infinities as null
            await self._check_finite(result, len(reply), method)
        return reply

    async def _run(self, entry: Method, params: Params, state: _Request) -> Any:
        """Authenticate (private methods), bind and run one call: the innermost hook's next."""
        if entry.requires_auth:
            return await self._call_private(entry, params, state)
        args, kwargs = entry.bind(params)
        return await self.invoke(entry, args, kwargs)

    async def _call_private(self, entry: Method, params: Params, state: _Request) -> Any:
        """Authenticate, then call: both under the call's one deadline, when there is one.

        An authentication that does not answer in time ends the call with -32002 (it may be a
        valid token: "access denied" would be a wrong answer), never a hung call.
        """
        if self.deadline is None:
            if await state.principal() is None:
                raise AccessDenied()
            args, kwargs = entry.bind(params)
            return await self.invoke(entry, args, kwargs)
        limit = self.deadline(entry)
        scope = asyncio.timeout(limit)
        try:
            async with scope:
                if await state.principal() is None:
                    raise AccessDenied()
                args, kwargs = entry.bind(params)
                return await self.invoke(entry, args, kwargs)
        except TimeoutError:
            if not scope.expired():
                raise  # the method's own TimeoutError: a fault like any other
            log.warning("%s passed its %gs deadline (token check and call)", entry.name, limit)
            raise DeadlineExceeded(data={"timeout": limit}) from None

    async def _check_finite(self, result: Any, size: int, method: str) -> None:
        try:
            if size > self.inline_limit and self.offload is not None:
                await self.offload(functools.partial(codec.check_finite, result))
            else:
                codec.check_finite(result)
        except ValueError as exc:
            log.error("result of %r is not valid JSON (NaN or infinity): %s", method, exc)
            raise InternalError() from None

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


async def _kept(answer: Awaitable[bytes | None], state: _Request) -> bytes | None:
    return state.keep(await answer)


class _Request(Authentication):
    """Per-request state shared by the calls of one body: who the caller is (asked of the
    transport at most once, however many calls need it: it is the request's
    ``Authentication``, one object fewer per request), and whether params are summarized in
    records."""

    __slots__ = ("body_bytes", "ctx", "over", "reply_room")

    def __init__(self, ctx: CallContext, body_bytes: int, max_reply: int | None) -> None:
        # Authentication's own fields, set here rather than through its __init__ (a call
        # fewer per request).
        self._transport = ctx
        self._verdict = None
        self.ctx = ctx
        self.body_bytes = body_bytes  # 0 unless the body was over inline_limit
        # Bytes a batch's answers may still take (the brackets counted); None: no limit.
        self.reply_room = None if max_reply is None else max_reply - 1
        self.over = False  # the answers passed max_reply: the reply becomes -32603 errors

    def keep(self, reply: bytes | None) -> bytes | None:
        """``reply``, counted against the response limit; once past it, an empty stand-in
        (the answer is dropped, not held: the request is answered with errors instead)."""
        if reply is None or self.reply_room is None:
            return reply
        self.reply_room -= len(reply) + 1  # and the comma or bracket before it
        if self.reply_room < 0:
            self.over = True
        return b"" if self.over else reply

    def summary(self) -> Params:
        """What a record gets instead of the params of a body over ``inline_limit``."""
        return {"omitted": "params of a large body", "body_bytes": self.body_bytes}

    def close(self) -> None:
        """The request is answered: an authentication still running (past every deadline) is
        abandoned, so a hung check cannot keep a task alive per request."""
        self.abandon()
