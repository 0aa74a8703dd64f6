"""``attach SERVICE``: run one service of a running local stack in this terminal.

Its background process is stopped and the same command starts here, with the same environment
and on the same port, attached to the terminal: ``breakpoint()`` in a method stops in pdb here,
and its log lines print here (not to its log file). The rest of the stack keeps running and
keeps calling it at the same address. When it ends (Ctrl-C, or it exits), it is started in the
background again. A ``down`` meanwhile stops it too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
from types import FrameType

from . import procs
from . import state as st
from .context import SCRIPT, Context, unknown_service
from .errors import StackError
from .local import DEFAULT_READY_LIMIT, inherited
from .ui import seconds


def command(ctx: Context, args: argparse.Namespace) -> int:
    """Run ``args.service`` in the foreground, then put it back in the background."""
    recorded = ctx.running_state()
    if recorded.backend != "local":
        raise StackError(
            f"attach runs a local service in the foreground; this stack runs on Docker (use "
            f"`{SCRIPT} logs -f {args.service}`, or start it with `{SCRIPT} up` to debug it)",
            status=2,
        )
    name = args.service
    with st.locked(ctx.paths):
        current = ctx.running_state()
        if name not in current.services:
            raise unknown_service(name, list(current.services))
        record = current.services[name]
        if record.attached and procs.is_running(record.pid, record.start):
            raise StackError(f"{name} is already attached elsewhere (pid {record.pid})")
        if not record.argv:
            raise StackError(f"the stack was started by an older stack.py; run `{SCRIPT} up` again")
        if procs.is_ours(record.pid, record.pgid, record.start):
            procs.stop_group(record.pgid, record.grace)
        child = subprocess.Popen(
            record.argv, cwd=ctx.paths.repo, env={**inherited(ctx.environ), **record.env}
        )
        record.pid, record.pgid = child.pid, os.getpgid(child.pid)
        record.start, record.attached = procs.start_time(child.pid), True
        st.save(ctx.paths, current)
    try:
        ctx.local.wait_ready(name, record, child, DEFAULT_READY_LIMIT)
    except StackError:
        wait_for(child)
        background_again(ctx, current, name)
        raise
    ctx.ui.say(
        f"{name} runs here in the foreground at {record.url}: breakpoint() stops in this "
        "terminal; Ctrl-C ends it and puts it back in the background (once a breakpoint was "
        "hit, pdb takes the Ctrl-C: then `c` at its prompt)"
    )
    wait_for(child)
    return background_again(ctx, current, name)


def wait_for(child: subprocess.Popen[bytes]) -> None:
    """Wait for the foreground service. Ctrl-C reaches it too, but pdb (once a breakpoint was
    hit) takes SIGINT for itself, so Ctrl-C here also sends the service SIGTERM: it drains and
    exits (after a `c` if it sits at a pdb prompt). A SIGTERM to this process (a `down`
    stopping this process group) ends the wait once the service is gone."""

    def stop_service(_signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGINT, stop_service)
    try:
        while True:
            try:
                child.wait()
                return
            except KeyboardInterrupt:  # SIGTERM, SIGHUP: the service received it as well
                continue
    finally:
        signal.signal(signal.SIGINT, previous)


def background_again(ctx: Context, started: st.State, name: str) -> int:
    with st.locked(ctx.paths):
        current = st.load(ctx.paths)
        if current is None or current.started_at != started.started_at:
            ctx.ui.say(f"the stack was stopped meanwhile; {name} stays stopped")
            return 0
        record = current.services[name]
        child = ctx.local.spawn(record)
        st.save(ctx.paths, current)
        took = ctx.local.wait_ready(name, record, child, DEFAULT_READY_LIMIT)
    ctx.ui.say(f"{name} is back in the background at {record.url} ({seconds(took)})")
    return 0
