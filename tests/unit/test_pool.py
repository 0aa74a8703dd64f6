"""The thread pool plain methods run in (``service_template.pool``), driven from an event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from service_template.pool import ThreadPool

BOUND = 5.0  # generous: the machine is shared; every wait below is bounded by it


def _gate() -> tuple[threading.Event, Any]:
    """An event and a work item that blocks its thread until the event is set."""
    released = threading.Event()

    def wait() -> str:
        assert released.wait(BOUND), "never released"
        return "released"

    return released, wait


async def _until_busy(pool: ThreadPool, count: int) -> None:
    """Poll (bounded) until ``count`` threads are inside a call."""
    for _ in range(int(BOUND / 0.01)):
        if pool.busy() == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{pool.busy()} threads busy, expected {count}")


def test_results_and_exceptions_come_back_to_the_caller() -> None:
    async def main() -> None:
        pool = ThreadPool(4, "t")
        results = await asyncio.gather(*(pool.submit(lambda i=i: i * i) for i in range(200)))
        assert results == [i * i for i in range(200)]
        with pytest.raises(ZeroDivisionError):
            await pool.submit(lambda: 1 / 0)
        pool.close()

    asyncio.run(main())


def test_a_blocked_thread_does_not_hold_up_other_work() -> None:
    async def main() -> None:
        pool = ThreadPool(4, "t")
        released, wait = _gate()
        blocked = pool.submit(wait)
        await _until_busy(pool, 1)
        quick = await asyncio.wait_for(
            asyncio.gather(*(pool.submit(lambda i=i: i) for i in range(50))), BOUND
        )
        assert quick == list(range(50))
        assert not blocked.done()
        # A thread hands its result back before it counts itself idle: wait (bounded) for
        # the quick calls' threads to settle; the blocked one stays busy.
        await _until_busy(pool, 1)
        released.set()
        assert await asyncio.wait_for(blocked, BOUND) == "released"
        pool.close()

    asyncio.run(main())


def test_work_queued_behind_a_blocked_call_is_taken_by_another_thread() -> None:
    async def main() -> None:
        pool = ThreadPool(4, "t")
        assert await pool.submit(lambda: "warm") == "warm"
        for _ in range(int(BOUND / 0.01)):  # its one thread parks once the queue is empty
            if pool.parked == 1:
                break
            await asyncio.sleep(0.01)
        assert pool.parked == 1
        released, wait = _gate()
        # Submitted together (as a batch's members are): one thread is woken for all of them.
        blocked = pool.submit(wait)
        quick = [pool.submit(lambda i=i: i) for i in range(20)]
        assert await asyncio.wait_for(asyncio.gather(*quick), BOUND) == list(range(20))
        assert not blocked.done()
        released.set()
        assert await asyncio.wait_for(blocked, BOUND) == "released"
        pool.close()

    asyncio.run(main())


def test_threads_are_bounded_and_work_waits_for_a_free_one() -> None:
    async def main() -> None:
        pool = ThreadPool(2, "t")
        gates = [_gate() for _ in range(2)]
        blocked = [pool.submit(wait) for _, wait in gates]
        await _until_busy(pool, 2)
        waiting = pool.submit(lambda: "ran")
        await asyncio.sleep(0.1)  # time it would have had to run, were there a thread for it
        assert not waiting.done(), "ran with every thread busy: the pool grew past its size"
        assert pool.threads == 2
        gates[0][0].set()
        assert await asyncio.wait_for(waiting, BOUND) == "ran"
        gates[1][0].set()
        assert await asyncio.wait_for(asyncio.gather(*blocked), BOUND) == ["released"] * 2
        pool.close()

    asyncio.run(main())


def test_a_call_past_its_timeout_fails_with_the_pools_exception() -> None:
    async def main() -> None:
        pool = ThreadPool(2, "t", on_deadline=LookupError)
        released, wait = _gate()
        started = asyncio.get_running_loop().time()
        with pytest.raises(LookupError) as caught:
            await pool.submit(wait, 0.2, "slow")
        waited = asyncio.get_running_loop().time() - started
        assert caught.value.args == ("slow", 0.2)
        assert 0.2 <= waited < BOUND
        assert pool.busy() == 1  # its thread runs on; the outcome will be dropped
        # Calls with other limits, and calls that finish in time, are not touched.
        assert await pool.submit(lambda: "in time", 30.0, "fast") == "in time"
        released.set()
        pool.close()

    asyncio.run(main())


def test_queued_work_whose_caller_gave_up_never_runs() -> None:
    async def main() -> None:
        pool = ThreadPool(1, "t")
        released, wait = _gate()
        blocked = pool.submit(wait)
        ran: list[str] = []
        abandoned = pool.submit(lambda: ran.append("abandoned"))
        abandoned.cancel()
        after = pool.submit(lambda: "after")
        released.set()
        assert await asyncio.wait_for(after, BOUND) == "after"
        assert await blocked == "released"
        assert ran == []
        pool.close()

    asyncio.run(main())


def test_a_closed_pool_refuses_work() -> None:
    async def main() -> None:
        pool = ThreadPool(1, "t")
        assert await pool.submit(lambda: 1) == 1
        pool.close()
        with pytest.raises(RuntimeError, match="closed"):
            pool.submit(lambda: 2)

    asyncio.run(main())


def test_a_pool_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        ThreadPool(0, "t")
