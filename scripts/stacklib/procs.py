"""Process groups: start-time identities, liveness and a bounded stop (SIGTERM, then SIGKILL).

Each local service runs in its own session, so its process group holds it and every process it
forks (``--workers``); signalling the group reaches all of them. A recorded group is only
signalled while it is provably the one we started: its leader has the recorded start time, or the
leader is gone and members remain (Linux never hands out a PID that is still a group's ID, so such
members can only be ours). Zombies count as gone: some init processes never reap orphans.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

PROC = Path("/proc")
POLL = 0.05


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0], pgrp [2], start [19])."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def start_time(pid: int) -> str | None:
    """When the process started (clock ticks since boot) or None if unknown or gone."""
    fields = _stat(pid)
    return fields[19] if fields else None


def is_running(pid: int, start: str | None = None) -> bool:
    """Whether ``pid`` runs (not a zombie) and, if ``start`` is given, is that same process."""
    if PROC.is_dir():
        fields = _stat(pid)
        if fields is None or fields[0] in ("Z", "X"):
            return False
        return start is None or fields[19] == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_members(pgid: int) -> list[int]:
    """Running (non-zombie) processes in process group ``pgid``."""
    if not PROC.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        except PermissionError:
            return [pgid]
        return [pgid]
    members = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
                members.append(int(entry.name))
    return members


def is_ours(pid: int, pgid: int, start: str | None) -> bool:
    """Whether the recorded group still holds processes we started (see the module docstring)."""
    if is_running(pid):
        return start is None or is_running(pid, start)
    return bool(group_members(pgid))


def signal_group(pgid: int, signum: int) -> None:
    """Send ``signum`` to the group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


def wait_gone(pgid: int, seconds: float, child: subprocess.Popen[bytes] | None = None) -> bool:
    """Poll until the group has no running member, for at most ``seconds``; True if it has none.

    ``child`` is our own Popen of the leader, reaped here so it does not linger as a zombie.
    """
    deadline = time.monotonic() + seconds
    while True:
        if child is not None:
            child.poll()
        if not group_members(pgid):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL)


def stop_group(pgid: int, grace: float, child: subprocess.Popen[bytes] | None = None) -> str:
    """Stop a group: SIGTERM, up to ``grace`` seconds to drain, then SIGKILL.

    Returns how it ended: "stopped", "killed", or "stuck" (still there after SIGKILL).
    """
    signal_group(pgid, signal.SIGTERM)
    if wait_gone(pgid, grace, child):
        return "stopped"
    signal_group(pgid, signal.SIGKILL)
    return "killed" if wait_gone(pgid, 5.0, child) else "stuck"
