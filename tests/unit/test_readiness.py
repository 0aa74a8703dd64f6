"""health.Readiness: each check bounded by the timeout; a stuck plain check never runs twice."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from service_template.health import Readiness

LIMIT = 0.05


def outputs(doc: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {
        name: (results[0]["status"], results[0].get("output"))
        for name, results in doc["checks"].items()
    }


def test_a_stuck_plain_check_is_bounded_and_not_started_again_until_it_returns() -> None:
    release = threading.Event()
    runs = []

    def stuck() -> bool:
        runs.append(1)
        release.wait(10)
        return True

    async def scenario() -> list[dict[str, Any]]:
        with ThreadPoolExecutor(1) as pool:
            readiness = Readiness(lambda: {"db": stuck}, LIMIT, pool)
            docs = [await readiness.document(lambda: False) for _ in range(3)]
            release.set()
            running = readiness._running["db"]
            await asyncio.wrap_future(running)
            docs.append(await readiness.document(lambda: False))
            return docs

    first, second, third, after = asyncio.run(scenario())
    assert outputs(first)["db:ready"] == ("fail", f"timed out after {LIMIT:g}s")
    for doc in (second, third):
        assert outputs(doc)["db:ready"] == ("fail", "still running from an earlier probe")
    assert outputs(after)["db:ready"] == ("pass", None)
    assert after["status"] == "pass"
    assert len(runs) == 2  # the stuck run and the one after it returned: never two at once


def test_async_checks_are_cancelled_at_the_limit_and_failures_are_named() -> None:
    async def hangs() -> bool:
        await asyncio.sleep(10)
        return True

    async def false() -> bool:
        return False

    def raises() -> bool:
        raise OSError("secret detail")

    async def scenario() -> dict[str, Any]:
        with ThreadPoolExecutor(1) as pool:
            checks = {"hangs": hangs, "false": false, "raises": raises}
            return await Readiness(lambda: checks, LIMIT, pool).document(lambda: True)

    doc = asyncio.run(scenario())
    assert outputs(doc) == {
        "hangs:ready": ("fail", f"timed out after {LIMIT:g}s"),
        "false:ready": ("fail", "check returned false"),
        "raises:ready": ("fail", "check raised an exception"),
        "drain:status": ("fail", None),
    }
    assert doc["status"] == "fail"


def test_the_checks_are_asked_on_each_probe_so_one_added_later_counts() -> None:
    checks: dict[str, Any] = {}

    async def down() -> bool:
        return False

    async def scenario() -> list[dict[str, Any]]:
        with ThreadPoolExecutor(1) as pool:
            readiness = Readiness(lambda: checks, LIMIT, pool)
            before = await readiness.document(lambda: False)
            checks["cache"] = down  # e.g. added in on_start, after the runtime was built
            return [before, await readiness.document(lambda: False)]

    before, after = asyncio.run(scenario())
    assert (before["status"], "cache:ready" in before["checks"]) == ("pass", False)
    assert after["status"] == "fail"
    assert outputs(after)["cache:ready"] == ("fail", "check returned false")
