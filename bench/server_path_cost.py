"""CPU time per request of the whole server path, in process: HTTP parsing, /api, dispatch, reply.

Usage: taskset -c 0 .venv/bin/python bench/server_path_cost.py [--without log,metrics]
       [--requests N] [--rounds N] [--service CLASS]

Our HTTP layer is fed the same bytes wrk sends, on 64 connections whose transport only counts
what is written: everything a request costs in Python, without the kernel's share (the sockets,
epoll) that ``bench/cpu_per_request.sh`` also counts. ``--without log`` takes the call log out,
``--without metrics`` the per-call metrics, so their cost per request is the difference between
two runs of this tool. The figure is the best of the rounds (the least disturbed); compare two
builds or two options side by side, on one core, in one sitting.

For ``async def`` methods it agrees with ``cpu_per_request.sh``. It does not for plain methods:
every connection's request arrives at once and the next round waits for all answers, and the
thread pool's bursts then differ from real traffic's. Compare plain methods over sockets.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH), str(BENCH / "servers")]

import ours_server  # noqa: E402
from peers import WORKLOADS  # noqa: E402
from profile_hotpath import production_runtime  # noqa: E402

from service_template.http.server import HTTPServer  # noqa: E402
from service_template.http.wire import Connection  # noqa: E402
from service_template.runtime import Runtime  # noqa: E402

CONNECTIONS = 64
ANSWER_TIMEOUT = 30.0  # seconds for one round's requests to be answered
LEAVE_OUT = ("log", "metrics")


class CountingTransport(asyncio.Transport):
    """A connection's transport that keeps nothing: counts writes, never blocks."""

    def __init__(self, answered: Callable[[], None]) -> None:
        super().__init__()
        self.writes = 0
        self.closed = False
        self.answered = answered

    def write(self, data: Any) -> None:
        self.writes += 1
        self.answered()

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def request_bytes(body: bytes) -> bytes:
    """The request wrk sends (bench/wrk/common.lua's headers)."""
    head = (
        b"POST /api HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    return head + body


def make_runtime(service_class: str, without: set[str]) -> Runtime:
    runtime = production_runtime(getattr(ours_server, service_class))
    if "log" in without:
        runtime.call_log = None
    if "metrics" in without:
        runtime.metrics = None
    return runtime


class Round:
    """Counts replies; ``done`` resolves when a round's requests are all answered."""

    def __init__(self) -> None:
        self.answered = 0
        self.target = 0
        self.done: asyncio.Future[None] | None = None

    def reply(self) -> None:
        self.answered += 1
        if self.answered == self.target and self.done is not None and not self.done.done():
            self.done.set_result(None)

    async def wait_for(self, target: int) -> None:
        self.target = target
        if self.answered >= target:
            return
        self.done = asyncio.get_running_loop().create_future()
        # Bounded: a request that is never answered is a broken run, not a hang.
        await asyncio.wait_for(self.done, ANSWER_TIMEOUT)


async def measure(runtime: Runtime, data: bytes, per_connection: int) -> float:
    """CPU seconds per request (the process's: the loop and the pool's threads): each
    connection fed one request at a time, the next round once all are answered."""
    server = HTTPServer(runtime)
    replies = Round()
    pairs = []
    for _ in range(CONNECTIONS):
        conn, transport = Connection(server), CountingTransport(replies.reply)
        conn.connection_made(transport)
        pairs.append((conn, transport))
    expected = per_connection * CONNECTIONS
    started = time.process_time()
    for round_no in range(1, per_connection + 1):
        for conn, _ in pairs:
            conn.data_received(data)
        try:
            await replies.wait_for(round_no * CONNECTIONS)
        except TimeoutError:
            break  # reported below
    await asyncio.sleep(0)  # the call log's flush for the last round
    spent = time.process_time() - started
    answered = sum(transport.writes for _, transport in pairs)
    for conn, _ in pairs:
        conn.connection_lost(None)
    if answered != expected:
        raise SystemExit(f"{answered} replies written for {expected} requests: not a clean run")
    return spent / expected


async def main(options: argparse.Namespace) -> None:
    without = set(filter(None, options.without.split(",")))
    unknown = without - set(LEAVE_OUT)
    if unknown:
        raise SystemExit(f"--without takes {', '.join(LEAVE_OUT)}; not {', '.join(unknown)}")
    runtime = make_runtime(options.service, without)
    gc.collect()
    gc.freeze()
    try:
        figures = []
        for workload in WORKLOADS:
            if workload.hops != 1:
                continue
            data = request_bytes(workload.body)
            await measure(runtime, data, max(1, options.requests // CONNECTIONS // 10))
            best = min(
                [
                    await measure(runtime, data, max(1, options.requests // CONNECTIONS))
                    for _ in range(options.rounds)
                ]
            )
            figures.append(f"{workload.name}={best * 1e6:.2f}us")
        left_out = f" without {','.join(sorted(without))}" if without else ""
        print(f"{options.service}{left_out}: " + " ".join(figures) + " (CPU per request)")
    finally:
        runtime.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=19_200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--service", default="ComputeService")
    parser.add_argument("--without", default="", help="comma-separated: " + ",".join(LEAVE_OUT))
    asyncio.run(main(parser.parse_args()))
