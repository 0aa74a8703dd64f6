"""What the dispatcher needs to start plain methods in a thread pool, and a call started there.

The runtime implements ``PoolCalls`` (see ``service_template.pool``); the dispatcher stays free
of threads: it only gets an asyncio future per call.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any, Protocol

from .methods import Method, Params


class PoolCalls(Protocol):
    """Where plain methods run: a thread pool that answers through an asyncio future."""

    def runs_in_pool(self, method: Method) -> bool:
        """Whether calls to ``method`` go to ``start`` (asked once per method)."""
        ...

    def start(
        self,
        method: Method,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        context: contextvars.Context,
    ) -> asyncio.Future[Any]:
        """Start one call (run in ``context``, so ``current_call()`` answers); the future gets
        its result (maybe ``codec.Encoded``) or exception, its deadline included."""
        ...


class Pooled:
    """A call started in the pool, not answered yet."""

    __slots__ = ("future", "method", "params", "request_id", "started")

    def __init__(
        self,
        future: asyncio.Future[Any],
        request_id: Any,
        method: str,
        params: Params,
        started: float,
    ) -> None:
        self.future = future
        self.request_id = request_id
        self.method = method
        self.params = params
        self.started = started
