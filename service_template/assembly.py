"""Building a runtime's parts from its settings: metrics, call log, hooks and routes, the
dispatcher, readiness. Each part is made once, at start; ``runtime.Runtime`` holds them.

A part that is off in the settings is None (no metrics, no call log, no tracing), so the code
that serves requests pays nothing for it but one test against None.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from . import health, hooks
from .client_metrics import ClientMetrics
from .config import Settings
from .errors import StartupError
from .invocation import Invoker
from .logs import CallLog
from .metrics import Metrics, instruments_registry, make_registry
from .openrpc import declared_error_codes
from .protocol import Dispatcher, Method
from .protocol.calls import Around
from .protocol.dispatch import Admission
from .routing import RouteTable
from .version import project_version

if TYPE_CHECKING:  # the service module imports the runner, which imports this: types only
    from .service import MicroService
    from .tracing import Tracing

READINESS_THREADS = 4  # the least the readiness pool may grow to (threads start when used)

Run = Callable[[Callable[[], Any]], Any]
"""Runs work in a pool thread, counted as busy (``Runtime._run``)."""


def make_metrics(
    settings: Settings, name: str, methods: Mapping[str, Method], document: dict[str, Any]
) -> Metrics | None:
    """The service's instruments on a registry of its own; None with ``metrics_enabled`` off.
    The application error codes the document declares are counted by value."""
    if not settings.metrics_enabled:
        return None
    return Metrics(
        make_registry(),
        name,
        methods,
        declared_codes=declared_error_codes(document),
        max_in_flight=settings.max_concurrency,
    )


def connect_instruments(service: MicroService, metrics: Metrics | None) -> None:
    """Point the service's own instruments and its clients' series (``get_service``) at the
    registry /metrics serves (see metrics.py and client_metrics.py)."""
    service._metrics_registry = instruments_registry(metrics)
    service._client_metrics = (
        ClientMetrics(service._metrics_registry) if metrics is not None else None
    )


def make_call_log(
    settings: Settings, methods: Mapping[str, Method], tracing: Tracing | None
) -> CallLog | None:
    """One log line per call (params redacted as configured); None with ``log_calls`` off."""
    if not settings.log_calls:
        return None
    return CallLog(
        settings.redact_params,
        {name: tuple(m.signature.parameters) for name, m in methods.items()},
        log_format=settings.log_format,
        trace_ids=tracing.call_ids if tracing is not None else None,
    )


def declared_parts(
    service: MicroService, settings: Settings, tracing: Tracing | None
) -> tuple[Around | None, RouteTable]:
    """The service's call hooks composed (tracing's span first, so that it covers them) and its
    own routes, checked; a mistake in either is a ``StartupError`` naming it."""
    own_hooks = [tracing.hook] if tracing is not None else []
    try:
        around = hooks.compose([*own_hooks, *service.call_hooks()])
        routes = RouteTable(type(service).routes, settings.route_max_body_bytes)
    except (TypeError, ValueError) as exc:
        raise StartupError(str(exc)) from None
    return around, routes


def make_dispatcher(
    settings: Settings,
    methods: Mapping[str, Method],
    invoker: Invoker,
    *,
    metrics: Metrics | None,
    admission: Admission,
    around: Around | None,
) -> Dispatcher:
    """The JSON-RPC dispatcher over ``methods``: calls run by ``invoker``, every call counted
    against ``admission`` (max_concurrency), the protocol's limits from the settings."""
    return Dispatcher(
        methods,
        invoker.invoke,
        max_batch=settings.max_batch,
        debug=settings.debug,
        on_batch=metrics.observe_batch if metrics else None,
        offload=invoker.offload,
        admission=admission,
        deadline=invoker.deadline,
        max_containers=settings.max_containers,
        max_reply=settings.max_response_bytes,
        around=around,
        pool=invoker,
    )


def make_readiness(
    service: MicroService, settings: Settings, name: str, document: dict[str, Any], run: Run
) -> tuple[ThreadPoolExecutor, dict[str, str], health.Readiness]:
    """The readiness checks' pool, the health documents' fixed fields, and the readiness
    checks (asked on each probe: a check the service adds while it runs counts from then on)."""
    # Plain checks get threads of their own; at most one each (see health.Readiness), made
    # only when used. Checks may be added while the service runs, so room for a few more.
    plain_checks = sum(
        not inspect.iscoroutinefunction(c) for c in service.readiness_checks().values()
    )
    executor = ThreadPoolExecutor(
        max(READINESS_THREADS, plain_checks), thread_name_prefix=f"{name}-ready"
    )
    info = document["info"]
    fields = health.identity(name, info["version"], project_version(), info.get("description"))
    readiness = health.Readiness(
        service.readiness_checks, settings.readiness_timeout, executor, run, fields
    )
    return executor, fields, readiness
