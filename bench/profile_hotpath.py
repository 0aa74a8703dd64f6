"""CPU time per call of dispatch with everything a real /api request pays for, but no HTTP.

Usage: taskset -c 0 .venv/bin/python bench/profile_hotpath.py [--calls N] [--profile SHAPE/WORKLOAD]

Unlike ``dispatch_cost.py`` the calls are recorded as the HTTP endpoint records them: metrics
and the call log (written to /dev/null), so the figure includes what every call pays after the
method. Three shapes of the same method, the ones users write: ``async def add(a, b)``, plain
``def add(a, b)`` (thread pool) and typed ``def add(a: int, b: int) -> int``. The shapes are
interleaved round by round, so a busy machine disturbs them alike; the figure is the best of
the rounds. ``--profile async/batch`` prints a cProfile of that shape and workload instead.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

from peers import WORKLOADS  # noqa: E402

from service_template import MicroService, public_method  # noqa: E402
from service_template.config import Settings  # noqa: E402
from service_template.http.api import _Call  # noqa: E402
from service_template.http.request import Request  # noqa: E402
from service_template.logs import LineWriter  # noqa: E402
from service_template.runtime import Runtime  # noqa: E402

IN_FLIGHT = 64


class AsyncAdd(MicroService):
    name = "compute"

    @public_method
    async def add(self, a, b):  # type: ignore[no-untyped-def]
        return a + b


class PlainAdd(MicroService):
    name = "compute"

    @public_method
    def add(self, a, b):  # type: ignore[no-untyped-def]
        return a + b


class TypedAdd(MicroService):
    name = "compute"

    @public_method
    def add(self, a: int, b: int) -> int:
        return a + b


SHAPES = {"async": AsyncAdd, "plain": PlainAdd, "typed": TypedAdd}


def production_runtime(cls: type[MicroService]) -> Runtime:
    """A runtime for ``cls`` as ``serve`` builds it (auth on, the benchmark's concurrency
    limit), its call log written to /dev/null."""
    env = {"SERVICE_API_TOKEN": "bench", "SERVICE_MAX_CONCURRENCY": "1024"}
    service = cls(Settings.load(env, None, None, cls.class_defaults()))
    runtime = Runtime(service, service.settings)
    if runtime.call_log is not None:
        runtime.call_log.writer = LineWriter(open("/dev/null", "wb"))  # noqa: SIM115
        runtime.call_log.enabled = True  # as under `serve` (INFO), whatever this process says
    return runtime


async def _load(runtime: Runtime, body: bytes, requests: int) -> float:
    """CPU seconds per request over ``requests`` dispatches, IN_FLIGHT at a time."""

    async def client(count: int) -> None:
        for _ in range(count):
            request = Request()
            request.request_id = "0123456789abcdef"
            request.headers = {"host": "127.0.0.1", "content-type": "application/json"}
            await runtime.dispatcher.dispatch(body, _Call(request, runtime))

    per = max(1, requests // IN_FLIGHT)
    started = time.process_time()
    await asyncio.gather(*(client(per) for _ in range(IN_FLIGHT)))
    return (time.process_time() - started) / (per * IN_FLIGHT)


async def main(calls: int, rounds: int, profile: str | None) -> None:
    runtimes = {name: production_runtime(cls) for name, cls in SHAPES.items()}
    try:
        if profile is not None:
            shape, _, workload_name = profile.partition("/")
            workload = next(w for w in WORKLOADS if w.name == workload_name)
            runtime = runtimes[shape]
            await _load(runtime, workload.body, calls // workload.calls // 10)
            profiler = cProfile.Profile()
            profiler.enable()
            await _load(runtime, workload.body, calls // workload.calls)
            profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
            print(out.getvalue())
            return
        best: dict[tuple[str, str], float] = {}
        for _ in range(rounds):
            for workload in WORKLOADS:
                for name, runtime in runtimes.items():
                    await _load(runtime, workload.body, calls // workload.calls // 10)
                    cost = await _load(runtime, workload.body, calls // workload.calls)
                    cost /= workload.calls
                    key = (name, workload.name)
                    best[key] = min(best.get(key, cost), cost)
        header = "".join(f"{w.name:>14}" for w in WORKLOADS)
        print(f"{'shape':<8}{header}   (us CPU per call)")
        for name in runtimes:
            row = "".join(f"{best[(name, w.name)] * 1e6:14.2f}" for w in WORKLOADS)
            print(f"{name:<8}{row}")
    finally:
        for runtime in runtimes.values():
            runtime.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", metavar="SHAPE/WORKLOAD")
    options = parser.parse_args()
    asyncio.run(main(options.calls, options.rounds, options.profile))
