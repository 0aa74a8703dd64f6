"""How one method call runs: under its deadline, on the event loop or in the thread pool.

The dispatcher (protocol/dispatch.py) decides what to call; an ``Invoker`` runs it. Async
methods run in the request's own task, plain ones in ``pool.ThreadPool`` (their result encoded
in the same thread), both under the method's deadline capped by the caller's ``X-Timeout-Ms``
(protocol/deadline.py). The in-flight gauge counts a call while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .config import Settings
from .metrics import Metrics
from .pool import ThreadPool
from .protocol import DeadlineExceeded, Method, codec
from .protocol.aio import Resume
from .protocol.calls import CURRENT, CallInfo
from .protocol.deadline import DEADLINE, HEADER, asked, use_fallback

# The runtime's logger, as before these calls had a module of their own: operators filter on it.
log = logging.getLogger("service_template.runtime")
_DEADLINE_HEADER = HEADER.lower()
_monotonic = time.monotonic


def make_pool(settings: Settings, name: str, metrics: Metrics | None) -> ThreadPool:
    """The pool plain methods run in (see pool.py for why not a ThreadPoolExecutor)."""
    gauge = metrics.in_flight if metrics is not None else None
    return ThreadPool(
        settings.thread_pool_size,
        f"{name}-call",
        _deadline_passed,
        # The in-flight gauge counts a pool call until its thread is done (past its deadline
        # too): one decrement per burst of results.
        on_settled=gauge.dec if gauge is not None else None,
    )


class Invoker:
    """Runs the calls of one runtime (the dispatcher's ``invoke``, ``deadline``, ``offload``
    and ``pool``).

    ``run`` wraps work done in a pool thread (the runtime counts busy threads with it);
    ``decode_executor`` is the one thread large bodies are decoded in.
    """

    def __init__(
        self,
        settings: Settings,
        methods: Mapping[str, Method],
        metrics: Metrics | None,
        pool: ThreadPool,
        *,
        decode_executor: ThreadPoolExecutor,
        run: Callable[[Callable[[], Any]], Any],
    ) -> None:
        self.settings = settings
        self.methods = methods
        self.metrics = metrics
        self.pool = pool
        self.decode_executor = decode_executor
        self._run = run
        use_fallback(_limit_of_current_call)  # the same function for every runtime: idempotent

    async def invoke(self, method: Method, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run a method under its deadline; plain methods in the thread pool.

        Async methods run their first step inline: one that finishes without suspending (most
        cheap ones) needs no timer and no task, and, since /metrics is served on the same
        loop, could never be seen in flight, so the gauge is only touched once it suspends.
        The deadline counts from the start of the call; the rest runs in this same task
        (see ``protocol.aio.Resume``).
        """
        # Capped by the caller's X-Timeout-Ms; refused here, before running, when it had none.
        limit = self.deadline(method)
        if not method.is_async:
            if not method.blocking:  # the author said it never blocks: no hop at all
                return method.func(*args, **kwargs)
            # The deadline's instant, for the clients the method calls (X-Timeout-Ms downstream):
            # set before the context is copied into the pool thread.
            passed_on = DEADLINE.set(_monotonic() + limit)
            try:
                return await self._invoke_in_pool(method, args, kwargs, limit)
            finally:
                DEADLINE.reset(passed_on)
        started = _monotonic()  # not loop.time(), a Python frame: mapped to it below if needed
        coro = method.func(*args, **kwargs)
        try:
            # No DEADLINE yet: a client called in this first step finds the whole limit through
            # _limit_of_current_call (the call has only just started), at no cost to calls
            # that call nobody.
            first = coro.send(None)
        except StopIteration as done:
            return done.value
        # The same instant on the clock asyncio.timeout_at uses (the loop's).
        loop_started = asyncio.get_running_loop().time() - (_monotonic() - started)
        deadline = asyncio.timeout_at(loop_started + limit)
        passed_on = DEADLINE.set(started + limit)
        with self._in_flight():
            try:
                async with deadline:
                    return await Resume(coro, first)
            except TimeoutError:
                if not deadline.expired():
                    raise  # the method's own TimeoutError: a fault like any other
                raise DeadlineExceeded(data={"timeout": limit}) from None
            finally:
                DEADLINE.reset(passed_on)

    def deadline(self, method: Method) -> float:
        """Seconds a call to ``method`` may take (its own timeout, else ``call_timeout``),
        capped by what its caller gave it (``X-Timeout-Ms``, protocol/deadline.py); raises
        ``DeadlineExceeded`` when that was nothing: the call must not start."""
        limit = method.timeout or self.settings.call_timeout
        call = CURRENT.get(None)
        if call is None:
            return limit
        headers = (call[2] if type(call) is tuple else call._transport).headers  # type: ignore[union-attr]
        if _DEADLINE_HEADER not in headers:  # the common case: one dict lookup
            return limit
        given = asked(headers)
        if given is None:
            return limit
        if given <= 0:
            raise DeadlineExceeded(data={"timeout": 0})
        return min(limit, given)

    async def offload(self, work: Callable[[], Any]) -> Any:
        """Run ``work()`` in the decoder thread: large bodies are decoded off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.decode_executor, self._run, work)

    @contextlib.contextmanager
    def _in_flight(self) -> Iterator[None]:
        gauge = self.metrics.in_flight if self.metrics is not None else None
        if gauge is not None:
            gauge.inc()
        try:
            yield
        finally:
            if gauge is not None:
                gauge.dec()

    async def _invoke_in_pool(
        self, method: Method, args: tuple[Any, ...], kwargs: dict[str, Any], limit: float
    ) -> Any:
        return await self.start(method, args, kwargs, contextvars.copy_context())

    def runs_in_pool(self, method: Method) -> bool:
        """Plain methods run in the pool, unless declared ``blocking=False``."""
        return not method.is_async and method.blocking

    def start(
        self,
        method: Method,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        context: contextvars.Context,
    ) -> asyncio.Future[Any]:
        """Start a plain method in the pool, in ``context`` (so current_call() answers there);
        the future gets its result, already encoded, or -32002 once its deadline passes."""
        # The result is encoded in the same thread: a large one costs the loop nothing. The
        # pool keeps the deadline (one timer for all its calls): the same verdict as
        # asyncio.timeout without a timer per call and without cancelling and uncancelling a
        # task, which together cost more than the hop itself.
        # The limit is read in the call's context: it is capped by the caller's X-Timeout-Ms,
        # and its instant is left there for the clients the method calls (DEADLINE).
        try:
            limit = context.run(self._arm, method)  # one entry into the context, not two
        except DeadlineExceeded as exc:  # arrived with no time left: the method never runs
            refused: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            refused.set_exception(exc)
            return refused
        if self.metrics is not None:
            self.metrics.in_flight.inc()
        return self.pool.submit(
            functools.partial(context.run, _encoded, method.func, args, kwargs),
            limit,
            method.name,
        )

    def _arm(self, method: Method) -> float:
        """Run in a pool call's context: its limit (``deadline``), left there as DEADLINE."""
        limit = self.deadline(method)
        DEADLINE.set(_monotonic() + limit)
        return limit


def _limit_of_current_call() -> float | None:
    """Seconds the current call may take, for a client called in an async method's first step
    (before DEADLINE is set); None outside a call of a runtime."""
    call = CURRENT.get(None)
    if call is None:
        return None
    if type(call) is tuple:
        name, ctx = call[0], call[2]
    else:
        assert isinstance(call, CallInfo)
        name, ctx = call.method, call._transport
    invoker = getattr(getattr(ctx, "runtime", None), "invoker", None)
    if not isinstance(invoker, Invoker) or name not in invoker.methods:
        return None
    try:
        return invoker.deadline(invoker.methods[name])
    except DeadlineExceeded:
        return 0.0


def _deadline_passed(name: str, limit: float) -> DeadlineExceeded:
    """What a pool call past its deadline answers (-32002); the thread, if it started, runs on."""
    log.warning("%s passed its %gs deadline; its thread runs on", name, limit)
    return DeadlineExceeded(data={"timeout": limit})


def _encoded(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return codec.preencode(func(*args, **kwargs))
