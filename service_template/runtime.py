"""What a running service is made of, apart from HTTP, and what the HTTP layer asks of it:
admission against ``max_concurrency``, the drain, the OpenRPC document per caller, health.

The HTTP layer owns one ``Runtime`` and asks it for everything; nothing here knows Tornado.
Its parts are built in ``assembly.py``; calls run in ``invocation.py``; callers are checked in
``access.py``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from . import health, tracing
from .access import AUTH_THREADS, Access
from .assembly import (
    connect_instruments,
    declared_parts,
    make_call_log,
    make_dispatcher,
    make_metrics,
    make_readiness,
)
from .config import Settings
from .invocation import Invoker, make_pool
from .logs import log_route_request
from .openrpc import addressed, service_documents
from .protocol import Method
from .protocol.calls import current_call

if TYPE_CHECKING:  # the service module imports the runner, which imports this: types only
    from .service import MicroService


class Owner(Protocol):
    """What waits for an /api request's answer (the HTTP layer's connection)."""

    def abandon(self) -> None:
        """The answer will never come (its task was cancelled): stop waiting for it."""


class Runtime:
    """A service instance wired for serving."""

    def __init__(self, service: MicroService, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.name = settings.name or type(service).name
        methods = service.build_registry()
        self.document, self.public_document = service_documents(
            type(service),
            self.name,
            methods,
            settings.accessible_at,
            settings.publish_private_methods,
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
        self.metrics = make_metrics(settings, self.name, methods, self.document)
        self.pool = make_pool(settings, self.name, self.metrics)
        # None unless the OTEL_* variables turn tracing on (tracing/config.py); then a span per
        # call, in front of the service's hooks so that it covers them too.
        self.tracing = tracing.start(self.name)
        connect_instruments(service, self.metrics)
        self.call_log = make_call_log(settings, methods, self.tracing)
        around, self.routes = declared_parts(service, settings, self.tracing)
        self.invoker = Invoker(
            settings,
            methods,
            self.metrics,
            self.pool,
            decode_executor=self.decode_executor,
            run=self._run,
        )
        self.dispatcher = make_dispatcher(
            settings, methods, self.invoker, metrics=self.metrics, admission=self, around=around
        )
        self.readiness_executor, self.health_fields, self._readiness = make_readiness(
            service, settings, self.name, self.document, self._run
        )
        self.access = Access(service, self.auth_executor, self._run)
        self.started_at = time.time()
        self.draining = False
        self.in_flight = 0  # /api requests admitted and not yet answered
        self._tasks: dict[asyncio.Future[None], Owner] = {}  # /api requests' tasks (spawn)
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
        return addressed(document, self.name, headers)

    def observe_route(
        self, route: str, method: str, status: int, seconds: float, request_id: str
    ) -> None:
        """Metrics and the access line of one request answered by a service's own route."""
        if self.metrics is not None:
            self.metrics.observe_route(route, method, status, seconds)
        if self.call_log is not None:
            log_route_request(route, method, status, seconds, request_id)

    # -- admission and drain --------------------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None], owner: Owner) -> None:
        """Run ``work``, an /api request admitted with ``admit()``, as a task the runtime keeps
        a reference to until it ends. ``work`` must ``release()`` its slot and call ``ended()``
        as its last step (in a ``finally``); if it is cancelled before it first runs, that
        ``finally`` never runs: then the drain (``wait_idle``) releases the slot and abandons
        ``owner`` (the connection waiting for the answer)."""
        # create_task, not ensure_future: the same task without ensure_future's type checks,
        # which cost a tenth of a single call's dispatch (one task per /api request). And no
        # done callback to drop the reference: that is one more call_soon, Handle and context
        # entry per request; the task drops it itself (``ended``).
        self._tasks[asyncio.get_running_loop().create_task(work)] = owner

    def ended(self) -> None:
        """Called by a task ``spawn`` started, as its last step: forget it."""
        self._tasks.pop(asyncio.current_task(), None)  # type: ignore[arg-type]

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

    async def wait_idle(self, limit: float) -> bool:
        """Wait until every admitted /api request has ended; False if ``limit`` seconds pass
        first.

        It waits on the requests' tasks themselves: callbacks only while draining, none per
        request. A task cancelled before it first ran is found here (``_reclaim``).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        while self._reclaim():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            await asyncio.wait(list(self._tasks), timeout=remaining)
        return True

    def _reclaim(self) -> bool:
        """Forget the tasks that ended without running (cancelled first: a task that ran has
        forgotten itself, ``ended``): release their slots and abandon their owners, whose
        requests can never be answered. Returns whether any task remains."""
        for task in [task for task in self._tasks if task.done()]:
            owner = self._tasks.pop(task)
            self.release()
            owner.abandon()
        return bool(self._tasks)

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
