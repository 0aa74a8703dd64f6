"""Liveness and readiness: checks with timeouts, reported as ``application/health+json``.

The document follows the IETF draft "Health Check Response Format for HTTP APIs": a top-level
``status`` of ``pass`` or ``fail`` and a ``checks`` map with one entry per check.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

CONTENT_TYPE = "application/health+json"
log = logging.getLogger("service_template.health")


async def run_check(
    name: str, check: Callable[[], Any], limit: float, executor: Executor | None
) -> dict[str, Any]:
    """Run one check (async, or sync in ``executor``) and describe its outcome."""
    started = time.perf_counter()
    status, output = "pass", None
    try:
        async with asyncio.timeout(limit):
            if inspect.iscoroutinefunction(check):
                ok = await check()
            else:
                ok = await asyncio.get_running_loop().run_in_executor(executor, check)
        if not ok:
            status, output = "fail", "check returned false"
    except TimeoutError:
        status, output = "fail", f"timed out after {limit:g}s"
    except Exception as exc:
        # The reason goes to the log; the response names only the failing check.
        log.warning("readiness check %s failed: %r", name, exc)
        status, output = "fail", "check raised an exception"
    result: dict[str, Any] = {
        "status": status,
        "observedValue": round((time.perf_counter() - started) * 1000, 3),
        "observedUnit": "ms",
    }
    if output:
        result["output"] = output
    return result


async def readiness(
    checks: Mapping[str, Callable[[], Any]],
    limit: float,
    executor: Executor | None,
    draining: Callable[[], bool],
) -> dict[str, Any]:
    """The readiness document: fails while draining, otherwise when any check fails.

    ``draining`` is asked after the checks ran, so a drain that began meanwhile is reported.
    """
    results = await asyncio.gather(
        *(run_check(name, check, limit, executor) for name, check in checks.items())
    )
    draining_now = draining()
    doc_checks = {f"{name}:ready": [result] for name, result in zip(checks, results, strict=True)}
    doc_checks["drain:status"] = [{"status": "fail" if draining_now else "pass"}]
    failed = draining_now or any(result["status"] != "pass" for result in results)
    return {"status": "fail" if failed else "pass", "checks": doc_checks}


def liveness(service: str, started_at: float) -> dict[str, Any]:
    """The liveness document: the event loop answered, so the process works."""
    return {
        "status": "pass",
        "serviceId": service,
        "checks": {
            "uptime": [
                {
                    "status": "pass",
                    "observedValue": round(time.time() - started_at, 3),
                    "observedUnit": "s",
                }
            ]
        },
    }
