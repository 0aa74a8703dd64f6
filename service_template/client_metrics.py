"""Prometheus series of the calls a service makes to its peers (``client/instruments.py``).

The runtime makes one ``ClientMetrics`` on the service's registry when metrics are on;
``MicroService.get_service`` gives it to each peer's client, and ``service.client_metrics`` is
there for a client the service makes itself (``AsyncRemoteClient(url, metrics=...)``). Series,
all labelled with ``peer`` (the peer's configured name, else the URL's ``host:port``):

- ``rpc_client_calls_total{peer,method,outcome}``: attempts sent (and calls failed fast), by
  outcome: ``ok``, ``error``, ``overloaded``, ``connect_error``, ``timeout``, ``breaker_open``,
  ``bad_answer``, ``cancelled`` (``client/instruments.py`` says which is which). A retried call
  counts once per attempt.
- ``rpc_client_call_duration_seconds{peer,method}``: time of each attempt sent, in the runtime's
  buckets (``metrics.DURATION_BUCKETS``); calls failed fast are not in it.
- ``rpc_client_retries_total{peer,method}``: retries made of idempotent calls.
- ``rpc_client_retries_refused_total{peer,reason}``: retries not made: ``budget`` (the retry
  budget is spent), ``deadline`` (the wait would pass the caller's deadline), ``attempts``
  (every attempt the policy allows was used).
- ``rpc_client_breaker_state{peer,state}``: 1 for the breaker's current state (``closed``,
  ``open``, ``half_open``), 0 for the others; with ``--workers N``, the number of workers whose
  breaker is in that state. A breaker whose cool-down ended shows ``open`` until a call probes.
  Clients that share a peer label share its series: the last change of any of them shows
  (``get_service`` makes one client per peer, so there it is that peer's breaker).

``method`` is the JSON-RPC method called, or ``__batch__``, ``__raw__`` (``send_raw``),
``__health__`` (a probe of ``/readyz`` or ``/livez``). Label values are bounded whoever picks
the names: past ``max_peers`` peers, or ``max_methods`` methods of one peer, the rest are
counted as ``__other__``.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .client.instruments import BREAKER_STATES
from .metrics import DURATION_BUCKETS

__all__ = ["OTHER", "ClientMetrics", "PeerMetrics"]

OTHER = "__other__"
"""The label value that counts every peer or method past the cap."""


class ClientMetrics:
    """The outbound series on one registry; ``for_peer`` hands out a peer's share of them."""

    def __init__(
        self, registry: CollectorRegistry, *, max_peers: int = 32, max_methods: int = 64
    ) -> None:
        # In multiprocess mode instruments write to the shared files the page reads, and must
        # not be registered on the page's registry too (see metrics.py).
        target = None if os.environ.get("PROMETHEUS_MULTIPROC_DIR") else registry
        self.max_peers = max_peers
        self.max_methods = max_methods
        self.calls = Counter(
            "rpc_client_calls",
            "Calls made to peers (each attempt, and calls failed fast), by peer, method, outcome.",
            ["peer", "method", "outcome"],
            registry=target,
        )
        self.duration = Histogram(
            "rpc_client_call_duration_seconds",
            "Time of each attempt sent to a peer, from send to answer, by peer and method.",
            ["peer", "method"],
            buckets=DURATION_BUCKETS,
            registry=target,
        )
        self.retries = Counter(
            "rpc_client_retries",
            "Retries made of idempotent calls to peers, by peer and method.",
            ["peer", "method"],
            registry=target,
        )
        self.refused = Counter(
            "rpc_client_retries_refused",
            "Retries not made (budget spent, deadline too near, attempts used), by peer.",
            ["peer", "reason"],
            registry=target,
        )
        self.breaker = Gauge(
            "rpc_client_breaker_state",
            "1 for the current state of a peer's circuit breaker (closed, open, half_open).",
            ["peer", "state"],
            registry=target,
            multiprocess_mode="livesum",
        )
        self._peers: dict[str, PeerMetrics] = {}

    def for_peer(self, peer: str) -> PeerMetrics:
        """The series of ``peer`` (``__other__`` once ``max_peers`` others are known)."""
        found = self._peers.get(peer)
        if found is None:
            if len(self._peers) >= self.max_peers:
                peer = OTHER
                found = self._peers.get(peer)
            if found is None:
                found = self._peers[peer] = PeerMetrics(self, peer)
        return found


class PeerMetrics:
    """One peer's series, with label children cached: an observation is two dict lookups and
    the instruments' own increments (prometheus_client instruments are thread-safe, so blocking
    clients in several threads may share them)."""

    def __init__(self, metrics: ClientMetrics, peer: str) -> None:
        self._metrics = metrics
        self.peer = peer
        self._calls: dict[tuple[str, str], Counter] = {}
        self._durations: dict[str, Histogram] = {}
        self._methods: set[str] = set()
        self._states = {state: metrics.breaker.labels(peer, state) for state in BREAKER_STATES}

    def _method(self, method: str) -> str:
        if method not in self._methods:
            if len(self._methods) >= self._metrics.max_methods:
                return OTHER
            self._methods.add(method)
        return method

    def observe(self, method: str, outcome: str, seconds: float | None) -> None:
        counter = self._calls.get((method, outcome))
        if counter is None:
            label = self._method(method)
            counter = self._metrics.calls.labels(self.peer, label, outcome)
            if label != OTHER:  # the caches stay as bounded as the series
                self._calls[(method, outcome)] = counter
        counter.inc()
        if seconds is not None:
            histogram = self._durations.get(method)
            if histogram is None:
                label = self._method(method)
                histogram = self._metrics.duration.labels(self.peer, label)
                if label != OTHER:
                    self._durations[method] = histogram
            histogram.observe(seconds)

    def retried(self, method: str) -> None:
        self._metrics.retries.labels(self.peer, self._method(method)).inc()

    def refused(self, reason: str) -> None:
        self._metrics.refused.labels(self.peer, reason).inc()

    def breaker(self, state: str) -> None:
        for name, gauge in self._states.items():
            gauge.set(1 if name == state else 0)
