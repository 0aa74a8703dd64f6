"""Failing fast: after a run of connection failures a peer is not called for a short while.

After ``failures`` connection errors or timeouts in a row, calls to the peer fail at once with
``PeerFailing`` (a ``ConnectError``, so code that handles an unreachable peer handles it too)
for ``cooldown`` seconds: a dead backend costs its callers microseconds, not a connect timeout
each. Then one call is let through as a probe; while it runs the others still fail fast. Its
success closes the breaker; its failure opens it for another cool-down. Any answer from the peer,
an error answer included, counts as success: the peer is there. One breaker per client, so per
peer (``MicroService.get_service`` keeps one client per peer).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from service_template.protocol import errors

from .errors import ClientError, ConnectError, RequestTimeout
from .urls import safe_url

if TYPE_CHECKING:
    from .instruments import PeerMeter


class PeerFailing(ConnectError):
    """The peer failed repeatedly just now; the call was not sent (``retry_in`` seconds left)."""

    def __init__(self, message: str, *, url: str, retry_in: float) -> None:
        super().__init__(message, url=url)
        self.retry_in = retry_in


@dataclass(frozen=True)
class BreakerPolicy:
    """When a client stops calling a failing peer, and for how long."""

    failures: int = 5
    cooldown: float = 5.0

    def __post_init__(self) -> None:
        if not (isinstance(self.failures, int) and self.failures >= 1):
            raise ValueError(f"failures must be an integer >= 1, got {self.failures!r}")
        if not (isinstance(self.cooldown, int | float) and 0 < self.cooldown < math.inf):
            raise ValueError(
                f"cooldown must be a positive number of seconds, got {self.cooldown!r}"
            )


DEFAULT_BREAKER = BreakerPolicy()


class Breaker:
    """One peer's state: closed (calls go), open (calls fail fast) or probing."""

    def __init__(self, policy: BreakerPolicy, meter: PeerMeter | None = None) -> None:
        self.policy = policy
        self.in_a_row = 0
        self.open_until = 0.0  # time.monotonic(); 0 while closed
        self.probing = False
        self.opened = 0  # times it opened: for tests and the curious
        # The service's metrics (instruments.py), told of each change of state; None in a
        # plain script. A breaker whose cool-down ended stays "open" there until a call probes.
        self.meter = meter
        if meter is not None:
            meter.breaker("closed")

    def before(self, where: str, url: str) -> None:
        """Raise ``PeerFailing`` unless a call may go now (a probe, when the cool-down is over)."""
        if not self.open_until:
            return
        left = self.open_until - time.monotonic()
        if left <= 0 and not self.probing:
            self.probing = True  # this call is the probe
            if self.meter is not None:
                self.meter.breaker("half_open")
            return
        raise PeerFailing(
            f"{where} is failing: {self.in_a_row} connection failures in a row, "
            f"not called for {max(left, 0.0):.1f} s more",
            url=safe_url(url),
            retry_in=max(left, 0.0),
        )

    def settle(self, error: BaseException) -> None:
        """Count a call that raised ``error`` after ``before`` let it go: a connection failure
        or timeout is a failure; any answer, an error answer included, a success (the peer is
        there); anything else (a cancellation) leaves the count as it was."""
        if isinstance(error, ConnectError | RequestTimeout):
            self.failed()
        elif isinstance(error, ClientError | errors.RPCError):
            self.succeeded()
        else:
            self.abandoned()

    def succeeded(self) -> None:
        if self.open_until and self.meter is not None:
            self.meter.breaker("closed")
        self.in_a_row, self.open_until, self.probing = 0, 0.0, False

    def failed(self) -> None:
        self.in_a_row += 1
        if self.probing or self.in_a_row >= self.policy.failures:
            self.open_until = time.monotonic() + self.policy.cooldown
            self.opened += 1
            if self.meter is not None:
                self.meter.breaker("open")
        self.probing = False

    def abandoned(self) -> None:
        """The call was cancelled: it proved nothing, so a later call may probe."""
        if self.probing and self.meter is not None:
            self.meter.breaker("open")  # back to waiting for a probe
        self.probing = False
