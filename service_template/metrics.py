"""Prometheus instruments for calls, on a registry passed in (never the global default).

Label values are bounded: ``method`` is an exposed name or one of the protocol's placeholders
(``__unknown__``, ``__invalid__``); ``outcome`` is ``ok``, a code from the range the JSON-RPC
specification reserves (-32768..-32000: the standard errors and this runtime's own), a code the
service declares, or ``application_error`` for any other code. So neither a caller nor a method
that puts, say, a row id in its error codes can create series at will. Every method's success
series exists from the start.

Durations are observed in buckets from 1 µs to 60 s (``DURATION_BUCKETS``): measured from
dispatch to result, an async method that does not wait takes 2 to 10 µs here and a cheap call
through the thread pool 50 to 250 µs, so buckets that start at half a millisecond put nearly
every call in the first one, and any quantile reads 10 to 100 times too high; at the other end,
the default call deadline is 30 s. Three buckets a decade (1, 2.5, 5) keep a quantile within a
factor of about 2.5 of the truth anywhere in that range, at 26 series per method.

The page is the Prometheus text format, or OpenMetrics when the scraper's ``Accept`` asks for it
(Prometheus does), negotiated by prometheus_client's own encoder choice.

A service's own instruments take ``registry=service.metrics_registry`` (``instruments_registry``
below): the page's registry in one process; with ``--workers N`` a registry nobody renders, since
there every instrument writes to the shared multiprocess files that the page's collector reads
(registering it on the page's registry too would show each series twice).
"""

from __future__ import annotations

import bisect
import itertools
import os
from collections.abc import Iterable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    multiprocess,
    values,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.utils import floatToGoString

__all__ = [
    "APPLICATION_ERROR",
    "DURATION_BUCKETS",
    "CollectorRegistry",
    "Metrics",
    "instruments_registry",
    "make_registry",
    "mark_process_dead",
]

DURATION_BUCKETS = (
    *(0.000001, 0.0000025, 0.000005),
    *(0.00001, 0.000025, 0.00005),
    *(0.0001, 0.00025, 0.0005),
    *(0.001, 0.0025, 0.005),
    *(0.01, 0.025, 0.05),
    *(0.1, 0.25, 0.5),
    *(1.0, 2.5, 5.0),
    *(10.0, 30.0, 60.0),
)
"""Upper bounds, in seconds, of the duration histograms: 1 µs to 60 s (see the module doc)."""
APPLICATION_ERROR = "application_error"
"""The ``outcome`` of an error code neither reserved by the specification nor declared."""
RESERVED_CODES = range(-32768, -32000 + 1)  # JSON-RPC 2.0, section 5.1: kept by value
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500)


def make_registry() -> CollectorRegistry:
    """A fresh registry with process metrics.

    In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set, ``serve --workers N``) the page
    aggregates every worker's files instead; process metrics are then per worker and omitted.
    """
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # prometheus_client picks how instruments store values when it is first imported; a
        # service module that imported it before the supervisor set the directory would
        # otherwise keep per-process values that no worker's page shows.
        values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return registry


def instruments_registry(metrics: Metrics | None) -> CollectorRegistry:
    """Where a service's own instruments register so that ``/metrics`` shows them once.

    With metrics disabled it is a registry nobody renders: the service's code stays the same.
    """
    if metrics is None or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return CollectorRegistry()
    return metrics.registry


