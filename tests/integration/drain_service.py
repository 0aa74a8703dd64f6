"""A service for the graceful-shutdown tests: slow async and blocking methods that leave a trace.

Every method appends one line ``<event> <token>`` to the file named by ``DRAIN_EVENTS_FILE`` when
it has done its work (``start`` lines mark a long call that has begun), so a test can tell after
the process exits which calls and notifications really ran. The variable is not ``SERVICE_*``:
the runtime refuses unknown settings with that prefix.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

from service_template import MicroService, public_method

EVENTS_ENV = "DRAIN_EVENTS_FILE"
_lock = threading.Lock()


def record(event: str, token: str) -> None:
    """Append one event line; called from the event loop and from pool threads."""
    path = os.environ.get(EVENTS_ENV)
    if not path:
        return
    with _lock, open(path, "a", encoding="utf-8") as events:
        events.write(f"{event} {token}\n")


class DrainService(MicroService):
    """Methods that take a while, so a drain has work in flight."""

    name = "drain"

    @public_method
    async def slow(self, token: str, ms: int) -> str:
        """Sleeps ``ms`` milliseconds on the event loop."""
        await asyncio.sleep(ms / 1000)
        record("call", token)
        return f"slow:{token}"

    @public_method
    def blocking(self, token: str, ms: int) -> str:
        """Sleeps ``ms`` milliseconds in a pool thread."""
        time.sleep(ms / 1000)
        record("call", token)
        return f"blocking:{token}"

    @public_method
    async def note(self, token: str) -> None:
        """Meant to be sent as a notification: only its trace shows that it ran."""
        await asyncio.sleep(0.01)
        record("note", token)

    @public_method
    async def hold(self, token: str, seconds: float) -> str:
        """A long async call: marks its start, then sleeps."""
        record("start", token)
        await asyncio.sleep(seconds)
        record("call", token)
        return f"hold:{token}"

    @public_method
    def hold_blocking(self, token: str, seconds: float) -> str:
        """A long blocking call: marks its start, then sleeps in a pool thread."""
        record("start", token)
        time.sleep(seconds)
        record("call", token)
        return f"hold_blocking:{token}"

    @public_method
    async def big(self, token: str, size: int, seconds: float) -> str:
        """A long call with a large result (``size`` characters)."""
        record("start", token)
        await asyncio.sleep(seconds)
        record("call", token)
        return "x" * size

    @public_method
    async def stall(self, token: str, wait: float, block: float) -> str:
        """Waits, then blocks the event loop itself for ``block`` seconds (marked ``blocking``).

        Blocking the loop is what a busy process does to its own reads: requests that arrive
        meanwhile sit unread in the kernel until the loop comes back.
        """
        record("start", token)
        await asyncio.sleep(wait)
        record("blocking", token)
        time.sleep(block)  # noqa: ASYNC251 - blocking the loop is the point
        record("call", token)
        return f"stall:{token}"
