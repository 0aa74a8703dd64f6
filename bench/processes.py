"""The benchmarked processes: start one pinned to CPUs, read its tree's CPU time and memory
from /proc, stop it. Standard library only; Linux only (``/proc``, ``taskset``)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

from peers import REPO_ROOT

STOP_TIMEOUT_S = 15.0


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_tree(pid: int) -> list[int]:
    """A process and its descendants (pre-fork workers, nginx's worker processes), from
    /proc/<pid>/task/*/children: every thread's, since a child belongs to the thread that
    forked it."""
    found: list[int] = []
    pending = [pid]
    while pending and len(found) < 1000:
        current = pending.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                pending.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:  # the thread or the process ended meanwhile
                continue
    return found


def tree_rss_mib(pid: int) -> float:
    """Resident memory of a process and its descendants, from /proc/<pid>/status VmRSS."""
    total_kib = 0
    for current in process_tree(pid):
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants, from /proc/<pid>/stat."""
    ticks = 0
    for current in process_tree(pid):
        try:
            # Fields after the command name (which may hold spaces): utime is 14th, stime 15th.
            fields = Path(f"/proc/{current}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen[bytes]) -> int | None:
    """Stop a server with SIGTERM, then SIGKILL to its process group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the group made for this server alone
            process.wait(STOP_TIMEOUT_S)
    return process.returncode


def spawn(
    command: list[str], cpus: str, env: dict[str, str], log_path: Path
) -> subprocess.Popen[bytes]:
    """Start a server pinned to ``cpus``, its output to ``log_path``, in a group of its own."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            ["taskset", "-c", cpus, *command],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
