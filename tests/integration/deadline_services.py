"""A backend and a relay in front of it, for the deadline tests (test_deadlines.py).

The relay gives each call 1 s (``timeout=1``) and calls the backend from inside it, with the
async client (``get_service``) or, from a plain method, the blocking one. The backend reports
what it was given (``X-Timeout-Ms``) and how its slow calls ended.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from service_template import MicroService, RPCError, current_call, public_method
from service_template.client import ClientError, RemoteClient

MAX_SLEEP = 10.0


class BackendService(MicroService):
    """Answers with what its callers gave it."""

    name = "backend"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.endings: list[str] = []

    @public_method
    async def budget(self) -> str | None:
        """The ``X-Timeout-Ms`` this call arrived with (None without one)."""
        return current_call().headers.get("X-Timeout-Ms")  # type: ignore[no-any-return]

    @public_method
    async def request_id(self) -> str:
        """The X-Request-Id this call was served under."""
        return current_call().request_id

    @public_method
    async def echo(self, value: Any) -> Any:
        """``value``, without suspending (so only a refusal before the call can stop it)."""
        return value

    @public_method
    async def sleep(self, seconds: float) -> float:
        """Sleep, then say so; a sleep cut by the deadline is recorded as "cut"."""
        try:
            await asyncio.sleep(min(seconds, MAX_SLEEP))
        except asyncio.CancelledError:
            self.endings.append("cut")
            raise
        self.endings.append("finished")
        return seconds

    @public_method
    def plain_echo(self, value: Any) -> Any:
        """``value``, from a plain method (started straight in the thread pool); records it ran."""
        self.endings.append("plain ran")
        return value

    @public_method
    def plain_sleep(self, seconds: float) -> float:
        """A plain method's sleep: the deadline answers the caller, the thread sleeps on."""
        time.sleep(min(seconds, MAX_SLEEP))
        return seconds

    @public_method(timeout=0.5)
    async def short_sleep(self, seconds: float) -> float:
        """Sleep under a deadline of its own of 0.5 s."""
        await asyncio.sleep(min(seconds, MAX_SLEEP))
        return seconds

    @public_method
    async def endings_so_far(self) -> list[str]:
        """How the slow calls ended, in order."""
        return self.endings


class RelayService(MicroService):
    """Calls the backend (its peer ``backend``) from inside calls of 1 s."""

    name = "relay"

    @public_method(timeout=1)
    async def relay_budget(self) -> Any:
        """What the backend was given, through the async client."""
        return await self.get_service("backend").call("budget")

    @public_method
    async def relay_request_id(self) -> Any:
        """The request id the backend saw, through the async client."""
        return await self.get_service("backend").call("request_id")

    @public_method
    def relay_request_id_blocking(self) -> Any:
        """The same through the blocking client, from a plain method."""
        with RemoteClient(self.settings.peers["backend"]) as client:
            return client.call("request_id")

    @public_method(timeout=1)
    async def relay_budget_later(self) -> Any:
        """The same after 0.3 s of the call's second have passed."""
        await asyncio.sleep(0.3)
        return await self.get_service("backend").call("budget")

    @public_method(timeout=1)
    def relay_budget_blocking(self) -> Any:
        """The same through the blocking client, from a plain method (a pool thread)."""
        with RemoteClient(self.settings.peers["backend"]) as client:
            return client.call("budget")

    @public_method(timeout=1)
    async def relay_sleep(self, seconds: float) -> Any:
        """Ask the backend to sleep; how the backend call ended, as the relay saw it."""
        try:
            return await self.get_service("backend").call("sleep", seconds)
        except (ClientError, RPCError) as exc:
            return {"error": type(exc).__name__}
