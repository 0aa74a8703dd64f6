"""health.Readiness: each check bounded by the timeout; a stuck plain check never runs twice; the
documents carry the health-check draft's fields."""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from service_template.health import Readiness, identity, liveness

# Long enough that a check that answers at once does so inside it on a loaded machine (a plain
# check first waits for its pool thread to start); the hanging ones cost this much each.
LIMIT = 0.5


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
    assert outputs(first)["db:responseTime"] == ("fail", f"timed out after {LIMIT:g}s")
    for doc in (second, third):
        assert outputs(doc)["db:responseTime"] == ("fail", "still running from an earlier probe")
    assert outputs(after)["db:responseTime"] == ("pass", None)
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
        "hangs:responseTime": ("fail", f"timed out after {LIMIT:g}s"),
        "false:responseTime": ("fail", "check returned false"),
        "raises:responseTime": ("fail", "check raised an exception"),
        "drain:status": ("fail", "draining: the process is shutting down"),
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
    assert (before["status"], "cache:responseTime" in before["checks"]) == ("pass", False)
    assert after["status"] == "fail"
    assert outputs(after)["cache:responseTime"] == ("fail", "check returned false")


# -- the draft's fields (draft-inadarei-api-health-check-06) -------------------------------------

FIELDS = identity("orders", "2.1", "0.4.0", "Takes orders.")


def recent(stamp: str) -> bool:
    """An RFC 3339 UTC time within a minute of now."""
    taken = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return stamp.endswith("Z") and abs(time.time() - taken.timestamp()) < 60


def test_readiness_carries_the_drafts_top_level_fields_and_a_response_time_per_check() -> None:
    async def db() -> bool:
        return True

    async def scenario() -> dict[str, Any]:
        with ThreadPoolExecutor(1) as pool:
            readiness = Readiness(lambda: {"db": db}, LIMIT, pool, fields=FIELDS)
            return await readiness.document(lambda: False)

    doc = asyncio.run(scenario())
    assert {key: doc[key] for key in FIELDS} == {
        "version": "2.1",
        "releaseId": "0.4.0",
        "serviceId": "orders",
        "description": "Takes orders.",
    }
    assert doc["status"] == "pass"
    assert "output" not in doc  # the draft: omitted on a pass
    [db_check] = doc["checks"]["db:responseTime"]
    assert db_check["componentType"] == "component"
    assert db_check["observedUnit"] == "ms"
    assert 0 <= db_check["observedValue"] < LIMIT * 1000
    assert recent(db_check["time"])
    [drain] = doc["checks"]["drain:status"]
    assert (drain["componentType"], drain["status"]) == ("system", "pass")
    assert recent(drain["time"])


def test_a_failing_readiness_document_says_what_failed_in_output() -> None:
    async def down() -> bool:
        return False

    async def scenario() -> dict[str, Any]:
        with ThreadPoolExecutor(1) as pool:
            readiness = Readiness(lambda: {"cache": down}, LIMIT, pool, fields=FIELDS)
            return await readiness.document(lambda: True)

    doc = asyncio.run(scenario())
    assert doc["status"] == "fail"
    assert doc["output"] == "failing: cache:responseTime, drain:status"
    assert doc["checks"]["drain:status"][0]["output"] == "draining: the process is shutting down"


def test_liveness_reports_uptime_with_the_same_top_level_fields() -> None:
    doc = liveness(FIELDS, time.time() - 5)
    assert doc["status"] == "pass"
    assert doc["serviceId"] == "orders"
    assert doc["releaseId"] == "0.4.0"
    [uptime] = doc["checks"]["uptime"]
    assert uptime["componentType"] == "system"
    assert uptime["observedUnit"] == "s"
    assert 5 <= uptime["observedValue"] < 65
    assert recent(uptime["time"])


def test_a_service_without_a_description_is_described_by_its_name() -> None:
    assert identity("orders", "1", "1")["description"] == "the orders service"
