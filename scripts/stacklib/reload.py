"""Reload for the local backend: an attached ``up`` restarts a service when its code changes.

watchfiles watches ``service_template/`` and the folders of the modules the services serve. A
change to a service's own module (``services/hello.py``) restarts that service; any other Python
file changed there (the runtime, a shared helper) restarts every service. The new process starts
in standby (importcheck.py): it imports the new code while the old process still serves. If the
import fails, the standby process exits, the old one serves on, and the error is printed with
its file and line. Otherwise the old process group is stopped (SIGTERM, the service drains) and
the new one is told to go: it listens on the same port with the same environment, and
``/readyz`` is awaited.
"""

from __future__ import annotations

import dataclasses
import os
import select
import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from . import procs
from . import state as st
from .errors import StackError
from .local import LocalBackend
from .ui import UI, seconds, tail

CHECK_SCRIPT = Path(__file__).resolve().parent / "importcheck.py"
DEBOUNCE_MS = 50  # a save is often several writes; gather them, but answer within a second
READY_LIMIT = 60.0
WAKE_MS = 100


def roots(repo: Path, services: Iterable[st.Process]) -> list[Path]:
    """The folders to watch: the runtime and each served module's folder, without repeats."""
    found = {(repo / "service_template").resolve()}
    found |= {Path(record.module).parent for record in services if record.module}
    ordered = sorted(found)
    # A folder inside another watched folder is watched already.
    return [p for p in ordered if not any(p != q and p.is_relative_to(q) for q in ordered)]


def affected(changed: Iterable[Path], services: dict[str, st.Process]) -> list[str]:
    """The services to restart for these changed files (see the module docstring)."""
    names: set[str] = set()
    for path in changed:
        if path.suffix != ".py":
            continue
        owners = [name for name, record in services.items() if record.module == str(path)]
        names |= set(owners) if owners else set(services)
    return [name for name in services if name in names]  # in start order


def read_answer(descriptor: int, limit: float) -> str | None:
    """What the standby process wrote before it closed its end (or died); None after
    ``limit`` seconds without the end of it."""
    chunks: list[bytes] = []
    deadline = time.monotonic() + limit
    with os.fdopen(descriptor, "rb", buffering=0) as answers:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([answers], [], [], left)[0]:
                return None
            chunk = answers.read(65536)
            if not chunk:
                return b"".join(chunks).decode("utf-8", "replace")
            chunks.append(chunk)


def serve_target(argv: list[str]) -> str | None:
    """The ``module:Class`` of a ``... serve TARGET ...`` command line."""
    return next((argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "serve"), None)


class Reloader:
    """Watches the source while ``up`` stays attached; ``stop()`` ends it."""

    def __init__(self, backend: LocalBackend, recorded: st.State, ui: UI) -> None:
        self.backend = backend
        self.paths = backend.paths
        self.recorded = recorded
        self.ui = ui
        self.stopping = threading.Event()
        self.watching = threading.Event()
        self.busy = threading.Lock()  # held while a service is between two processes
        self.phases = ""  # how long the last restart's steps took
        self.thread = threading.Thread(target=self._run, name="reloader", daemon=True)

    def start(self, limit: float = 30.0) -> None:
        """Start watching; returns once changes are seen (a save before that would be missed)."""
        self.thread.start()
        self.watching.wait(limit)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=10)

    def _run(self) -> None:
        import watchfiles  # only an attached local `up` needs it

        watched = roots(self.paths.repo, self.recorded.services.values())
        for changes in watchfiles.watch(
            *watched,
            stop_event=self.stopping,
            debounce=DEBOUNCE_MS,
            step=20,
            # An empty batch every WAKE_MS tells that the watch is in place.
            rust_timeout=WAKE_MS,
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            self.watching.set()
            if not changes:
                continue
            saved = time.monotonic()
            changed = {Path(path).resolve() for _, path in changes}
            try:
                self.reload(changed, saved)
            except StackError as exc:
                self.ui.error(str(exc), exc.details)

    def reload(self, changed: set[Path], saved: float) -> None:
        """Restart the services these changes affect; each keeps its port."""
        with self.busy, st.locked(self.paths):
            current = st.load(self.paths)
            if current is None or current.started_at != self.recorded.started_at:
                return  # stopped meanwhile by a `down`
            names = affected(changed, current.services)
            if not names:
                return
            shown = ", ".join(sorted(self.paths.shown(p) for p in changed))
            self.ui.say(f"{shown} changed: reloading {', '.join(names)}")
            for name in names:
                record = current.services[name]
                if record.attached:
                    self.ui.say(f"{name} runs under `stack.py attach`: restart it there")
                    continue
                try:
                    restarted = self.restart(name, record)
                finally:
                    # Even a new process that failed to start is recorded: `status` shows it.
                    st.save(self.paths, current)
                if restarted:
                    took = time.monotonic() - saved
                    self.ui.say(
                        f"{name} reloaded on port {record.port} ({seconds(took)} after the save: "
                        f"{self.phases})"
                    )
            self.recorded.services = current.services

    def standby(self, record: st.Process) -> tuple[subprocess.Popen[bytes], int, list[str]]:
        """Start the new process in standby (importcheck.py): it imports the new code while the
        old process serves. Returns it, the descriptor that tells it to go, and the error lines
        (empty when the code imports)."""
        go_read, go_write = os.pipe()
        answer_read, answer_write = os.pipe()
        argv = [
            record.argv[0],
            str(CHECK_SCRIPT),
            "--standby",
            str(go_read),
            str(answer_write),
            "--",
            *record.argv[3:],  # after `python -m service_template`
        ]
        try:
            child = self.backend.spawn(record, argv=argv, pass_fds=(go_read, answer_write))
        finally:
            os.close(go_read)
            os.close(answer_write)
        report = read_answer(answer_read, READY_LIMIT)
        if report is None:  # an import that hangs: give up on it, the old process serves on
            procs.stop_group(record.pgid, 1.0, child)
            report = f"importing the new code took longer than {READY_LIMIT:.0f} s\n"
        if report == "ready\n":
            return child, go_write, []
        os.close(go_write)
        status = child.wait(timeout=30)
        return child, -1, report.splitlines() or [f"the new process exited with {status}"]

    def restart(self, name: str, record: st.Process) -> bool:
        """Replace the process if its new code imports; False (the old one serves on) if not."""
        if serve_target(record.argv) is None or record.argv[1:3] != ["-m", "service_template"]:
            raise StackError(f"{name} does not run `serve TARGET`: restart the stack to reload it")
        old = dataclasses.replace(record)
        started = time.monotonic()
        child, go, problem = self.standby(record)
        imported = time.monotonic()
        if problem:
            record.pid, record.pgid, record.start = old.pid, old.pgid, old.start
            self.ui.error(
                f"{name} not reloaded, the running process serves on: {problem[0]}",
                tail("\n".join(problem[1:]), 12),
            )
            return False
        try:
            previous = self.backend.children.get(name)
            how = (
                procs.stop_group(old.pgid, old.grace, previous)
                if procs.is_ours(old.pid, old.pgid, old.start)
                else "not running"
            )
            if how == "stuck":
                raise StackError(f"{name} (process group {old.pgid}) survived SIGKILL")
            os.write(go, b"go\n")
        finally:
            os.close(go)
        stopped = time.monotonic()
        self.backend.children[name] = child
        self.backend.wait_ready(name, record, child, READY_LIMIT)
        self.phases = (
            f"import {seconds(imported - started)}, stop {seconds(stopped - imported)}, "
            f"ready {seconds(time.monotonic() - stopped)}"
        )
        return True
