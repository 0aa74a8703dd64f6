"""Retries of idempotent calls: when, how long to wait, and how many a client may make.

A call is retried only when declared idempotent by its caller (``client.idempotent.x(...)``):
running it twice must do no harm, since a call whose connection broke may have run. It is
retried on ``ConnectError`` (refused, reset, cut short) and ``ServerOverloaded`` (-32003 or 503),
never on a timeout (the call may still be running), an error answer, or for a notification.

Waits grow exponentially with full jitter (``uniform(0, min(max_backoff, backoff * 2**n))``), at
least what ``Retry-After`` asked. No retry starts when its wait would pass the current call's
deadline (``protocol/deadline.py``). A budget bounds them: each first attempt earns
``budget_ratio`` of a retry, up to ``budget_burst`` saved, and each retry spends one, so when a
peer is down a fleet of clients adds at most that fraction of load instead of multiplying it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from service_template.protocol import deadline

if TYPE_CHECKING:
    from .instruments import PeerMeter


@dataclass(frozen=True)
class RetryPolicy:
    """How a client retries idempotent calls. ``attempts`` counts the first one."""

    attempts: int = 3
    backoff: float = 0.05
    max_backoff: float = 2.0
    budget_ratio: float = 0.1
    budget_burst: float = 10.0

    def __post_init__(self) -> None:
        if not (isinstance(self.attempts, int) and 1 <= self.attempts <= 10):
            raise ValueError(f"attempts must be 1 to 10, got {self.attempts!r}")
        for name in ("backoff", "max_backoff", "budget_ratio", "budget_burst"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < float("inf")):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    def delay(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        ceiling = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        wait = random.uniform(0, ceiling)  # noqa: S311 (jitter, not a secret)
        return max(wait, retry_after or 0.0)


DEFAULT_RETRY = RetryPolicy()


@dataclass
class RetryStats:
    """What a client's retries did: read ``client.retry_stats``."""

    retries: int = 0
    refused_by_budget: int = 0
    refused_by_deadline: int = 0
    gave_up: int = 0  # calls that failed after every attempt was used


@dataclass
class RetryBudget:
    """Retries earned by first attempts (``ratio`` each, ``burst`` at most)."""

    ratio: float
    burst: float
    tokens: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = self.burst

    def earn(self) -> None:
        self.tokens = min(self.burst, self.tokens + self.ratio)

    def spend(self) -> bool:
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Retrier:
    """One client's retry state: its policy, budget and counts."""

    def __init__(self, policy: RetryPolicy, meter: PeerMeter | None = None) -> None:
        self.policy = policy
        self.budget = RetryBudget(policy.budget_ratio, policy.budget_burst)
        self.stats = RetryStats()
        self.meter = meter  # the service's metrics (instruments.py), None in a plain script

    def next_wait(self, retry: int, retry_after: float | None, method: str = "") -> float | None:
        """Seconds to wait before retry number ``retry`` of ``method``, or None: give up now."""
        meter = self.meter
        if retry >= self.policy.attempts:
            self.stats.gave_up += 1
            if meter is not None:
                meter.refused("attempts")
            return None
        wait = self.policy.delay(retry, retry_after)
        left = deadline.remaining()
        if left is not None and wait >= left:
            self.stats.refused_by_deadline += 1
            if meter is not None:
                meter.refused("deadline")
            return None
        if not self.budget.spend():
            self.stats.refused_by_budget += 1
            if meter is not None:
                meter.refused("budget")
            return None
        self.stats.retries += 1
        if meter is not None:
            meter.retried(method)
        return wait
