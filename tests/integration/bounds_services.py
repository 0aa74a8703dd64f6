"""Services for tests/integration/test_event_loop_bounds.py, served with
``serve tests.integration.bounds_services:X``: a service that samples its own event loop's lag,
and token checks that block or hang."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from service_template import public_method
from tests.integration.services import MAX_SLEEP, ProbeService


class StallService(ProbeService):
    """Measures its own event loop: a task samples how late a short sleep wakes up."""

    name = "stall"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lag = 0.0
        self.samples = 0
        self.sampler: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(0.002)
            self.lag = max(self.lag, loop.time() - started - 0.002)
            self.samples += 1

    @public_method
    async def lag_reset(self) -> float:
        """Start sampling (once) and forget the worst lag so far; return that lag."""
        if self.sampler is None:
            self.sampler = asyncio.ensure_future(self._sample())
        worst, self.lag, self.samples = self.lag, 0.0, 0
        return worst

    @public_method
    async def lag_max(self) -> dict[str, float]:
        """The worst lag since the last reset, in seconds, and how many samples it saw."""
        return {"lag": self.lag, "samples": self.samples}

    @public_method
    async def non_finite(self, kind: str) -> dict[str, Any]:
        """A result JSON cannot hold (``kind`` is "inf", "-inf" or "nan"), nested."""
        return {"values": [1.5, None, {"x": float(kind)}]}


class BlockingTokenCheckService(ProbeService):
    """Its plain token check blocks its thread (a token store that hangs)."""

    name = "blocking-check"

    def api_token_is_valid(self, api_token: str) -> bool:
        time.sleep(MAX_SLEEP)
        return True


class HangingTokenCheckService(ProbeService):
    """Its ``async def`` token check never answers in time."""

    name = "hanging-check"

    async def api_token_is_valid(self, api_token: str) -> bool:  # type: ignore[override]
        await asyncio.sleep(MAX_SLEEP)
        return True
