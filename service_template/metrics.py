"""Prometheus instruments for calls, on a registry passed in (never the global default).

Label values are bounded: ``method`` is an exposed name or one of the protocol's placeholders
(``__unknown__``, ``__invalid__``), ``outcome`` is ``ok`` or a JSON-RPC error code, so a caller
cannot create series at will. Children for successful calls are made once, at start.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


def make_registry() -> CollectorRegistry:
    """A fresh registry with process metrics.

    In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set, ``serve --workers N``) the page
    aggregates every worker's files instead; process metrics are then per worker and omitted.
    """
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


class Metrics:
    """The service's call metrics."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(
        self, registry: CollectorRegistry, service: str, method_names: Iterable[str]
    ) -> None:
        self.registry = registry
        # In multiprocess mode instruments write to files and the registry only collects them.
        target = None if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else registry
        self.calls = Counter(
            "rpc_calls",
            "JSON-RPC calls by method and outcome (ok or error code).",
            ["method", "outcome"],
            registry=target,
        )
        self.duration = Histogram(
            "rpc_call_duration_seconds",
            "Time from dispatch to result, by method.",
            ["method"],
            buckets=DURATION_BUCKETS,
            registry=target,
        )
        self.in_flight = Gauge(
            "rpc_calls_in_flight",
            "Calls currently executing.",
            registry=target,
            multiprocess_mode="livesum",
        )
        self.batch_size = Histogram(
            "rpc_batch_size",
            "Number of calls per batch request.",
            buckets=BATCH_BUCKETS,
            registry=target,
        )
        self.rejected = Counter(
            "rpc_http_rejected",
            "HTTP requests refused before dispatch, by status code.",
            ["status"],
            registry=target,
        )
        info = Gauge(
            "rpc_service_info",
            "The service behind this endpoint.",
            ["service"],
            registry=target,
            multiprocess_mode="max",
        )
        info.labels(service).set(1)
        self._ok = {
            name: (self.calls.labels(name, "ok"), self.duration.labels(name))
            for name in method_names
        }

    def observe_call(self, method: str, code: int | None, seconds: float) -> None:
        """Count one finished call."""
        if code is None and method in self._ok:
            counter, histogram = self._ok[method]
        else:
            counter = self.calls.labels(method, "ok" if code is None else str(code))
            histogram = self.duration.labels(method)
        counter.inc()
        histogram.observe(seconds)

    def observe_batch(self, size: int) -> None:
        self.batch_size.observe(size)

    def render(self) -> bytes:
        """The exposition page."""
        return generate_latest(self.registry)


def mark_process_dead(pid: int) -> None:
    """Tell the multiprocess collector a worker is gone, so its live gauges stop counting."""
    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
