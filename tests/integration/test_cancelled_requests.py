"""An /api request whose task is cancelled (by code that cancels every task, or a loop shutting
down) never holds up the drain, and its client is not left waiting for an answer that can never
come: the connection closes.

The server runs in-process on a free loopback port; a task factory on its loop cancels the
request's task the moment it is made, before it first runs, which is what such a canceller
does to a request that has just arrived.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from service_template import MicroService, public_method, runner
from service_template.config import Settings

pytestmark = pytest.mark.integration

DRAIN_TIMEOUT = 8.0
PROMPT = 3.0  # a drain with nothing in flight takes milliseconds; generous for a busy machine


class Idle(MicroService):
    name = "idle"

    @public_method
    async def wait(self) -> str:
        """Suspends once, then answers."""
        await asyncio.sleep(0)
        return "done"


def _request_body() -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "method": "wait", "id": 1}).encode()
    head = (
        "POST /api HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _cancel_a_request(before_it_runs: bool) -> tuple[float, bytes]:
    """Send one request whose task is cancelled, then stop the server; returns how long the
    drain took and what the client received."""
    loop = asyncio.get_running_loop()
    cancelled = asyncio.Event()

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        task = asyncio.Task(coro, loop=loop, **kwargs)
        if getattr(coro, "__qualname__", "") == "APIEndpoint._dispatch":
            if before_it_runs:
                task.cancel()
            else:
                loop.call_soon(task.cancel)  # once it has started: suspended in the method
            cancelled.set()
        return task

    service = Idle(Settings(port=0, drain_timeout=DRAIN_TIMEOUT, metrics_enabled=False))
    loop.set_task_factory(factory)
    try:
        async with runner.running(service) as url:
            port = int(url.rsplit(":", 1)[1].split("/")[0])
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_request_body())
            await asyncio.wait_for(cancelled.wait(), 10)
            await asyncio.sleep(0.05)  # let the cancellation take effect before the drain
            started = loop.time()
        took = loop.time() - started  # the drain ran as running() exited
        received = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    finally:
        loop.set_task_factory(None)
    return took, received


@pytest.mark.parametrize("before_it_runs", [True, False], ids=["before-it-runs", "while-running"])
def test_a_cancelled_request_does_not_hold_up_the_drain_and_its_connection_closes(
    before_it_runs: bool, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "service_template.http")
    took, received = asyncio.run(_cancel_a_request(before_it_runs))
    assert took < PROMPT, f"the drain took {took:.1f}s (its deadline is {DRAIN_TIMEOUT}s)"
    assert "drain deadline passed" not in caplog.text
    assert received == b""  # closed without an answer: the request never ran to its end
