"""What a client reports about its calls, for a service's ``/metrics``: the seam, not the store.

A client made with ``metrics=`` (``MicroService.get_service`` passes the service's own;
``service.client_metrics`` is there for clients a service makes itself) reports, per peer:
every attempt sent, with its outcome and duration; every retry made or refused; and every
change of its breaker's state. Without ``metrics=`` (a plain script) nothing is wrapped or
counted: the client runs exactly the code it runs without this module.

The store is ``service_template.client_metrics`` (prometheus_client, on the service's registry);
this module only names the outcomes and wraps a client's send, so the client package never
imports prometheus_client. Outcomes of one attempt (``OUTCOMES``): ``ok``; ``error``, an error
answer from the peer; ``overloaded``, the peer's -32003 or 503; ``connect_error``; ``timeout``;
``breaker_open``, not sent because the peer's breaker is open; ``bad_answer``, an answer that is
not JSON-RPC (an HTTP error status, a malformed body); ``cancelled``, the caller gave up.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from service_template.protocol import errors

from .breaker import PeerFailing
from .errors import ConnectError, RequestTimeout
from .urls import endpoint

if TYPE_CHECKING:
    from .exchange import Exchange

T = TypeVar("T")

OUTCOMES = (
    "ok",
    "error",
    "overloaded",
    "connect_error",
    "timeout",
    "breaker_open",
    "bad_answer",
    "cancelled",
)
REFUSALS = ("budget", "deadline", "attempts")
"""Why a retry was not made: the retry budget is spent, the caller's deadline would pass, or
every attempt the policy allows was used."""
BREAKER_STATES = ("closed", "open", "half_open")


class PeerMeter(Protocol):
    """Where one client's events go (one per peer label)."""

    def observe(self, method: str, outcome: str, seconds: float | None) -> None:
        """One attempt finished; ``seconds`` None when it was never sent."""

    def retried(self, method: str) -> None:
        """A retry of ``method`` is about to be made."""

    def refused(self, reason: str) -> None:
        """A retry was not made, for one of ``REFUSALS``."""

    def breaker(self, state: str) -> None:
        """The peer's breaker is now in one of ``BREAKER_STATES``."""


class ClientMetrics(Protocol):
    """What ``metrics=`` takes: hands out one meter per peer label."""

    def for_peer(self, peer: str) -> PeerMeter: ...


def peer_label(url: str, peer: str | None) -> str:
    """The ``peer`` label: the peer's configured name, else the URL's ``host:port`` (never a
    path, a query or credentials, so never a per-call value or a secret)."""
    if peer:
        return peer
    where = endpoint(url)
    return f"{where.host}:{where.port}"


_KINDS: tuple[tuple[type[BaseException], str], ...] = (
    (PeerFailing, "breaker_open"),  # before ConnectError: it is one, but nothing was sent
    (ConnectError, "connect_error"),
    (RequestTimeout, "timeout"),
    (errors.ServerOverloaded, "overloaded"),  # before RPCError, which it is too
    (errors.RPCError, "error"),
    (Exception, "bad_answer"),
)


def outcome(exc: BaseException) -> str:
    """The outcome of an attempt that raised ``exc`` (one of ``OUTCOMES``)."""
    for kind, label in _KINDS:
        if isinstance(exc, kind):
            return label
    return "cancelled"  # CancelledError, KeyboardInterrupt: the caller stopped waiting


def metered_async(
    send: Callable[[Exchange[T]], Awaitable[T]], meter: PeerMeter
) -> Callable[[Exchange[T]], Awaitable[T]]:
    """``send``, reporting each attempt to ``meter``."""
    clock = time.perf_counter

    async def metered(exchange: Exchange[T]) -> T:
        started = clock()
        try:
            result = await send(exchange)
        except BaseException as exc:
            _failed(meter, exchange, exc, clock() - started)
            raise
        meter.observe(exchange.name, "ok", clock() - started)
        return result

    return metered


def metered_sync(send: Callable[[Exchange[T]], T], meter: PeerMeter) -> Callable[[Exchange[T]], T]:
    """``send``, reporting each attempt to ``meter`` (the blocking client's twin)."""
    clock = time.perf_counter

    def metered(exchange: Exchange[T]) -> T:
        started = clock()
        try:
            result = send(exchange)
        except BaseException as exc:
            _failed(meter, exchange, exc, clock() - started)
            raise
        meter.observe(exchange.name, "ok", clock() - started)
        return result

    return metered


def _failed(meter: PeerMeter, exchange: Exchange[Any], exc: BaseException, seconds: float) -> None:
    kind = outcome(exc)
    # A call failed fast took no time worth a latency bucket: counting it there would drag
    # every quantile toward zero exactly while the peer is down.
    meter.observe(exchange.name, kind, None if kind == "breaker_open" else seconds)
