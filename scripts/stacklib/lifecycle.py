"""``up`` and ``down``: start the stack, stay attached or not, and always leave nothing behind.

Whatever ends an ``up`` early (a failing service, Ctrl-C, SIGTERM, an unexpected exception), the
services it started are stopped before it exits. An orchestrator killed outright cannot do that,
so every ``up`` and ``down`` first stops whatever the state file says is still there.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from . import logs, procs, rendered
from . import state as st
from .context import SCRIPT, Context, started
from .errors import StackError
from .local import Plan, make_plan
from .model import Compose
from .reload import Reloader
from .views import docker_rows, local_rows

HEADERS = ("SERVICE", "URL", "STATE", "READINESS")
# What ``compose watch`` prints once its file watcher is set up (Compose v2.22 and later).
WATCH_ENABLED = "watch enabled"
WATCH_START_TIMEOUT = 60.0


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Ignore Ctrl-C while stopping: the stop is bounded, and half a stop would leak."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def teardown(ctx: Context, recorded: st.State) -> None:
    """Stop everything ``recorded`` lists and forget it."""
    with uninterrupted():
        if recorded.backend == "docker":
            report = ctx.docker.down(recorded)
        else:
            report = ctx.local.down(recorded)
        for line in report:
            ctx.ui.say(f"  {line}")
        st.clear(ctx.paths, recorded)
        if recorded.backend == "docker" and recorded.project:
            left = ctx.docker.leftovers(recorded.project)
            if left:
                listed = "; ".join(f"{kind}: {' '.join(ids)}" for kind, ids in left.items())
                raise StackError(f"docker resources of {recorded.project} remain ({listed})")


def stop_previous(ctx: Context, replace: bool) -> None:
    """Before a new ``up``: refuse while a stack runs (unless ``replace``); a stack whose
    attached ``up`` is gone, or whose services all exited, is cleaned up first."""
    previous = st.load(ctx.paths) or ctx.adopted()
    if previous is None:
        return
    owner = previous.owner_pid
    if owner is not None and owner != os.getpid() and procs.is_running(owner, previous.owner_start):
        raise StackError(
            f"the stack is already up and attached to `stack.py up` (pid {owner}); stop it there "
            f"with Ctrl-C or run `{SCRIPT} down`"
        )
    alive = previous.backend == "docker" or bool(ctx.local.running(previous))
    if previous.adopted and not replace:
        raise StackError(
            f"the Compose project {previous.project} is already running (started by docker "
            f"compose); `{SCRIPT} down` stops it, or `up --replace` replaces it"
        )
    if owner is None and alive and not replace:
        raise StackError(
            f"a {previous.backend} stack is already running (started {started(previous)}); "
            f"`{SCRIPT} down` stops it, or `up --replace` replaces it"
        )
    if owner is not None:
        how = "left behind by an orchestrator that is gone"
    elif alive:
        how = "running in the background (--replace)"
    else:
        how = "whose services have all exited"
    ctx.ui.say(f"stopping the {previous.backend} stack {how} (started {started(previous)})")
    teardown(ctx, previous)


def parse_pins(values: list[str]) -> dict[str, int]:
    """``--port NAME=PORT`` options."""
    pins = {}
    for value in values:
        name, _, number = value.partition("=")
        if not name or not number.isdigit() or not 0 < int(number) < 65536:
            raise StackError(
                f"--port wants NAME=PORT with a port from 1 to 65535, got {value!r}", status=2
            )
        pins[name] = int(number)
    return pins


def up(ctx: Context, args: argparse.Namespace) -> int:
    """Start the stack; print its table; then return (-d) or follow its logs until Ctrl-C."""
    compose = ctx.compose()  # a malformed file stops everything before anything starts
    pins = parse_pins(args.port)
    if args.watch and not args.docker:
        raise StackError(
            "--watch is for --docker: the local backend reloads changed services by itself",
            status=2,
        )
    if args.watch and args.detach:
        raise StackError("--watch follows the stack: leave out -d", status=2)
    if args.docker and pins:
        raise StackError(
            "--port is for the local backend; Compose publishes ports itself", status=2
        )
    recorded = st.State(
        backend="docker" if args.docker else "local",
        compose_file=str(ctx.paths.compose_file),
        owner_pid=None if args.detach else os.getpid(),
        owner_start=None if args.detach else procs.start_time(os.getpid()),
        profiles=list(args.profile),
        reload=not args.detach and not args.docker and not args.no_reload,
    )
    # Checks that need nothing started come first, so a refusal leaves nothing to clean.
    plan = None
    if args.docker:
        ctx.docker.check_engine()
    else:
        plan = make_plan(compose, recorded.profiles)
        refused = [
            problem
            for service in plan.services
            for problem in rendered.local_refusals(
                ctx.paths.repo.resolve(), service.name, ctx.rendering["services"][service.name]
            )
        ]
        if refused:
            more = f" (and {len(refused) - 1} more)" if len(refused) > 1 else ""
            raise StackError(refused[0] + more, details=refused[1:], status=2)
        if not plan.services:
            shown = ctx.paths.shown(ctx.paths.compose_file)
            raise StackError(f"no service of {shown} runs the template image")
    with st.locked(ctx.paths):
        stop_previous(ctx, args.replace)
        try:
            start(
                ctx, recorded, compose, plan=plan, pins=pins, limit=args.timeout, watch=args.watch
            )
        except BaseException:
            ctx.ui.say("stopping what was started")
            teardown(ctx, recorded)
            raise
    show(ctx, recorded, compose)
    if args.detach:
        ctx.ui.say(f"running in the background; `{SCRIPT} down` stops it")
        return 0
    return attach(ctx, recorded)


def start(
    ctx: Context,
    recorded: st.State,
    compose: Compose,
    *,
    plan: Plan | None,
    pins: dict[str, int],
    limit: float | None,
    watch: bool = False,
) -> None:
    if plan is None:
        ctx.docker.prepare(recorded, compose)
        if watch:
            ctx.docker.develop(recorded, compose)
        st.save(ctx.paths, recorded)  # before Compose makes anything: a crash is recoverable
        ctx.docker.up(recorded, compose, limit)
        return
    for name, reason in plan.skipped.items():
        ctx.ui.say(f"skipping {name}: {reason}")
    st.save(ctx.paths, recorded)
    ctx.local.up(recorded, plan, pins, limit)


def show(ctx: Context, recorded: st.State, compose: Compose) -> None:
    rows = (
        docker_rows(ctx, recorded, compose)
        if recorded.backend == "docker"
        else local_rows(ctx, recorded)
    )
    ctx.ui.table(HEADERS, [row[:4] for row in rows])


def attach(ctx: Context, recorded: st.State) -> int:
    """Follow the logs until Ctrl-C (then stop the stack), a `down` elsewhere, or every exit."""
    status = 0
    try:
        # Said inside the try: a Ctrl-C sent the moment this line appears must stop the
        # stack like any later one (test_ctrl_c_on_an_attached_up_removes_the_project).
        ctx.ui.say("following the logs; Ctrl-C stops the stack")
        if recorded.backend == "docker":
            follow_docker(ctx, recorded)
        else:
            follow_local(ctx, recorded)
        # A `down` elsewhere holds the lock while it stops the services and forgets the stack:
        # waiting for it tells its stop from the services' own exit.
        with st.locked(ctx.paths):
            stopped_elsewhere = not st.same_run(ctx.paths, recorded)
        if stopped_elsewhere:
            ctx.ui.say(f"the stack was stopped by `{SCRIPT} down`")
            return 0
        ctx.ui.say("every service has exited")
        status = 1
    except KeyboardInterrupt:
        ctx.ui.say("stopping the stack (Ctrl-C)")
    with st.locked(ctx.paths):
        if st.same_run(ctx.paths, recorded):
            teardown(ctx, recorded)
    ctx.ui.say("stopped; nothing is left running")
    return status


def follow_local(ctx: Context, recorded: st.State) -> None:
    """Print the services' logs while any runs, reloading each whose code changes."""
    files = {name: ctx.paths.log(name) for name in recorded.services}
    reloader = Reloader(ctx.local, recorded, ctx.ui) if recorded.reload else None

    def keep_going() -> bool:
        if reloader is not None and reloader.busy.locked():
            return True  # a service is between its old process and its new one
        try:
            current = st.load(ctx.paths)
        except StackError:
            return False
        if current is None or current.started_at != recorded.started_at:
            return False
        # From the file: a reload or an `attach` elsewhere may have changed the processes.
        return bool(ctx.local.running(current))

    if reloader is not None:
        reloader.start()
        ctx.ui.say("reloading services when their code changes")
    try:
        logs.follow(files, ctx.ui.print, keep_going, time.sleep)
    finally:
        if reloader is not None:
            reloader.stop()


