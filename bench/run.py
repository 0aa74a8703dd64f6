"""Benchmark our runtime against other Python JSON-RPC servers (issue 3); stdlib only.

Usage: python3 bench/run.py [--rounds 5] [--duration 10] [--connections 64] [--only peer,...]
                            [--workers N --server-cpus 0-3 --load-cpus 4-7 --backend-cpus 8]

For every round, workload and server (server order rotated each round) it starts the server
pinned to the server CPUs (CPU 0), checks every workload's reply is exact, warms up, measures
with wrk pinned to the load CPUs (CPU 1) while counting the server's CPU time, reads the
server's RSS, checks the replies again and stops the server. A two-hop workload (``twohop``)
starts the peer's server as a backend on the backend CPUs (the load CPUs by default) and its
gateway on the server CPUs, and loads the gateway. It prints one table of medians across
rounds, with ratios taken round by round, and writes every figure to bench/results/.
Exit status 1 if any run had an error or a wrong reply.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from checks import CheckFailed, check, wait_until_answering
from load import run_wrk
from peers import (
    AIOHTTP_RPC,
    BASELINE,
    BENCH_DIR,
    NGINX,
    PEERS,
    REPO_ROOT,
    VENVS_DIR,
    WORKLOADS,
    Peer,
    Workload,
)
from processes import free_port, process_tree, spawn, stop, tree_cpu_seconds, tree_rss_mib
from report import format_hops, format_table, format_targets, summarise

RESULTS_DIR = BENCH_DIR / "results"
LOG_DIR = RESULTS_DIR / "logs"
STARTUP_TIMEOUT_S = 30.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10, help="seconds measured per run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of load before measuring")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--only",
        default="",
        help="comma-separated peers, default: all of " + ",".join(peer.name for peer in PEERS),
    )
    parser.add_argument(
        "--workloads",
        default="",
        help="comma-separated, default: all of "
        + ",".join(workload.name for workload in WORKLOADS),
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="server processes for the peers that have them (ours: serve --workers N; nginx: "
        "worker_processes N); the others stay single-process. Give them N server CPUs.",
    )
    parser.add_argument("--server-cpus", default="0", help="taskset list for the server (0)")
    parser.add_argument(
        "--load-cpus", default="1", help="taskset list for wrk (1); one wrk thread per CPU"
    )
    parser.add_argument(
        "--backend-cpus",
        default="",
        help="taskset list for the two-hop workload's backend (default: the load CPUs)",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.duration < 1 or args.warmup < 0 or args.connections < 1:
        parser.error("rounds, duration and connections must be positive, warmup not negative")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    args.server_set = _cpus(parser, args.server_cpus)
    args.load_set = _cpus(parser, args.load_cpus)
    args.backend_cpus = args.backend_cpus or args.load_cpus
    args.backend_set = _cpus(parser, args.backend_cpus)
    # Overlapping sets are allowed so `--workers 2` can be tried end to end on two cores, but
    # then the server and wrk fight for a CPU: the figures only show that it runs.
    args.overlap = bool(args.server_set & args.load_set)
    args.peers = _pick(parser, args.only, PEERS, "peer")
    args.workloads = _pick(parser, args.workloads, WORKLOADS, "workload")
    return args


def _cpus(parser: argparse.ArgumentParser, spec: str) -> set[int]:
    """CPUs of a taskset-style list ("0", "0-3", "0,2")."""
    found: set[int] = set()
    try:
        for part in spec.split(","):
            low, _, high = part.partition("-")
            found.update(range(int(low), int(high or low) + 1))
    except ValueError:
        parser.error(f"not a CPU list: {spec!r}")
    return found


def _pick(
    parser: argparse.ArgumentParser, names: str, known: tuple[Any, ...], what: str
) -> list[Any]:
    if not names:
        return list(known)
    by_name = {item.name: item for item in known}
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        parser.error(f"unknown {what}(s) {', '.join(unknown)}; known: {', '.join(by_name)}")
    return [item for item in known if item.name in wanted]


def preflight(peers: list[Peer], args: argparse.Namespace) -> None:
    """Install what is missing and refuse to run where the figures would mean nothing."""
    if not args.server_set | args.load_set | args.backend_set <= os.sched_getaffinity(0):
        sys.exit(
            f"bench: needs CPUs {args.server_cpus} (server), {args.load_cpus} (load) and "
            f"{args.backend_cpus} (two-hop backend)"
        )
    if args.overlap:
        print(
            "bench: WARNING: --server-cpus and --load-cpus overlap; the server and wrk share a "
            "CPU, so the figures only show that the run works, not what the server carries",
            file=sys.stderr,
        )
    for workload in WORKLOADS:
        # The Lua script and the Python checks must send the same bytes.
        if workload.body.decode() not in workload.script.read_text():
            sys.exit(f"bench: {workload.script} does not send the body the checks expect")
    needs = dict.fromkeys(
        NGINX if p.venv is None else (p.venv or p.name) for p in peers
    )  # venvs (and nginx) in order, once each
    subprocess.run(["bash", str(BENCH_DIR / "setup.sh"), *needs], check=True)


def server_env(peer: Peer) -> dict[str, str]:
    """The environment a server starts with: ours, minus anything that would change a peer."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SERVICE_") and key not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(peer.env)
    return env


