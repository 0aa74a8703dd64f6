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
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from . import health, hooks, tracing
from .auth import extract_token
from .client_metrics import ClientMetrics
from .config import Settings
from .context import API_TOKEN_PRINCIPAL, HeaderView
from .errors import StartupError
from .logs import CallLog, log_route_request
from .metrics import Metrics, instruments_registry, make_registry
from .openrpc import build_document
from .pool import ThreadPool
from .protocol import DeadlineExceeded, Dispatcher, Method, codec
from .protocol.aio import Resume
from .protocol.calls import CURRENT, CallInfo, current_call
from .protocol.deadline import DEADLINE, HEADER, asked, use_fallback
from .routing import RouteTable
from .version import project_version

if TYPE_CHECKING:  # the service module imports the runner, which imports this: types only
    from .service import MicroService

log = logging.getLogger("service_template.runtime")
_DEADLINE_HEADER = HEADER.lower()
_monotonic = time.monotonic
READINESS_THREADS = 4  # the least the readiness pool may grow to (threads start when used)

# A Host header's value that may stand in a published URL: a name or address, maybe a port.
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")

AUTH_THREADS = 4
"""Threads for plain ``api_token_is_valid`` and ``authenticate`` overrides (they usually wait
on a token or identity store)."""


class Runtime:
    """A service instance wired for serving."""

    def __init__(self, service: MicroService, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.name = settings.name or type(service).name
        use_fallback(_limit_of_current_call)  # the same function for every runtime: idempotent
        methods = service.build_registry()
        # ``version`` is the class attribute, unless a method of that name hides it (a service
        # may well expose a ``version`` method): then the project's version is published.
        declared = getattr(type(service), "version", None)
        about = (self.name, declared if isinstance(declared, str) else project_version())
        servers = (
            [{"name": self.name, "url": settings.accessible_at}] if settings.accessible_at else []
        )
        public = [method for method in methods.values() if not method.requires_auth]
        # Anonymous callers see the public methods only, unless publish_private_methods.
        self.document = build_document(*about, methods.values(), _own_doc(type(service)), servers)
        self.public_document = (
            self.document
            if settings.publish_private_methods or len(public) == len(methods)
            else build_document(*about, public, _own_doc(type(service)), servers)
        )
        methods["rpc.discover"] = Method("rpc.discover", self._discover)
        self.methods = methods
        # Pools of their own, so that neither hostile bodies nor a stuck token store or
        # readiness check can take the threads methods run in. One decoder thread: large bodies
        # wait their turn, and the event loop competes for the interpreter with one thread only.
        self.decode_executor = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-decode")
        self.auth_executor = ThreadPoolExecutor(
            AUTH_THREADS, thread_name_prefix=f"{self.name}-auth"
        )
        self.metrics = (
            Metrics(
                make_registry(),
                self.name,
                methods,
                declared_codes=declared_error_codes(self.document),
                max_in_flight=settings.max_concurrency,
            )
            if settings.metrics_enabled
            else None
        )
        # Plain methods run here; see pool.py for why not a ThreadPoolExecutor.
        gauge = self.metrics.in_flight if self.metrics is not None else None
        self.pool = ThreadPool(
            settings.thread_pool_size,
            f"{self.name}-call",
            _deadline_passed,
            # The in-flight gauge counts a pool call until its thread is done (past its
            # deadline too): one decrement per burst of results.
            on_settled=gauge.dec if gauge is not None else None,
        )
        # The service's own instruments go where /metrics finds them (see metrics.py).
        service._metrics_registry = instruments_registry(self.metrics)
        # None unless the OTEL_* variables turn tracing on (tracing/config.py); then a span per
        # call, in front of the service's hooks so that it covers them too.
        self.tracing = tracing.start(self.name)
        # So do its calls to peers: get_service's clients report to these (client_metrics.py).
        service._client_metrics = (
            ClientMetrics(service._metrics_registry) if self.metrics is not None else None
        )
        self.call_log = (
            CallLog(
                settings.redact_params,
                {name: tuple(m.signature.parameters) for name, m in methods.items()},
                log_format=settings.log_format,
                trace_ids=self.tracing.call_ids if self.tracing is not None else None,
            )
            if settings.log_calls
            else None
        )
        own_hooks = [self.tracing.hook] if self.tracing is not None else []
        try:
            around = hooks.compose([*own_hooks, *service.call_hooks()])
            self.routes = RouteTable(type(service).routes, settings.route_max_body_bytes)
        except (TypeError, ValueError) as exc:
            raise StartupError(str(exc)) from None
        self.dispatcher = Dispatcher(
            methods,
            self.invoke,
            max_batch=settings.max_batch,
            debug=settings.debug,
            on_batch=self.metrics.observe_batch if self.metrics else None,
            offload=self.offload,
            admission=self,
            deadline=self.deadline,
            max_containers=settings.max_containers,
            max_reply=settings.max_response_bytes,
            around=around,
            pool=self,
        )
        # Plain checks get threads of their own; at most one each (see health.Readiness), made
        # only when used. Checks may be added while the service runs, so room for a few more.
        plain_checks = sum(
            not inspect.iscoroutinefunction(c) for c in service.readiness_checks().values()
        )
        self.readiness_executor = ThreadPoolExecutor(
            max(READINESS_THREADS, plain_checks), thread_name_prefix=f"{self.name}-ready"
        )
        # Asked on each probe: a check the service adds while it runs counts from then on.
        info = self.document["info"]
        self.health_fields = health.identity(
            self.name, info["version"], project_version(), _first_line(info.get("description"))
        )
        self._readiness = health.Readiness(
            service.readiness_checks,
            settings.readiness_timeout,
            self.readiness_executor,
            self._run,
            self.health_fields,
        )
        self.token_check = service.api_token_is_valid
        # The built-in check is a constant-time compare: cheap enough for the event loop.
        # A user's override may do I/O, so a plain one runs in the thread pool.
        self.token_check_inline = _builtin(service.api_token_is_valid)
        # The built-in authenticate takes the token path below (authorized); an override is
        # called as it is declared (async on the loop, plain in the pool).
        self.custom_authenticate = not _builtin(service.authenticate)
        self.started_at = time.time()
        self.draining = False
        self.in_flight = 0  # /api requests admitted and not yet answered
        self._idle: asyncio.Event | None = None
        self._tasks: set[asyncio.Future[None]] = set()
        self._threads_lock = threading.Lock()
        self.threads_busy = 0  # pool threads running right now (methods, checks, decoding)

    async def _discover(self) -> dict[str, Any]:
        """Returns the OpenRPC document of this service."""
        call = current_call()
        return await self.discover(call.authenticate, call.headers)

    async def discover(
        self, authenticate: Callable[[], Awaitable[Any]], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """The OpenRPC document this caller may see: private methods only for an authenticated
        one (``authenticate`` is asked only when it matters). Without ``accessible_at``, its
        ``servers`` entry is the address the request was sent to (``Host``)."""
        document = self.public_document
        if document is not self.document and await authenticate() is not None:
            document = self.document
        if "servers" in document:
            return document
        host = headers.get("host", "")
        if not _HOST.fullmatch(host):
            return document
        scheme = "https" if headers.get("x-forwarded-proto") == "https" else "http"
        return {**document, "servers": [{"name": self.name, "url": f"{scheme}://{host}/api"}]}

    # -- calls ----------------------------------------------------------------------------------

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
                # Its own small pool, as for api_token_is_valid: a stuck identity store holds
                # those threads, never the methods' ones.
                loop = asyncio.get_running_loop()
                call = functools.partial(self._run, functools.partial(check, headers))
                principal = await loop.run_in_executor(self.auth_executor, call)
        except Exception:
            log.exception("authenticate raised; access denied")
            return None
        return principal or None  # False, "" or 0 prove no identity either

    async def authorized(self, token: str | None) -> bool:
        """Whether ``token`` passes the service's check; any failure means no (fail closed).

        A plain override runs in a small pool of its own (``AUTH_THREADS``): a token store that
        hangs holds those threads, never the methods' ones. The dispatcher bounds the wait by
        the call's deadline (-32002 when it passes).
        """
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
                call = functools.partial(self._run, functools.partial(check, token))
                verdict = await loop.run_in_executor(self.auth_executor, call)
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
        """Run ``work`` as a task the runtime keeps a reference to until it ends; ``work`` must
        call ``ended()`` as its last step (in a ``finally``)."""
        # create_task, not ensure_future: the same task without ensure_future's type checks,
        # which cost a tenth of a single call's dispatch (one task per /api request). And no
        # done callback to drop the reference: that is one more call_soon, Handle and context
        # entry per request; the task drops it itself (``ended``).
        self._tasks.add(asyncio.get_running_loop().create_task(work))

    def ended(self) -> None:
        """Called by a task ``spawn`` started, as its last step: forget it."""
        self._tasks.discard(asyncio.current_task())

    def count_rejection(self, status: int) -> None:
        if self.metrics is not None:
            self.metrics.rejected.labels(str(status)).inc()

    def admit(self) -> bool:
        """Take a slot for one /api request; False when over the concurrency limit.

        A batch's other members take theirs from the dispatcher (``acquire``): every call
        counts against ``max_concurrency``.
        """
        if self.in_flight >= self.settings.max_concurrency:
            return False
        self.in_flight += 1
        return True

    def acquire(self, count: int) -> int:
        """Take up to ``count`` more slots (batch members); return how many were taken."""
        taken = max(0, min(count, self.settings.max_concurrency - self.in_flight))
        self.in_flight += taken
        return taken

    def release(self, count: int = 1) -> None:
        self.in_flight -= count
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
        return await self._readiness.document(lambda: self.draining)

    def liveness(self) -> dict[str, Any]:
        return health.liveness(self.health_fields, self.started_at)

    def _run(self, work: Callable[[], Any]) -> Any:
        """Run ``work()`` in a pool thread, counted in ``threads_busy``."""
        with self._threads_lock:
            self.threads_busy += 1
        try:
            return work()
        finally:
            with self._threads_lock:
                self.threads_busy -= 1

    def close(self) -> bool:
        """Release the thread pools; False if one of their threads is still running (a method
        past its deadline or the drain's, a token or readiness check that hangs): the process
        must then exit without waiting for it."""
        self.pool.close()
        for pool in (
            self.decode_executor,
            self.auth_executor,
            self.readiness_executor,
        ):
            pool.shutdown(wait=False, cancel_futures=True)
        with self._threads_lock:
            return self.threads_busy == 0 and self.pool.busy() == 0


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
    runtime = getattr(ctx, "runtime", None)
    if not isinstance(runtime, Runtime) or name not in runtime.methods:
        return None
    try:
        return runtime.deadline(runtime.methods[name])
    except DeadlineExceeded:
        return 0.0


def _builtin(method: Callable[..., Any]) -> bool:
    """Whether ``method`` is MicroService's own, not a service's override (see service.py)."""
    return getattr(method, "__service_template_builtin__", False) is True


def _deadline_passed(name: str, limit: float) -> DeadlineExceeded:
    """What a pool call past its deadline answers (-32002); the thread, if it started, runs on."""
    log.warning("%s passed its %gs deadline; its thread runs on", name, limit)
    return DeadlineExceeded(data={"timeout": limit})


def _encoded(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return codec.preencode(func(*args, **kwargs))


def declared_error_codes(document: dict[str, Any]) -> set[int]:
    """The application error codes the OpenRPC document says the methods raise (each method's
    ``errors``, and the shared ones under ``components.errors`` that they may refer to): the
    metrics count these by value. One declaration, two readers."""
    errors: list[Any] = []
    for method in document.get("methods", ()):
        if isinstance(method, dict):
            errors.extend(method.get("errors", ()))
    components = document.get("components")
    if isinstance(components, dict) and isinstance(components.get("errors"), dict):
        errors.extend(components["errors"].values())
    codes = set()
    for error in errors:
        code = error.get("code") if isinstance(error, dict) else None
        if isinstance(code, int) and not isinstance(code, bool):
            codes.add(code)
    return codes


def _first_line(text: str | None) -> str | None:
    return text.strip().splitlines()[0] if text and text.strip() else None


def _own_doc(cls: type) -> str | None:
    """The class's own docstring, not one inherited from MicroService."""
    doc = vars(cls).get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) else None
