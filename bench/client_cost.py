"""CPU per call of JSON-RPC clients making the same call to the same server.

Usage::

    flock /tmp/bench.lock python3 bench/client_cost.py            # every client, 3 rounds
    python3 bench/client_cost.py --rounds 1 --calls 2000 --only ours,aiohttp
    python3 bench/client_cost.py --profile ours                   # cProfile of one client

One server (``bench/servers/ours_server.py``, the compute example's ``add``) runs on CPU 0. Each
client runs in a fresh process on CPU 1 with its own virtual environment (``bench/setup.sh``
makes them: ``ours`` has this repository, ``aiohttp-rpc`` has aiohttp), warms up, then makes
``--calls`` calls ``add(1, 2)`` from ``--concurrency`` tasks over one connection pool. The figure
is the client process's CPU time (user + system, ``time.process_time``) over the measured calls,
divided by their number: what a gateway pays per downstream call. Rounds rotate the client
order; the table shows medians, and the ratio to aiohttp's client taken round by round.

Clients: ``ours`` (``AsyncRemoteClient`` as shipped, as a plain script makes it),
``ours-metered`` (the same client reporting to a service's metrics, as ``get_service`` makes
it: ``client_metrics.py``), ``ours-httpx`` (the same client over
httpx, the transport a test's ``transport=`` selects), ``ours-sync`` (``RemoteClient``, one
task), ``httpx`` (a bare ``httpx.AsyncClient`` posting the body), ``aiohttp`` (a bare
``aiohttp.ClientSession`` posting the body). Needs only the standard library to drive.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENVS = BENCH_DIR / ".venvs"
SERVER_CPU, CLIENT_CPU = "0", "1"
BODY = b'{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}'
CLIENT_VENV = {
    "ours": "ours",
    "ours-metered": "ours",
    "ours-httpx": "ours",
    "ours-sync": "ours",
    "httpx": "ours",
    "aiohttp": "aiohttp-rpc",
}


# ---- the worker: runs inside a client's venv, prints one JSON line -------------------------


async def _ours(
    url: str, calls: int, concurrency: int, httpx_seam: bool, metered: bool = False
) -> float:
    from service_template.client import AsyncRemoteClient

    transport: Any = None
    if httpx_seam:
        import httpx

        transport = httpx.AsyncHTTPTransport()
    metrics: Any = None
    if metered:
        from service_template.client_metrics import ClientMetrics
        from service_template.metrics import CollectorRegistry

        metrics = ClientMetrics(CollectorRegistry())
    async with AsyncRemoteClient(url, transport=transport, metrics=metrics) as client:
        return await _drive(lambda: client.methods.add(1, 2), calls, concurrency)


async def _httpx(url: str, calls: int, concurrency: int) -> float:
    import httpx

    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=10) as client:

        async def one() -> Any:
            response = await client.post(url, content=BODY, headers=headers)
            return json.loads(response.content)["result"]

        return await _drive(one, calls, concurrency)


async def _aiohttp(url: str, calls: int, concurrency: int) -> float:
    import aiohttp

    headers = {"Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one() -> Any:
            async with session.post(url, data=BODY, headers=headers) as response:
                return json.loads(await response.read())["result"]

        return await _drive(one, calls, concurrency)


async def _drive(one: Any, calls: int, concurrency: int) -> float:
    """Warm up, then make ``calls`` calls from ``concurrency`` tasks; return CPU seconds."""
    import asyncio

    async def worker(count: int) -> None:
        for _ in range(count):
            if await one() != 3:
                raise SystemExit("wrong answer")

    await asyncio.gather(*(worker(50) for _ in range(concurrency)))
    share = calls // concurrency
    started = time.process_time()
    await asyncio.gather(*(worker(share) for _ in range(concurrency)))
    return time.process_time() - started


def _sync(url: str, calls: int) -> float:
    from service_template.client import RemoteClient

    with RemoteClient(url) as client:
        for _ in range(50):
            client.methods.add(1, 2)
        started = time.process_time()
        for _ in range(calls):
            if client.methods.add(1, 2) != 3:
                raise SystemExit("wrong answer")
        return time.process_time() - started


def worker(kind: str, url: str, calls: int, concurrency: int, profile: bool) -> None:
    import asyncio

    def run() -> float:
        if kind == "ours-sync":
            return _sync(url, calls)
        runners = {
            "ours": lambda: _ours(url, calls, concurrency, httpx_seam=False),
            "ours-metered": lambda: _ours(url, calls, concurrency, False, metered=True),
            "ours-httpx": lambda: _ours(url, calls, concurrency, httpx_seam=True),
            "httpx": lambda: _httpx(url, calls, concurrency),
            "aiohttp": lambda: _aiohttp(url, calls, concurrency),
        }
        return asyncio.run(runners[kind]())

    made = calls if kind == "ours-sync" else (calls // concurrency) * concurrency
    wall = time.perf_counter()
    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        cpu = profiler.runcall(run)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    else:
        cpu = run()
    wall = time.perf_counter() - wall
    print(json.dumps({"cpu_us_per_call": cpu / made * 1e6, "calls": made, "wall_s": wall}))


# ---- the driver: stdlib only ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    command = [
        "taskset", "-c", SERVER_CPU, str(VENVS / "ours" / "bin" / "python"), "-m",
        "service_template", "serve", "bench/servers/ours_server.py:ComputeService",
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    env["SERVICE_LOG_LEVEL"] = "WARNING"  # the client's cost is measured, not the log's
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1):
                return process
        except OSError:
            time.sleep(0.05)  # polling the server's health, not waiting blindly
    stop(process)
    raise SystemExit("the server did not answer within 30 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(15)


def run_client(kind: str, url: str, args: argparse.Namespace, profile: bool = False) -> float:
    python = VENVS / CLIENT_VENV[kind] / "bin" / "python"
    command = ["taskset", "-c", CLIENT_CPU, str(python), str(Path(__file__).resolve()),
               "--worker", kind, "--url", url, "--calls", str(args.calls),
               "--concurrency", str(args.concurrency)]  # fmt: skip
    if profile:
        command.append("--profile")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, env=env, check=False
    )
    if profile:
        sys.stderr.write(done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"client {kind} failed: {done.stderr[-2000:]}")
    return float(json.loads(done.stdout.splitlines()[-1])["cpu_us_per_call"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--only", default=",".join(CLIENT_VENV))
    parser.add_argument("--profile", nargs="?", const="ours", default=None)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.url, args.calls, args.concurrency, args.profile is not None)
        return 0
    subprocess.run(["bash", str(BENCH_DIR / "setup.sh"), "ours", "aiohttp-rpc"], check=True)
    kinds = [k for k in args.only.split(",") if k]
    unknown = sorted(set(kinds) - set(CLIENT_VENV))
    if unknown:
        parser.error(f"unknown clients {unknown}; known: {sorted(CLIENT_VENV)}")
    port = free_port()
    server = start_server(port)
    url = f"http://127.0.0.1:{port}/api"
    try:
        if args.profile:
            run_client(args.profile, url, args, profile=True)
            return 0
        figures: dict[str, list[float]] = {k: [] for k in kinds}
        ratios: dict[str, list[float]] = {k: [] for k in kinds}
        for round_no in range(args.rounds):
            order = kinds[round_no % len(kinds) :] + kinds[: round_no % len(kinds)]
            this = {kind: run_client(kind, url, args) for kind in order}
            for kind, value in this.items():
                figures[kind].append(value)
                if "aiohttp" in this:
                    ratios[kind].append(value / this["aiohttp"])
    finally:
        stop(server)
    print(
        f"client CPU per call: {args.calls} calls x {args.rounds} rounds, {args.concurrency}"
        f" tasks, server on CPU {SERVER_CPU}, client on CPU {CLIENT_CPU}"
    )
    print("| client | CPU us/call (median) | rounds | x aiohttp client |")
    print("|---|---|---|---|")
    for kind in kinds:
        values = ", ".join(f"{v:.0f}" for v in figures[kind])
        ratio = f"{statistics.median(ratios[kind]):.2f}" if ratios[kind] else "-"
        print(f"| {kind} | {statistics.median(figures[kind]):.0f} | {values} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
