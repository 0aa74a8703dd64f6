"""The load: wrk pinned to the load CPUs, one thread per CPU, and the summary its Lua prints."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
from typing import Any

from checks import CheckFailed
from peers import Peer, Workload

# wrk's own deadline plus this margin bounds every load run even if wrk hangs.
WRK_MARGIN_S = 30


def run_wrk(
    port: int, workload: Workload, seconds: int, args: argparse.Namespace, peer: Peer
) -> tuple[dict[str, Any], str]:
    """Run wrk on the load CPUs; return its summary (from the Lua done hook) and its output."""
    command = [
        "taskset",
        "-c",
        args.load_cpus,
        "wrk",
        f"-t{len(args.load_set)}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(workload.script),
        f"http://127.0.0.1:{port}/api",
    ]
    env = dict(os.environ)
    env["BENCH_EXTRA_HEADERS"] = "\n".join(f"{k}: {v}" for k, v in peer.headers.items())
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        timeout=seconds + WRK_MARGIN_S,
        check=False,
    )
    output = done.stdout + done.stderr
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line.removeprefix("BENCH_RESULT ")), output
    raise CheckFailed(f"wrk exited {done.returncode} without a summary: {output[-500:]}")
