"""Reload for the local backend: an attached ``up`` restarts a service when its code changes.

watchfiles watches ``service_template/`` and the folders of the modules the services serve. A
change to a service's own module (``services/hello.py``) restarts that service; any other Python
file changed there (the runtime, a shared helper) restarts every service. Before a service is
replaced, its target is imported in a fresh interpreter (importcheck.py): if that fails, the old
process keeps serving and the error is printed with its file and line. A restart stops the old
process group (SIGTERM, the service drains) and starts the new one on the same port with the
same environment, then waits for ``/readyz``.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from . import procs
from . import state as st
from .errors import StackError
from .local import LocalBackend, inherited
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

    def check(self, record: st.Process) -> list[str]:
        """Import the service's target in a fresh interpreter; the error lines, or none."""
        target = serve_target(record.argv)
        if target is None:
            return []
        done = subprocess.run(
            [record.argv[0], str(CHECK_SCRIPT), target],
            cwd=self.paths.repo,
            env={**inherited(self.backend.environ), **record.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode == 0:
            return []
        return done.stderr.splitlines() or [f"the import check exited with {done.returncode}"]

    def restart(self, name: str, record: st.Process) -> bool:
        """Replace the process if its new code imports; False (the old one serves on) if not."""
        t0 = time.monotonic()
        problem = self.check(record)
        t1 = time.monotonic()
        if problem:
            self.ui.error(
                f"{name} not reloaded, the running process serves on: {problem[0]}",
                tail("\n".join(problem[1:]), 12),
            )
            return False
        old = self.backend.children.get(name)
        how = (
            procs.stop_group(record.pgid, record.grace, old)
            if procs.is_ours(record.pid, record.pgid, record.start)
            else "not running"
        )
        if how == "stuck":
            raise StackError(f"{name} (process group {record.pgid}) survived SIGKILL")
        t2 = time.monotonic()
        child = self.backend.spawn(record)
        self.backend.children[name] = child
        self.backend.wait_ready(name, record, child, READY_LIMIT)
        self.phases = (
            f"check {seconds(t1 - t0)}, stop {seconds(t2 - t1)}, "
            f"start {seconds(time.monotonic() - t2)}"
        )
        return True
