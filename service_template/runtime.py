"""What a running service is made of, apart from HTTP: its method table, dispatcher,
thread pool, deadlines, token checks, metrics, call log, readiness and in-flight accounting.

The HTTP layer owns one ``Runtime`` and asks it for everything; nothing here knows Tornado.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import health, hooks
from .auth import extract_token
from .config import Settings
from .context import API_TOKEN_PRINCIPAL, HeaderView
from .logs import CallLog, log_route_request
from .metrics import Metrics, make_registry
from .openrpc import build_document
from .protocol import DeadlineExceeded, Dispatcher, Method
from .protocol.aio import Resume
from .routing import RouteTable
from .service import MicroService, StartupError

log = logging.getLogger("service_template.runtime")


class Runtime:
    """A service instance wired for serving."""

    def __init__(self, service: MicroService, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.name = settings.name or type(service).name
        methods = service.build_registry()
        self.document = build_document(
            self.name, service.version, methods.values(), _own_doc(type(service))
        )
        methods["rpc.discover"] = Method("rpc.discover", self._discover)
        self.methods = methods
        self.executor = ThreadPoolExecutor(
            settings.thread_pool_size, thread_name_prefix=f"{self.name}-call"
        )
        self.metrics = (
            Metrics(make_registry(), self.name, methods) if settings.metrics_enabled else None
        )
        self.call_log = (
            CallLog(
                settings.redact_params,
                {name: tuple(m.signature.parameters) for name, m in methods.items()},
            )
            if settings.log_calls
            else None
        )
        try:
            # The runtime's own hooks (tracing, for one) belong in front of the service's, so
            # a span covers the service's hooks too: compose([*runtime_hooks, *service's]).
            around = hooks.compose(service.call_hooks())
            self.routes = RouteTable(type(service).routes, settings.route_max_body_bytes)
        except (TypeError, ValueError) as exc:
            raise StartupError(str(exc)) from None
        self.dispatcher = Dispatcher(
            methods,
            self.invoke,
            max_batch=settings.max_batch,
            debug=settings.debug,
            on_batch=self.metrics.observe_batch if self.metrics else None,
            around=around,
        )
        self.checks = service.readiness_checks()
        self.token_check = service.api_token_is_valid
        # The built-in check is a constant-time compare: cheap enough for the event loop.
        # A user's override may do I/O, so a plain one runs in the thread pool.
        self.token_check_inline = (
            getattr(type(service).api_token_is_valid, "__func__", type(service).api_token_is_valid)
            is MicroService.api_token_is_valid
        )
        # The built-in authenticate takes the token path below (authorized); an override is
        # called as it is declared (async on the loop, plain in the pool).
        authenticate = getattr(type(service).authenticate, "__func__", type(service).authenticate)
        self.custom_authenticate = authenticate is not MicroService.authenticate
        self.started_at = time.time()
        self.draining = False
        self.in_flight = 0  # /api requests admitted and not yet answered
        self._idle: asyncio.Event | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._threads_lock = threading.Lock()
        self.threads_busy = 0  # plain methods running in the pool right now

    async def _discover(self) -> dict[str, Any]:
        """Returns the OpenRPC document of this service."""
        return self.document

    # -- calls ----------------------------------------------------------------------------------

    async def invoke(self, method: Method, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run a method under its deadline; plain methods in the thread pool.

        Async methods run their first step inline: one that finishes without suspending (most
        cheap ones) needs no timer and no task, and, since /metrics is served on the same
        loop, could never be seen in flight, so the gauge is only touched once it suspends.
        The deadline counts from the start of the call; the rest runs in this same task
        (see ``protocol.aio.Resume``).
        """
        limit = method.timeout or self.settings.call_timeout
        if not method.is_async:
            return await self._invoke_in_pool(method, args, kwargs, limit)
        started = asyncio.get_running_loop().time()  # the clock asyncio.timeout_at uses
        coro = method.func(*args, **kwargs)
        try:
            first = coro.send(None)
        except StopIteration as done:
            return done.value
        deadline = asyncio.timeout_at(started + limit)
        with self._in_flight():
            try:
                async with deadline:
                    return await Resume(coro, first)
            except TimeoutError:
                if not deadline.expired():
                    raise  # the method's own TimeoutError: a fault like any other
                raise DeadlineExceeded(data={"timeout": limit}) from None

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
        loop = asyncio.get_running_loop()
        # A copy of the caller's context, so current_call() answers in the thread too.
        call = functools.partial(
            contextvars.copy_context().run, self._run_in_thread, method.func, args, kwargs
        )
        deadline = asyncio.timeout(limit)
        try:
            with self._in_flight():
                async with deadline:
                    return await loop.run_in_executor(self.executor, call)
        except TimeoutError:
            if not deadline.expired():
                raise
            log.warning("%s passed its %gs deadline; its thread runs on", method.name, limit)
            raise DeadlineExceeded(data={"timeout": limit}) from None

    async def authenticate(self, headers: HeaderView) -> Any:
        """The principal of a request (``MicroService.authenticate``), or None; any failure
        means None (fail closed), logged for the operator and never shown to the caller."""
        if not self.custom_authenticate:
            try:
                token = extract_token(self.service.validation_strategies, headers)
            except ValueError:  # a credential the strategies cannot read as one token
                return None
            return API_TOKEN_PRINCIPAL if await self.authorized(token) else None
        check = self.service.authenticate
        try:
            if inspect.iscoroutinefunction(check):
                principal = await check(headers)
            else:
                loop = asyncio.get_running_loop()
                principal = await loop.run_in_executor(self.executor, check, headers)
        except Exception:
            log.exception("authenticate raised; access denied")
            return None
        return principal or None  # False, "" or 0 prove no identity either

    async def authorized(self, token: str | None) -> bool:
        """Whether ``token`` passes the service's check; any failure means no (fail closed)."""
        if not token:
            return False
        check = self.token_check
        try:
            if self.token_check_inline:
                verdict = check(token)
            elif inspect.iscoroutinefunction(check):
                verdict = await check(token)
            else:
                loop = asyncio.get_running_loop()
                verdict = await loop.run_in_executor(self.executor, check, token)
        except Exception:
            log.exception("api_token_is_valid raised; access denied")
            return False
        return verdict is True

    def observe_route(
        self, route: str, method: str, status: int, seconds: float, request_id: str
    ) -> None:
        """Metrics and the access line of one request answered by a service's own route."""
        if self.metrics is not None:
            self.metrics.observe_route(route, method, status, seconds)
        if self.call_log is not None:
            log_route_request(route, method, status, seconds, request_id)

    # -- admission and drain --------------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task the runtime keeps a reference to until it ends."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def count_rejection(self, status: int) -> None:
        if self.metrics is not None:
            self.metrics.rejected.labels(str(status)).inc()

    def admit(self) -> bool:
        """Take a slot for one /api request; False when over the concurrency limit."""
        if self.in_flight >= self.settings.max_concurrency:
            return False
        self.in_flight += 1
        return True

    def release(self) -> None:
        self.in_flight -= 1
        if self.in_flight == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, limit: float) -> bool:
        """Wait until no request is in flight; False if ``limit`` seconds pass first."""
        if self.in_flight == 0:
            return True
        self._idle = asyncio.Event()
        try:
            async with asyncio.timeout(limit):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    # -- health ---------------------------------------------------------------------------------

    async def readiness(self) -> dict[str, Any]:
        return await health.readiness(
            self.checks, self.settings.readiness_timeout, self.executor, lambda: self.draining
        )

    def liveness(self) -> dict[str, Any]:
        return health.liveness(self.name, self.started_at)

    def _run_in_thread(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        with self._threads_lock:
            self.threads_busy += 1
        try:
            return func(*args, **kwargs)
        finally:
            with self._threads_lock:
                self.threads_busy -= 1

    def close(self) -> bool:
        """Release the thread pool; False if a plain method is still running in it (past its
        deadline or the drain's): the process must then exit without waiting for it."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        with self._threads_lock:
            return self.threads_busy == 0


def _own_doc(cls: type) -> str | None:
    """The class's own docstring, not one inherited from MicroService."""
    doc = vars(cls).get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) else None
