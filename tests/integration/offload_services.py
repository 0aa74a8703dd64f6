"""A service for the offload tests: plain methods that block, raise, or report where they ran.

Served with ``serve tests.integration.offload_services:OffloadService``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from service_template import InvalidParams, MicroService, current_call, public_method

MAX_SLEEP = 10.0


class OffloadService(MicroService):
    """Plain (``def``) methods in the thread pool, one marked ``blocking=False``, one async."""

    name = "offload"

    @public_method
    def block(self, seconds: float) -> float:
        """Hold a pool thread with ``time.sleep``, then return ``seconds``."""
        time.sleep(min(seconds, MAX_SLEEP))
        return seconds

    @public_method(timeout=0.3)
    def slow(self, seconds: float) -> float:
        """As ``block``, with a deadline of its own (0.3 s)."""
        time.sleep(min(seconds, MAX_SLEEP))
        return seconds

    @public_method
    def add(self, a: int, b: int) -> int:
        """A cheap plain method: return a + b."""
        return a + b

    @public_method
    async def add_async(self, a: int, b: int) -> int:
        """The same, written ``async def``."""
        return a + b

    @public_method
    def fail(self, kind: str) -> None:
        """Raise: ``invalid`` an InvalidParams (the caller's mistake), else a RuntimeError."""
        if kind == "invalid":
            raise InvalidParams(data={"reason": "kind was 'invalid'"})
        raise RuntimeError("a fault inside a plain method")

    @public_method
    def where(self) -> dict[str, Any]:
        """The thread this call ran in and the call as ``current_call()`` sees it."""
        call = current_call()
        return {
            "thread": threading.current_thread().name,
            "method": call.method,
            "id": call.id,
        }

    @public_method(name="where_inline", blocking=False)
    def where_inline(self) -> dict[str, Any]:
        """As ``where``, marked ``blocking=False``: it runs on the event loop's thread."""
        return self.where()
