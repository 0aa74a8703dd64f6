"""What typed params cost a server end to end: the same methods, annotated and not, under wrk.

Usage: flock /tmp/bench.lock .venv/bin/python bench/typed_cost.py [--rounds 3] [--duration 5]

Serves ``bench/servers/typed_pair.py:Untyped`` and ``:Typed`` in turn (the order alternates
each round), pinned to CPU 0 with production defaults (a JSON log line per call), and loads each
with ``wrk -t1 -c64`` pinned to CPU 1, for two workloads: ``add(1, 2)`` with positional params
and ``place(order)`` with an order of three items by name. Prints the server's CPU per request
for each round and the median ratio typed/untyped (1.00 = no cost), and each server's resident
memory (VmRSS) after its runs, against the 256 MiB limit the Compose file and the Kubernetes
manifests give a service. Everything runs on 127.0.0.1 and stops by itself.
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
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = "bench/servers/typed_pair.py:{}"
ORDER = {
    "customer": "c-42",
    "items": [{"sku": f"sku-{i}", "qty": i, "price": 9.5} for i in range(3)],
}
WORKLOADS = {
    "add(1, 2)": {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 1},
    "place(order)": {"jsonrpc": "2.0", "method": "place", "params": {"order": ORDER}, "id": 1},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(variant: str, port: int) -> subprocess.Popen[bytes]:
    command = [
        "taskset", "-c", "0", sys.executable, "-m", "service_template", "serve",
        TARGET.format(variant), "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    server = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1):
                return server
        except OSError:
            time.sleep(0.05)  # polling the health endpoint until it answers
    server.kill()
    raise SystemExit(f"{variant} did not answer on port {port}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _wrk(port: int, script: Path, seconds: int, pid: int) -> float:
    """Server CPU microseconds per request over one wrk run."""
    before = _cpu_seconds(pid)
    done = subprocess.run(
        ["taskset", "-c", "1", "wrk", "-t1", "-c64", f"-d{seconds}s", "-s", str(script),
         f"http://127.0.0.1:{port}/api"],
        capture_output=True, text=True, timeout=seconds + 30, check=True,
    )  # fmt: skip
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result = json.loads(line.removeprefix("BENCH_RESULT "))
            errors = sum(result["errors"].values())
            if errors:
                raise SystemExit(f"wrk saw {errors} errors: {result['errors']}")
            return (_cpu_seconds(pid) - before) / result["requests"] * 1e6
    raise SystemExit(f"no summary from wrk: {done.stdout[-300:]}")


def _check(port: int, body: dict[str, object]) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as reply:
        answer = json.loads(reply.read())
    if "result" not in answer:
        raise SystemExit(f"unexpected answer: {answer}")


def _rss_mib(pid: int) -> float:
    """Resident memory of process ``pid`` now, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no VmRSS for process {pid}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="measured seconds per run")
    args = parser.parse_args()
    common = REPO / "bench" / "wrk" / "common.lua"
    rates: dict[tuple[str, str], list[float]] = {}
    memory: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        scripts = {}
        for name, body in WORKLOADS.items():
            script = Path(scratch) / f"{len(scripts)}.lua"
            script.write_text(f'dofile("{common}")\nbench_request([[{json.dumps(body)}]])\n')
            scripts[name] = script
        for round_ in range(args.rounds):
            order = ["Untyped", "Typed"] if round_ % 2 == 0 else ["Typed", "Untyped"]
            for variant in order:
                port = _free_port()
                server = _serve(variant, port)
                try:
                    for name, script in scripts.items():
                        _check(port, WORKLOADS[name])
                        _wrk(port, script, 1, server.pid)  # warm-up
                        cost = _wrk(port, script, args.duration, server.pid)
                        rates.setdefault((name, variant), []).append(cost)
                        print(f"round {round_ + 1} {variant:8} {name:13} {cost:7.1f} us CPU/req")
                    memory.setdefault(variant, []).append(_rss_mib(server.pid))
                finally:
                    server.send_signal(signal.SIGTERM)
                    server.wait(30)
    print("\nserver CPU per request (us), medians; typed/untyped: median of the rounds' ratios")
    print("workload        untyped   typed  typed/untyped")
    for name in WORKLOADS:
        untyped, typed = rates[(name, "Untyped")], rates[(name, "Typed")]
        ratio = statistics.median(t / u for t, u in zip(typed, untyped, strict=True))
        print(
            f"{name:14} {statistics.median(untyped):8.1f} {statistics.median(typed):7.1f}"
            f"  {ratio:13.3f}"
        )
    print("\nserver RSS after its runs (MiB), max over rounds; the limit is 256 MiB")
    for variant in ("Untyped", "Typed"):
        print(f"{variant:14} {max(memory[variant]):8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
