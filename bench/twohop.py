"""Service-to-service benchmark: a gateway that answers each call by calling a backend.

Usage::

    flock /tmp/bench.lock python3 bench/twohop.py                 # 3 rounds x 10 s, both stacks
    python3 bench/twohop.py --rounds 1 --duration 3 --connections 32

Two stacks of the same shape, side by side in one run: ``ours`` (this runtime's gateway,
``bench/servers/twohop_gateway.py``, calling ``bench/servers/ours_server.py`` through
``AsyncRemoteClient``) and ``aiohttp-rpc`` (``bench/servers/twohop_aiohttp_rpc.py`` calling
``bench/servers/aiohttp_rpc_server.py`` through aiohttp-rpc's ``JSONRPCClient``). wrk sends
``add(1, 2)`` to the gateway; every call makes one call to the backend.

The gateway has CPU 0 to itself; the backend and wrk share CPU 1 (the same for both stacks, on
a 2-core machine). Per round and stack: start both fresh, check the exact answer, warm up,
measure with wrk, check again. Figures: gateway calls/s, p50/p99 (wrk's histogram), the CPU
time of the gateway's and the backend's process trees over the measured run divided by the
calls (``/proc/<pid>/stat``), and ``client ~`` = gateway CPU - backend CPU per call: the two
run the same runtime and the same method, so the difference is, roughly, what the gateway's
client costs per downstream call (``bench/client_cost.py`` measures the client alone). Ratios
are ours over aiohttp-rpc, per round, then the median. Standard library only; the venvs come
from ``bench/setup.sh``.
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
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checks import CheckFailed, check, wait_until_answering
from peers import AIOHTTP_RPC, BENCH_DIR, OURS, OURS_ENV, REPO_ROOT, WORKLOADS, WRK_DIR, Peer

GATEWAY_CPU, BACKEND_CPU, LOAD_CPU = "0", "1", "1"
SINGLE = WORKLOADS[0]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Stack:
    """A gateway and its backend: how to start each (``{port}``, ``{backend}`` filled in)."""

    name: str
    gateway: tuple[str, ...]
    backend: tuple[str, ...]
    env: dict[str, str]


def _ours(*args: str) -> tuple[str, ...]:
    return ("-m", "service_template", "serve", *args, "--host", "127.0.0.1", "--port", "{port}")


STACKS = (
    Stack(
        OURS,
        _ours("bench/servers/twohop_gateway.py:GatewayService"),
        _ours("bench/servers/ours_server.py:ComputeService"),
        # The gateway finds its backend by name, as a real one does (SERVICE_PEERS).
        {**OURS_ENV, "SERVICE_PEERS": "backend={backend}"},
    ),
    Stack(
        AIOHTTP_RPC,
        ("bench/servers/twohop_aiohttp_rpc.py", "{port}", "{backend}"),
        ("bench/servers/aiohttp_rpc_server.py", "{port}"),
        {},
    ),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (``/proc``)."""
    total, pending, seen = 0, [pid], 0
    while pending and seen < 1000:
        current = pending.pop()
        seen += 1
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
        pending.extend(int(child) for child in children)
    return total / CLOCK_TICKS


