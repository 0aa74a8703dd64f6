"""Liveness and readiness: checks with timeouts, reported as ``application/health+json``.

The documents follow the IETF draft "Health Check Response Format for HTTP APIs"
(draft-inadarei-api-health-check-06), field for field:

- top level: ``status`` (``pass`` or ``fail``; the HTTP status agrees, section 3.1),
  ``version`` (the public version: the OpenRPC document's), ``releaseId`` (the installed
  release), ``serviceId``, ``description``, ``output`` naming what failed (omitted on a pass);
- ``checks``: one array per ``{componentName}:{measurementName}`` key (section 4). A readiness
  check ``db`` is ``db:responseTime``: its ``observedValue`` is how long it took, in ``ms``;
  ``drain:status`` fails once the drain began; ``/livez`` reports ``uptime`` in ``s``. Each entry
  has ``componentType`` (``component`` for a service's check, ``system`` for the process),
  ``status``, ``time`` (RFC 3339, when the reading was taken) and ``output`` when it failed.

Both stay cheap: the fixed fields are built once, and a probe adds a clock reading per check.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import inspect
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from typing import Any

__all__ = ["CONTENT_TYPE", "Readiness", "identity", "liveness"]

CONTENT_TYPE = "application/health+json"
log = logging.getLogger("service_template.health")


def identity(
    service: str, version: str, release: str, description: str | None = None
) -> dict[str, str]:
    """The fixed top-level fields of both documents (built once, copied into each); of
    ``description`` (the service's docstring), only its first line."""
    fields = {"version": version, "releaseId": release, "serviceId": service}
    first = description.strip().splitlines()[0] if description and description.strip() else None
    fields["description"] = first or f"the {service} service"
    return fields


def now() -> str:
    """The current time as the draft's ``time`` wants it (RFC 3339, UTC, milliseconds)."""
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


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
        fields: Mapping[str, str] | None = None,
    ) -> None:
        self.fields = dict(fields or {})  # identity(): the document's fixed top-level fields
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
            "componentType": "component",
            "observedValue": round((time.perf_counter() - started) * 1000, 3),
            "observedUnit": "ms",
            "status": status,
            "time": now(),
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
            f"{name}:responseTime": [result] for name, result in zip(checks, results, strict=True)
        }
        drain: dict[str, Any] = {"componentType": "system", "status": "pass", "time": now()}
        if draining_now:
            drain.update(status="fail", output="draining: the process is shutting down")
        doc_checks["drain:status"] = [drain]
        failing = [key for key, [result] in doc_checks.items() if result["status"] != "pass"]
        doc: dict[str, Any] = {"status": "fail" if failing else "pass", **self.fields}
        if failing:
            doc["output"] = "failing: " + ", ".join(failing)
        doc["checks"] = doc_checks
        return doc


class _StillRunning(Exception):
    """A plain check's previous run has not returned yet."""


def liveness(fields: Mapping[str, str], started_at: float) -> dict[str, Any]:
    """The liveness document: the event loop answered, so the process works.

    ``fields`` is ``identity(...)``; ``started_at`` the process's start, in ``time.time()``."""
    uptime = {
        "componentType": "system",
        "observedValue": round(time.time() - started_at, 3),
        "observedUnit": "s",
        "status": "pass",
        "time": now(),
    }
    return {"status": "pass", **fields, "checks": {"uptime": [uptime]}}