def follow_docker(ctx: Context, recorded: st.State) -> None:
    """``compose logs --follow``: it ends by itself when the project's containers stop. With
    ``--watch``, ``compose watch`` runs beside it and prints what it syncs; a container it
    restarts ends ``logs --follow`` too, which is then started again while any container runs."""
    env = ctx.docker.env(recorded)
    follow = ctx.docker.argv(recorded, "logs", "--follow", "--no-color", "--tail", "0")
    watcher = None
    if recorded.overrides:
        watcher = start_watch(ctx, recorded, env)
    logs = subprocess.Popen(follow, env=env, stdin=subprocess.DEVNULL)
    try:
        while True:
            logs.wait()
            if watcher is None or not _any_container_up(ctx, recorded):
                return
            since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
            again = ctx.docker.argv(recorded, "logs", "--follow", "--no-color", "--since", since)
            logs = subprocess.Popen(again, env=env, stdin=subprocess.DEVNULL)
    finally:
        for process in (logs, watcher):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=10)


def start_watch(ctx: Context, recorded: st.State, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start ``compose watch`` and return once it watches: a save made before Compose has set
    up its file watcher is never synced, so "each save is synced" is said only after Compose
    prints "Watch enabled". Its output is relayed line by line from a thread."""
    argv = ctx.docker.argv(recorded, "watch", "--no-up")
    watcher = subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    settled = threading.Event()  # "Watch enabled" seen, or the watcher's output ended
    enabled: list[bool] = []

    def relay() -> None:
        assert watcher.stdout is not None
        for line in watcher.stdout:
            if line.strip().lower().startswith(WATCH_ENABLED):
                enabled.append(True)
                settled.set()
            else:
                ctx.ui.detail(line.rstrip())
        watcher.stdout.close()
        settled.set()

    threading.Thread(target=relay, name="compose-watch", daemon=True).start()
    if not settled.wait(WATCH_START_TIMEOUT):
        watcher.terminate()
        watcher.wait(timeout=10)
        raise StackError(f"compose watch did not start within {WATCH_START_TIMEOUT:.0f} s")
    if not enabled:  # its output ended: it is exiting, or has
        raise StackError(
            f"compose watch ended (exit status {watcher.wait(timeout=10)}) before it watched "
            "anything; its output is above"
        )
    ctx.ui.say("compose watch: each save is synced into its containers, which restart")
    return watcher


def _any_container_up(ctx: Context, recorded: st.State) -> bool:
    """Whether a container of the project runs or is being restarted (bounded wait for one that
    compose watch is restarting)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        states = {str(row.get("State")) for row in ctx.docker.ps(recorded)}
        if "running" in states:
            return True
        if not states & {"restarting", "created", "exited"}:
            return False
        time.sleep(0.5)
    return False


def down(ctx: Context, _args: argparse.Namespace) -> int:
    """Stop whatever the state file lists; nothing to stop is not an error."""
    with st.locked(ctx.paths):
        recorded = st.load(ctx.paths) or ctx.adopted()
        if recorded is None:
            ctx.ui.say("no stack is running")
            return 0
        ctx.ui.say(f"stopping the {recorded.backend} stack (started {started(recorded)})")
        teardown(ctx, recorded)
    ctx.ui.say("stopped; nothing is left running")
    return 0
