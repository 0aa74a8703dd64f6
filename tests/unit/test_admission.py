"""The runtime's admission and drain accounting (``admit``, ``spawn``, ``wait_idle``), without
a socket: the same steps /api takes for each request (http/api.py)."""

from __future__ import annotations

import asyncio

from service_template import MicroService
from service_template.config import Settings
from service_template.runtime import Runtime


class Owner:
    """Stands in for the connection waiting for the answer."""

    def __init__(self) -> None:
        self.abandoned = False

    def abandon(self) -> None:
        self.abandoned = True


def make_runtime() -> Runtime:
    settings = Settings(metrics_enabled=False, max_concurrency=1)
    return Runtime(MicroService(settings), settings)


def admit_and_spawn(runtime: Runtime, owner: Owner, ran: list[str], hold: asyncio.Event) -> None:
    assert runtime.admit()

    async def request() -> None:
        try:
            ran.append("started")
            await hold.wait()
            ran.append("answered")
        finally:
            runtime.release()
            runtime.ended()

    runtime.spawn(request(), owner)


def test_a_request_cancelled_before_it_ran_gives_its_slot_back_and_its_owner_is_abandoned() -> None:
    async def scenario() -> tuple[bool, list[str], bool, bool]:
        runtime = make_runtime()
        owner, ran = Owner(), []
        try:
            admit_and_spawn(runtime, owner, ran, asyncio.Event())
            # As code that cancels every task does, before the request's task first ran.
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()
            idle = await runtime.wait_idle(5.0)
            return idle, ran, owner.abandoned, runtime.admit()
        finally:
            runtime.close()

    idle, ran, abandoned, admitted_again = asyncio.run(scenario())
    assert ran == []  # it really never ran: its own ``finally`` could not clean up
    assert idle and abandoned and admitted_again  # the drain is not held; the slot is back


def test_the_drain_waits_for_a_running_request_and_leaves_its_connection_alone() -> None:
    async def scenario() -> tuple[bool, bool, list[str], bool]:
        runtime = make_runtime()
        owner, ran, hold = Owner(), [], asyncio.Event()
        try:
            admit_and_spawn(runtime, owner, ran, hold)
            await asyncio.sleep(0)  # the request starts and waits
            early = await runtime.wait_idle(0.05)
            hold.set()
            idle = await runtime.wait_idle(5.0)
            return early, idle, ran, owner.abandoned
        finally:
            runtime.close()

    early, idle, ran, abandoned = asyncio.run(scenario())
    assert not early and idle
    assert ran == ["started", "answered"] and not abandoned