class Metrics:
    """The service's call metrics."""

    def __init__(
        self,
        registry: CollectorRegistry,
        service: str,
        method_names: Iterable[str],
        *,
        declared_codes: Iterable[int] = (),
        max_in_flight: int | None = None,
    ) -> None:
        """``declared_codes``: application error codes the service declares, counted by value
        (any other code outside the reserved range is ``application_error``).
        ``max_in_flight``: the concurrency limit, exported so that saturation is a ratio."""
        self.registry = registry
        self._outcomes = {code: str(code) for code in declared_codes}
        # In multiprocess mode instruments write to files and the registry only collects them.
        target = None if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else registry
        multiprocess_mode = target is None
        self._observe = (
            _InstrumentedCalls(method_names, target)
            if multiprocess_mode
            else _CallStats(method_names, registry)
        ).observe
        self.in_flight: Gauge | _InFlight = (
            Gauge(
                "rpc_calls_in_flight",
                IN_FLIGHT_DOC,
                registry=target,
                multiprocess_mode="livesum",
            )
            if multiprocess_mode
            else _InFlight(registry)
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
        if max_in_flight is not None:
            # Per process; summed over live workers like rpc_calls_in_flight, so the ratio of
            # the two is the saturation of the whole pod.
            Gauge(
                "rpc_calls_max_in_flight",
                "Calls allowed in flight before new ones are refused with -32003.",
                registry=target,
                multiprocess_mode="livesum",
            ).set(max_in_flight)
        # A service's own routes (not /api, not the runtime's GET routes): not a hot path, so
        # plain instruments. ``route`` is the declared pattern, so values are bounded; the
        # rpc_ prefix keeps them apart from a service's own http_* metrics.
        self.route_requests = Counter(
            "rpc_http_route_requests",
            "Requests to the service's own HTTP routes, by route, HTTP method and status.",
            ["route", "method", "status"],
            registry=target,
        )
        self.route_duration = Histogram(
            "rpc_http_route_duration_seconds",
            "Time from a route's request headers to its response, by route.",
            ["route"],
            buckets=DURATION_BUCKETS,
            registry=target,
        )

    def observe_call(self, method: str, code: int | None, seconds: float) -> None:
        """Count one finished call (``code`` None for success)."""
        self._observe(method, "ok" if code is None else self.outcome(code), seconds)

    def outcome(self, code: int) -> str:
        """The ``outcome`` label of an error code: bounded whatever codes a method raises."""
        label = self._outcomes.get(code)
        if label is None:
            label = str(code) if code in RESERVED_CODES else APPLICATION_ERROR
        return label

    def observe_route(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one request answered by a service's own route."""
        self.route_requests.labels(route, method, str(status)).inc()
        self.route_duration.labels(route).observe(seconds)

    def observe_batch(self, size: int) -> None:
        self.batch_size.observe(size)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition page and its content type: OpenMetrics when ``accept`` (the request's
        ``Accept`` header) prefers it, else the Prometheus text format."""
        encode, content_type = choose_encoder(_by_preference(accept or ""))
        return encode(self.registry), content_type


CALLS_DOC = "JSON-RPC calls by method and outcome (ok or error code)."
DURATION_DOC = "Time from dispatch to result, by method."
IN_FLIGHT_DOC = "Calls currently executing."


class _CallStats:
    """Call counts and durations kept in plain Python and exposed by a collector.

    The per-call update is a few dict and list operations, without the lock that every
    prometheus_client instrument takes (which costs more than a cheap call). That is safe here
    because calls are observed only on the event loop's thread, and /metrics is rendered on
    that thread too. Used in single-process mode; workers need the shared files instead.
    """

    def __init__(self, method_names: Iterable[str], registry: CollectorRegistry) -> None:
        self.bounds = DURATION_BUCKETS
        self.counts: dict[tuple[str, str], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.sums: dict[str, float] = {}
        for name in method_names:  # every method's success series exists from the start
            self.counts[(name, "ok")] = 0
            self._series(name)
        registry.register(self)

    def _series(self, method: str) -> list[int]:
        buckets = self.buckets[method] = [0] * (len(self.bounds) + 1)
        self.sums[method] = 0.0
        return buckets

    def observe(self, method: str, outcome: str, seconds: float) -> None:
        key = (method, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1
        buckets = self.buckets.get(method) or self._series(method)
        buckets[bisect.bisect_left(self.bounds, seconds)] += 1  # le is inclusive
        self.sums[method] += seconds

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily("rpc_calls", CALLS_DOC, labels=["method", "outcome"])
        for (method, outcome), value in self.counts.items():
            calls.add_metric([method, outcome], value)
        yield calls
        duration = HistogramMetricFamily(
            "rpc_call_duration_seconds", DURATION_DOC, labels=["method"]
        )
        edges = [floatToGoString(bound) for bound in self.bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        for method, buckets in self.buckets.items():
            cumulative = list(zip(edges, itertools.accumulate(buckets), strict=True))
            duration.add_metric([method], cumulative, sum_value=self.sums[method])
        yield duration


class _InFlight:
    """The in-flight gauge as a plain counter exposed by a collector: ``inc`` and ``dec`` are
    an addition, without a prometheus_client Gauge's lock (paid on every call otherwise).

    Safe for the same reason as ``_CallStats``: only the event loop's thread changes it (calls
    start there, and the pool reports finished ones there) and /metrics reads it there. Used
    in single-process mode; workers need the shared files instead.
    """

    __slots__ = ("value",)

    def __init__(self, registry: CollectorRegistry) -> None:
        self.value = 0
        registry.register(self)

    def inc(self, amount: int = 1) -> None:
        self.value += amount

    def dec(self, amount: int = 1) -> None:
        self.value -= amount

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("rpc_calls_in_flight", IN_FLIGHT_DOC, value=self.value)


class _InstrumentedCalls:
    """The same series on prometheus_client instruments (multiprocess mode: shared files)."""

    def __init__(self, method_names: Iterable[str], registry: CollectorRegistry | None) -> None:
        self.calls = Counter("rpc_calls", CALLS_DOC, ["method", "outcome"], registry=registry)
        self.duration = Histogram(
            "rpc_call_duration_seconds",
            DURATION_DOC,
            ["method"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        for name in method_names:
            self.calls.labels(name, "ok")
            self.duration.labels(name)

    def observe(self, method: str, outcome: str, seconds: float) -> None:
        self.calls.labels(method, outcome).inc()
        self.duration.labels(method).observe(seconds)


def _by_preference(accept: str) -> str:
    """The media range of ``accept`` to answer: the weightiest (q-value, then order) of those
    this page has a format for; refused ones (q=0) never. prometheus_client's encoder choice,
    given the whole header, would take OpenMetrics wherever it appears, whatever its weight."""
    ranked = []
    for position, media_range in enumerate(accept.split(",")):
        media_type, *parameters = media_range.split(";")
        if media_type.strip().lower() not in _FORMATS:
            continue
        weight = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0  # a malformed weight: the range is not taken as acceptable
        if weight > 0:
            ranked.append((-weight, position, media_range))
    return min(ranked)[2] if ranked else ""


_FORMATS = {"application/openmetrics-text", "text/plain", "text/*", "*/*"}


def mark_process_dead(pid: int) -> None:
    """Tell the multiprocess collector a worker is gone, so its live gauges stop counting."""
    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
