"""Where the orchestrator keeps its files, and the state file that survives a crash.

Everything lives under ``.cache/stack/`` in the repository (git-ignored): ``state.json`` (what is
running and how to stop it), ``logs/<service>.log``, ``secrets/`` (generated dev tokens) and a
lock file. The state is written *before* anything starts and updated as each service starts, so
after a crash of the orchestrator the next ``up`` or ``down`` finds and stops what it left.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import StackError

VERSION = 1


@dataclass(frozen=True)
class Paths:
    """The repository's files the orchestrator reads and writes."""

    repo: Path
    compose_file: Path

    @property
    def cache(self) -> Path:
        return self.repo / ".cache" / "stack"

    @property
    def state_file(self) -> Path:
        return self.cache / "state.json"

    @property
    def logs(self) -> Path:
        return self.cache / "logs"

    @property
    def secrets(self) -> Path:
        return self.cache / "secrets"

    def log(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def shown(self, path: Path) -> str:
        """``path`` relative to the repository when it is inside it (for messages)."""
        try:
            return str(path.resolve().relative_to(self.repo.resolve()))
        except ValueError:
            return str(path)

    @property
    def project(self) -> str:
        """The Compose project name: the repository folder's name plus a hash of its path, so
        two checkouts never share containers."""
        slug = re.sub(r"[^a-z0-9_-]+", "-", self.repo.resolve().name.lower()).strip("-_")
        digest = hashlib.sha256(str(self.repo.resolve()).encode()).hexdigest()[:8]
        return f"{slug or 'stack'}-{digest}"


@dataclass
class Process:
    """A local service process: enough to find it, reach it and stop it."""

    pid: int
    pgid: int
    start: str | None
    port: int
    url: str
    log: str
    token_file: str | None = None
    grace: float = 10.0
    # How to start it again (a reload, `attach`): its argv and the variables the stack set for it
    # (the caller's own environment is not recorded: it may hold secrets).
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    module: str | None = None  # the file of the module it serves, for the reloader
    attached: bool = False  # running in the foreground of `stack.py attach`


@dataclass
class State:
    """What ``up`` started; ``services`` in start order."""

    backend: str
    compose_file: str
    owner_pid: int | None = None  # the attached `up` that will stop the stack on Ctrl-C
    owner_start: str | None = None
    started_at: float = field(default_factory=time.time)
    services: dict[str, Process] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # service -> why it does not run
    project: str | None = None  # Docker: the Compose project
    env: dict[str, str] = field(default_factory=dict)  # Docker: variables set for Compose
    profiles: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # files made for this run, removed by down
    reload: bool = False  # the attached `up` restarts services whose code changes
    overrides: list[str] = field(default_factory=list)  # Docker: Compose files after the first
    adopted: bool = False  # Docker: started by the raw Compose commands (adopt.py)


def load(paths: Paths) -> State | None:
    """The recorded state, or None when nothing is recorded."""
    try:
        raw = json.loads(paths.state_file.read_text())
        if raw.pop("version", None) != VERSION:
            raise ValueError("unknown version")
        services = {name: Process(**item) for name, item in raw.pop("services").items()}
        return State(services=services, **raw)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise StackError(
            f"cannot read {paths.shown(paths.state_file)} ({exc}); stop what it lists by hand "
            "if anything still runs, then delete the file"
        ) from exc


def save(paths: Paths, state: State) -> None:
    """Write the state atomically (a crash never leaves half a file)."""
    paths.cache.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {"version": VERSION, **asdict(state)}
    temporary = paths.state_file.with_suffix(".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, paths.state_file)


def clear(paths: Paths, state: State) -> None:
    """Forget the stack: remove the state file and the files made for it."""
    for name in state.files:
        with contextlib.suppress(FileNotFoundError):
            Path(name).unlink()
    with contextlib.suppress(FileNotFoundError):
        paths.state_file.unlink()


def same_run(paths: Paths, state: State) -> bool:
    """Whether the recorded state is still this run's (a `down` elsewhere removes it)."""
    try:
        current = load(paths)
    except StackError:
        return False
    return current is not None and current.started_at == state.started_at


@contextlib.contextmanager
def locked(paths: Paths, wait: float = 30.0) -> Iterator[None]:
    """Hold the stack's lock, so two commands never start or stop it at the same time."""
    paths.cache.mkdir(parents=True, exist_ok=True)
    with (paths.cache / "lock").open("a") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StackError(
                        f"another stack.py command has held {paths.shown(paths.cache)}/lock for "
                        f"{wait:.0f} s; wait for it to finish, then retry"
                    ) from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
