"""Liveness and readiness: checks with timeouts, reported as ``application/health+json``.

The document follows the IETF draft "Health Check Response Format for HTTP APIs": a top-level
``status`` of ``pass`` or ``fail`` and a ``checks`` map with one entry per check.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

CONTENT_TYPE = "application/health+json"
log = logging.getLogger("service_template.health")


class Readiness:
    """The service's readiness checks, each bounded by ``limit`` seconds.

    Async checks run on the event loop and are cancelled at the limit. Plain checks run in
    ``executor`` (the runtime gives them a pool of their own, so a busy method pool cannot fail
    readiness and a stuck check cannot take a method's thread); a thread cannot be cancelled,
    so a plain check still running from an earlier probe is not started again: it is reported
    failed ("still running") until it returns. Probes that keep coming therefore hold at most
    one thread per check, however long a check hangs. ``checks`` is asked on each probe, so a
    check the service adds at any time counts from the next probe on.
    """

    def __init__(
        self,
        checks: Callable[[], Mapping[str, Callable[[], Any]]],
        limit: float,
        executor: Executor | None,
        run: Callable[[Callable[[], Any]], Any] = lambda check: check(),
    ) -> None:
        self.checks = checks  # asked on each probe: checks added at any time count
        self.limit = limit
        self.executor = executor
        self.run = run  # wraps a plain check in its thread (the runtime counts busy threads)
        self._running: dict[str, concurrent.futures.Future[Any]] = {}

    async def run_check(self, name: str, check: Callable[[], Any]) -> dict[str, Any]:
        """Run one check and describe its outcome."""
        started = time.perf_counter()
        status, output = "pass", None
        try:
            async with asyncio.timeout(self.limit):
                if inspect.iscoroutinefunction(check):
                    ok = await check()
                else:
                    ok = await self._in_thread(name, check)
            if not ok:
                status, output = "fail", "check returned false"
        except TimeoutError:
            status, output = "fail", f"timed out after {self.limit:g}s"
        except _StillRunning:
            status, output = "fail", "still running from an earlier probe"
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

    async def _in_thread(self, name: str, check: Callable[[], Any]) -> Any:
        running = self._running.get(name)
        if running is not None and not running.done():
            raise _StillRunning
        if self.executor is None:
            raise RuntimeError("a plain readiness check needs an executor")
        future = self.executor.submit(self.run, check)
        self._running[name] = future
        return await asyncio.wrap_future(future)

    async def document(self, draining: Callable[[], bool]) -> dict[str, Any]:
        """The readiness document: fails while draining, otherwise when any check fails.

        ``draining`` is asked after the checks ran, so a drain that began meanwhile is reported.
        """
        checks = dict(self.checks())
        results = await asyncio.gather(
            *(self.run_check(name, check) for name, check in checks.items())
        )
        draining_now = draining()
        doc_checks = {
            f"{name}:ready": [result] for name, result in zip(checks, results, strict=True)
        }
        doc_checks["drain:status"] = [{"status": "fail" if draining_now else "pass"}]
        failed = draining_now or any(result["status"] != "pass" for result in results)
        return {"status": "fail" if failed else "pass", "checks": doc_checks}


class _StillRunning(Exception):
    """A plain check's previous run has not returned yet."""


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