def start(
    stack: Stack, argv: tuple[str, ...], port: int, backend: str, cpu: str, log: Path
) -> subprocess.Popen[bytes]:
    python = BENCH_DIR / ".venvs" / stack.name / "bin" / "python"
    fill = {"{port}": str(port), "{backend}": backend}
    args = [fill.get(arg, arg) for arg in argv]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    env.pop("PYTHONPATH", None)
    # The backend gets the stack's settings but no peers; the gateway gets its backend's URL.
    env.update(
        {
            k: v.replace("{backend}", backend)
            for k, v in stack.env.items()
            if backend or k != "SERVICE_PEERS"
        }
    )
    with log.open("ab") as out:
        return subprocess.Popen(
            ["taskset", "-c", cpu, str(python), *args],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group made for this server alone
            process.wait(15)


def wrk(port: int, seconds: int, connections: int) -> dict[str, Any]:
    command = [
        "taskset", "-c", LOAD_CPU, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
        "--latency", "-s", str(WRK_DIR / "single.lua"), f"http://127.0.0.1:{port}/api",
    ]  # fmt: skip
    env = {**os.environ, "BENCH_EXTRA_HEADERS": ""}
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=seconds + 30, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return dict(json.loads(line.removeprefix("BENCH_RESULT ")))
    raise CheckFailed(f"wrk exited {done.returncode}: {(done.stdout + done.stderr)[-500:]}")


def measure(stack: Stack, args: argparse.Namespace, logs: Path) -> dict[str, Any]:
    """One run of one stack: start, check, warm up, measure, check, stop."""
    peer = Peer(stack.name, ())
    backend_port, gateway_port = free_port(), free_port()
    backend_url = f"http://127.0.0.1:{backend_port}/api"
    log = logs / f"{stack.name}.log"
    processes = [start(stack, stack.backend, backend_port, "", BACKEND_CPU, log)]
    try:
        wait_until_answering(backend_port, peer, SINGLE, processes[0], 30)
        processes.append(start(stack, stack.gateway, gateway_port, backend_url, GATEWAY_CPU, log))
        wait_until_answering(gateway_port, peer, SINGLE, processes[1], 30)
        if args.warmup:
            wrk(gateway_port, args.warmup, args.connections)
        before = [tree_cpu_s(p.pid) for p in processes]
        result = wrk(gateway_port, args.duration, args.connections)
        after = [tree_cpu_s(p.pid) for p in processes]
        check(gateway_port, peer, SINGLE)
        if any(p.poll() is not None for p in processes):
            raise CheckFailed(f"{stack.name}: a server exited under load")
    finally:
        for process in reversed(processes):
            stop(process)
    calls = result["requests"]
    errors = sum(result["errors"].values())
    if errors or not calls:
        raise CheckFailed(f"{stack.name}: {errors} errors in {calls} calls: {result['errors']}")
    backend_ms, gateway_ms = ((a - b) / calls * 1e3 for a, b in zip(after, before, strict=True))
    return {
        "calls_per_s": calls / (result["duration_us"] / 1e6),
        "p50_ms": result["latency_us"]["p50"] / 1e3,
        "p99_ms": result["latency_us"]["p99"] / 1e3,
        "gateway_cpu_ms": gateway_ms,
        "backend_cpu_ms": backend_ms,
        "client_cpu_ms": gateway_ms - backend_ms,
    }


COLUMNS = ("calls_per_s", "p50_ms", "p99_ms", "gateway_cpu_ms", "backend_cpu_ms", "client_cpu_ms")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args(argv)
    subprocess.run(["bash", str(BENCH_DIR / "setup.sh"), OURS, AIOHTTP_RPC], check=True)
    runs: dict[str, list[dict[str, Any]]] = {stack.name: [] for stack in STACKS}
    with tempfile.TemporaryDirectory(prefix="twohop-") as folder:
        for round_no in range(args.rounds):
            order = STACKS[round_no % 2 :] + STACKS[: round_no % 2]
            for stack in order:
                try:
                    runs[stack.name].append(measure(stack, args, Path(folder)))
                except (CheckFailed, OSError, subprocess.TimeoutExpired) as exc:
                    print(f"twohop: round {round_no + 1} {stack.name} failed: {exc}")
                    tail = (Path(folder) / f"{stack.name}.log").read_text(errors="replace")
                    print(tail[-2000:])
                    return 1
    print(
        f"two-hop add(1, 2): {args.rounds} rounds x {args.duration} s, {args.connections}"
        f" connections; gateway on CPU {GATEWAY_CPU}, backend and wrk on CPU {BACKEND_CPU}"
    )
    print("| stack | gateway calls/s | p50 ms | p99 ms | gateway CPU ms/call "
          "| backend CPU ms/call | client ~ CPU ms/call |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, rows in runs.items():
        cells = [statistics.median(row[c] for row in rows) for c in COLUMNS]
        print(f"| {name} | {cells[0]:,.0f} | " + " | ".join(f"{v:.3f}" for v in cells[1:]) + " |")
    ours, theirs = runs[OURS], runs[AIOHTTP_RPC]
    for column in ("calls_per_s", "p99_ms", "client_cpu_ms"):
        ratios = [a[column] / b[column] for a, b in zip(ours, theirs, strict=True) if b[column]]
        per_round = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"ours / aiohttp-rpc {column}: median {statistics.median(ratios):.2f} ({per_round})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
