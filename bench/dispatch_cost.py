"""CPU time per request of the dispatcher alone (no HTTP), for the async and the plain method.

Usage: taskset -c 0 .venv/bin/python bench/dispatch_cost.py [REQUESTS]

Runs each workload's body through a ``Runtime`` of ``bench/servers/ours_server.py``'s two
services with 64 requests in flight, and prints the process's CPU time (every thread's) per
request, best of three. It isolates what the runtime adds per call, the thread hop for plain
methods included, from the HTTP layer; as with ``cpu_per_request.sh``, compare two builds on
the same machine rather than reading the absolute figures.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH / "servers"), str(BENCH)]

import ours_server  # noqa: E402
from peers import WORKLOADS  # noqa: E402

from service_template.config import Settings  # noqa: E402
from service_template.runtime import Runtime  # noqa: E402

IN_FLIGHT = 64


class _Context:
    """The transport's side of a call, doing nothing (no call log, no metrics of requests)."""

    def __init__(self) -> None:
        self.request_id = "bench"
        self.headers: dict[str, str] = {}

    async def authenticate(self) -> Any:
        return None

    def record(self, *outcome: Any) -> None:
        pass


async def _load(runtime: Runtime, body: bytes, requests: int) -> float:
    """CPU seconds per request over ``requests`` dispatches, IN_FLIGHT at a time."""
    context = _Context()

    async def client(count: int) -> None:
        for _ in range(count):
            await runtime.dispatcher.dispatch(body, context)

    started = time.process_time()
    await asyncio.gather(*(client(requests // IN_FLIGHT) for _ in range(IN_FLIGHT)))
    return (time.process_time() - started) / (requests // IN_FLIGHT * IN_FLIGHT)


async def main(requests: int) -> None:
    """Print one line per service and workload."""
    for cls in (ours_server.ComputeService, ours_server.PlainComputeService):
        service = cls(Settings.load({}, None, None, cls.class_defaults()))
        runtime = Runtime(service, service.settings)
        try:
            for workload in WORKLOADS:
                await _load(runtime, workload.body, requests // 10)  # warm-up
                best = min([await _load(runtime, workload.body, requests) for _ in range(3)])
                print(
                    f"{cls.__name__:<20} {workload.name:<12} "
                    f"{best * 1e6:7.1f} us CPU/request {best * 1e6 / workload.calls:6.1f} us/call"
                )
        finally:
            runtime.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