def measure(
    peer: Peer, workload: Workload, round_no: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Serve one peer fresh, check it, load it and return the record of this run.

    A two-hop workload starts the peer's server as the backend first (on the backend CPUs),
    then its gateway (on the server CPUs), and loads the gateway; the gateway's CPU per call is
    the figure, the backend's is recorded beside it."""
    record: dict[str, Any] = {
        "round": round_no,
        "peer": peer.name,
        "workload": workload.name,
        "ok": False,
        "failure": None,
    }
    port = free_port()
    log_path = LOG_DIR / f"r{round_no}.{peer.name}.{workload.name}.log"
    record["server_log"] = str(log_path.relative_to(BENCH_DIR))
    two_hop = workload.hops > 1
    # The replies checked before and after: every workload, or through a gateway the one call.
    checked = [workload] if two_hop else list(WORKLOADS)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        if two_hop:
            backend_port = free_port()
            backend_url = f"http://127.0.0.1:{backend_port}/api"
            backend_log = log_path.with_suffix(".backend.log")
            record["backend_log"] = str(backend_log.relative_to(BENCH_DIR))
            backend = spawn(
                peer.command(backend_port, args.workers),
                args.backend_cpus,
                server_env(peer),
                backend_log,
            )
            processes.append(backend)
            wait_until_answering(backend_port, peer, workload, backend, STARTUP_TIMEOUT_S)
            command = peer.gateway_command(port, backend_url, args.workers)
            env = {**server_env(peer), **peer.gateway_environment(backend_url)}
        else:
            command, env = peer.command(port, args.workers), server_env(peer)
        process = spawn(command, args.server_cpus, env, log_path)
        processes.append(process)
        record["startup_s"] = round(
            wait_until_answering(port, peer, checked[0], process, STARTUP_TIMEOUT_S), 3
        )
        for each in checked:
            check(port, peer, each)
        warm: dict[str, Any] = {"errors": {}}
        if args.warmup:
            warm, _ = run_wrk(port, workload, args.warmup, args, peer)
        cpu_before = [tree_cpu_seconds(each.pid) for each in processes]
        result, output = run_wrk(port, workload, args.duration, args, peer)
        cpu_seconds = [
            tree_cpu_seconds(each.pid) - before
            for each, before in zip(processes, cpu_before, strict=True)
        ]
        record["rss_mib"] = round(tree_rss_mib(process.pid), 1)
        record["server_processes"] = len(process_tree(process.pid))
        record["wrk_output"] = output
        seconds = result["duration_us"] / 1e6
        record["requests"] = result["requests"]
        record["requests_per_s"] = result["requests"] / seconds
        record["calls_per_s"] = record["requests_per_s"] * workload.calls
        # Server CPU (all its processes) over the measured run, per call wrk completed.
        calls = result["requests"] * workload.calls
        per_call = [cpu * 1e6 / calls if calls else None for cpu in cpu_seconds]
        record["cpu_us_per_call"] = per_call[-1]
        if two_hop:
            # Gateway and backend run the same runtime and method, so what the gateway spends
            # beyond the backend is, roughly, its client's cost per downstream call.
            record["backend_cpu_us_per_call"] = per_call[0]
            record["client_cpu_us_per_call"] = (
                None if per_call[0] is None or per_call[1] is None else per_call[1] - per_call[0]
            )
            record["backend_rss_mib"] = round(tree_rss_mib(processes[0].pid), 1)
        record["latency_ms"] = {k: v / 1000 for k, v in result["latency_us"].items()}
        record["errors"] = result["errors"]
        record["warmup_errors"] = warm["errors"]
        record["error_count"] = sum(result["errors"].values()) + sum(warm["errors"].values())
        for each in processes:
            if each.poll() is not None:
                raise CheckFailed(f"{peer.name}: a server exited with {each.returncode} under load")
        for each in checked:
            check(port, peer, each)
        if record["error_count"]:
            record["failure"] = f"{record['error_count']} errors: {result['errors']}"
        else:
            record["ok"] = True
    except (CheckFailed, OSError, ValueError, subprocess.TimeoutExpired) as exc:
        record["failure"] = f"{type(exc).__name__}: {exc}"
    finally:
        # The gateway first, so it never sees its backend gone while it still has calls.
        exits = [stop(each) for each in reversed(processes)]
        record["exit_code"] = exits[0] if exits else None
    if record["ok"]:
        # Per-call logs reach ~80 MB per batch run; only a failed run's log is worth keeping.
        for key in ("server_log", "backend_log"):
            if record.get(key):
                (BENCH_DIR / record[key]).unlink(missing_ok=True)
                record[key] = None
    return record


def _tail(path: Path, count: int) -> list[str]:
    """The last lines of a server log, to show why a server failed."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, path.stat().st_size - 4096))
            return log.read().decode(errors="replace").splitlines()[-count:]
    except OSError:
        return []


def environment(peers: list[Peer], args: argparse.Namespace) -> dict[str, Any]:
    """What the figures were measured on, for the results file."""
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    head = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    packages = {}
    for peer in peers:
        freeze = VENVS_DIR / (peer.venv or peer.name) / ".bench-freeze.txt"
        packages[peer.name] = freeze.read_text().split("\n") if freeze.exists() else []
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "wrk": (wrk.stdout + wrk.stderr).splitlines()[0] if wrk.stdout + wrk.stderr else "",
        "git_head": head.stdout.strip(),
        "packages": packages,
        "server_cpus": args.server_cpus,
        "load_cpus": args.load_cpus,
        "workers": args.workers,
    }


def runs_of(workload: Workload, peers: list[Peer]) -> list[Peer]:
    """The peers that run a workload: all, or for a two-hop one those with a gateway."""
    return [peer for peer in peers if workload.hops == 1 or peer.gateway_argv]


def main(argv: list[str]) -> int:
    """Run every round and print the table; return the exit status."""
    args = parse_args(argv)
    preflight(args.peers, args)
    # Server logs of the previous run go: a gemstone log alone grows by megabytes per run.
    shutil.rmtree(LOG_DIR, ignore_errors=True)
    LOG_DIR.mkdir(parents=True)
    started = datetime.datetime.now(datetime.UTC)
    runs: list[dict[str, Any]] = []
    total = args.rounds * sum(len(runs_of(workload, args.peers)) for workload in args.workloads)
    for round_no in range(1, args.rounds + 1):
        shift = (round_no - 1) % len(args.peers)
        order = args.peers[shift:] + args.peers[:shift]
        for workload in args.workloads:
            for peer in runs_of(workload, order):
                began = time.monotonic()
                record = measure(peer, workload, round_no, args)
                runs.append(record)
                state = "ok" if record["ok"] else f"FAILED: {record['failure']}"
                figure = f"{record['calls_per_s']:9.0f} calls/s" if "calls_per_s" in record else ""
                print(
                    f"[{len(runs)}/{total}] round {round_no} {workload.name:<12} "
                    f"{peer.name:<16} {figure} ({time.monotonic() - began:.0f} s) {state}",
                    flush=True,
                )

    summary = summarise(
        runs,
        [p.name for p in args.peers],
        [w.name for w in args.workloads],
        {w.name: w.calls for w in args.workloads},
        {p.name: p.reference for p in args.peers if p.reference},
    )
    print()
    print(format_table(summary, args))
    hops = format_hops(summary)
    if hops:
        print()
        print(hops)
    for peer in args.peers:
        for note in peer.deviations:
            print(f"  note: {peer.name}: {note}")
    targets = format_targets(summary)
    if targets:
        print(targets)

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"bench-{started:%Y%m%d-%H%M%S}.json"
    path.write_text(
        json.dumps(
            {
                "started": started.isoformat(),
                "argv": argv,
                "settings": {
                    "rounds": args.rounds,
                    "duration_s": args.duration,
                    "warmup_s": args.warmup,
                    "connections": args.connections,
                    "workers": args.workers,
                    "server_cpus": args.server_cpus,
                    "load_cpus": args.load_cpus,
                    "backend_cpus": args.backend_cpus,
                    "cpus_overlap": args.overlap,
                },
                "references": {
                    "aiohttp_rpc": AIOHTTP_RPC,
                    "baseline": BASELINE,
                    "ceiling": NGINX,
                    "x_ref": {p.name: p.reference for p in args.peers if p.reference},
                },
                "environment": environment(args.peers, args),
                "summary": summary,
                "runs": runs,
            },
            indent=2,
        )
    )
    print(f"\nresults: {path.relative_to(REPO_ROOT)}")

    failures = [run for run in runs if not run["ok"]]
    for run in failures:
        print(
            f"FAILED round {run['round']} {run['peer']}/{run['workload']}: {run['failure']} "
            f"(server log: bench/{run['server_log']})",
            file=sys.stderr,
        )
        for key in ("backend_log", "server_log"):
            for line in _tail(BENCH_DIR / run[key], 3) if run.get(key) else []:
                print(f"    | {line}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
