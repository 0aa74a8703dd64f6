"""The local backend: the Compose stack's template services as processes on loopback.

Each service whose image is the template's own runs as ``python -m service_template <its Compose
command>`` with the environment Compose would give it, except that it listens on
``127.0.0.1:<free port>``, peer URLs naming a stack service (``http://hello:8000``) point at that
service's local port, and each Compose secret is a freshly generated file under
``.cache/stack/secrets/``. Services start in dependency order, a layer at a time, and each must
answer ``/readyz`` before anything that depends on it starts. Third-party images and services
of profiles not enabled are skipped, with the reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from . import order, probe, procs
from . import state as st
from .errors import StackError
from .model import Compose, Service
from .ui import UI, seconds, tail

# What the Dockerfile runs, so a Compose `command` means the same here as in a container.
IMAGE_ENTRYPOINT = ("/opt/venv/bin/python", "-m", "service_template")
IMAGE_COMMAND = ("serve",)
IMAGE_PORT = 8000  # the image's SERVICE_PORT: peers' URLs in Compose use it
DEFAULT_READY_LIMIT = 60.0
DEFAULT_GRACE = 10.0  # Compose's default stop timeout
_URL_AUTHORITY = re.compile(r"//([A-Za-z0-9_.-]+):(\d+)")


@dataclass(frozen=True)
class Plan:
    """What runs, in start layers, and what is skipped with its reason."""

    layers: list[list[Service]]
    skipped: dict[str, str]

    @property
    def services(self) -> list[Service]:
        return [service for layer in self.layers for service in layer]


def make_plan(compose: Compose, profiles: list[str]) -> Plan:
    """Choose the services that run as processes and the order they start in."""
    active: dict[str, Service] = {}
    skipped: dict[str, str] = {}
    for service in compose.services.values():
        if service.profiles and not set(service.profiles) & set(profiles):
            skipped[service.name] = f"profile {service.profiles[0]} not enabled"
        elif not compose.runs_template_image(service):
            skipped[service.name] = f"third-party image {service.image}; runs with --docker"
        elif service.entrypoint not in (None, IMAGE_ENTRYPOINT):
            skipped[service.name] = "has its own entrypoint; runs with --docker"
        else:
            active[service.name] = service
    _refuse_missing_dependencies(compose, active, skipped)
    graph = {name: [d.service for d in s.depends_on] for name, s in active.items()}
    layers = order.layers(graph)
    return Plan([[active[name] for name in layer] for layer in layers], skipped)


def _refuse_missing_dependencies(
    compose: Compose, active: Mapping[str, Service], skipped: Mapping[str, str]
) -> None:
    """A service that needs one the local mode cannot run (a database's image, say) would only
    wait for it and time out: refuse at once, in one line naming both and the way out."""
    for service in active.values():
        for dependency in service.depends_on:
            name = dependency.service
            if not dependency.required or name in active or name not in compose.services:
                continue
            why = skipped.get(name, "")
            if why.startswith("profile "):
                continue  # Compose itself refuses a dependency on a profile left off
            profiles = sorted({p for p in (*service.profiles, *compose.services[name].profiles)})
            off = " or leave the profile off" if profiles else ""
            with_profiles = "".join(f" --profile {p}" for p in profiles)
            raise StackError(
                f"{service.name} needs {name}, which does not run as a local process ({why}): "
                f"use `stack.py up --docker{with_profiles}`{off}"
            )


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports on 127.0.0.1 (all held open until all are chosen)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def inherited(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment minus its SERVICE_* settings (a container would not see them
    either, and the service rejects unknown ones)."""
    return {
        key: value
        for key, value in environ.items()
        if not key.startswith("SERVICE_") and key != "PROMETHEUS_MULTIPROC_DIR"
    }


def module_file(repo: Path, command: tuple[str, ...] | None) -> str | None:
    """The source file of the module a ``serve module:Class`` command serves, if it is in the
    repository (``services.hello`` -> ``services/hello.py``)."""
    if not command or len(command) < 2 or command[0] != "serve" or ":" not in command[1]:
        return None
    parts = command[1].split(":", 1)[0].split(".")
    for candidate in (
        repo.joinpath(*parts).with_suffix(".py"),
        repo.joinpath(*parts, "__init__.py"),
    ):
        if candidate.is_file():
            return str(candidate.resolve())
    return None


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the service's own listener does, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def container_port(service: Service) -> int:
    value = service.environment.get("SERVICE_PORT", str(IMAGE_PORT))
    return int(value) if value.isdigit() else IMAGE_PORT


def rewrite_urls(value: str, addresses: Mapping[str, tuple[int, int]]) -> str:
    """Point ``//service:container_port`` at ``//127.0.0.1:local_port`` for stack services."""

    def replace(match: re.Match[str]) -> str:
        found = addresses.get(match.group(1))
        if found is None or int(match.group(2)) != found[0]:
            return match.group(0)
        return f"//127.0.0.1:{found[1]}"

    return _URL_AUTHORITY.sub(replace, value)


def rewrite_mounts(value: str, mounts: Mapping[str, Path]) -> str:
    """Point each secret path in a ``name=path,...`` value (or the whole value) at its local
    file, e.g. ``SERVICE_PEER_TOKEN_FILES=hello=/run/secrets/hello_token``."""
    whole = mounts.get(value)
    if whole is not None:
        return str(whole)
    items = []
    for item in value.split(","):
        name, sep, path = item.partition("=")
        local = mounts.get(path.strip()) if sep else None
        items.append(f"{name}={local}" if local is not None else item)
    return ",".join(items)


class LocalBackend:
    """Starts and stops the planned services as local process groups."""

    def __init__(self, paths: st.Paths, ui: UI, environ: Mapping[str, str]) -> None:
        self.paths = paths
        self.ui = ui
        self.environ = environ
        self.python = sys.executable
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    # -- up ----------------------------------------------------------------------------------

    def up(
        self, state: st.State, plan: Plan, pinned: Mapping[str, int], limit: float | None
    ) -> None:
        """Start every planned service and wait for each; StackError if one fails."""
        state.skipped = dict(plan.skipped)
        names = [service.name for service in plan.services]
        for name, port in pinned.items():
            if name not in names:
                why = plan.skipped.get(name, "it is not a service of the stack")
                raise StackError(
                    f"--port {name}={port}: {name} does not run locally ({why})", status=2
                )
            if not port_is_free(port):
                raise StackError(
                    f"port {port} for {name} is in use on 127.0.0.1; stop what listens there, "
                    f"or pick another with --port {name}=PORT (or leave it out for a free one)"
                )
        chosen = iter(free_ports(len(names)))
        ports = {name: pinned.get(name) or next(chosen) for name in names}
        addresses = {s.name: (container_port(s), ports[s.name]) for s in plan.services}
        secret_files = self._make_secrets(state, plan)
        total = len(names)
        for layer in plan.layers:
            for service in layer:
                self._start(state, service, ports[service.name], addresses, secret_files)
            for service in layer:
                self._wait_ready(state, service, limit)
        self.ui.say(f"{total} service{'s' if total != 1 else ''} ready")

    def _make_secrets(self, state: st.State, plan: Plan) -> dict[str, Path]:
        names = sorted({name for s in plan.services for name in s.secrets})
        files: dict[str, Path] = {}
        if names:
            self.paths.secrets.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in names:
            path = self.paths.secrets / name
            path.unlink(missing_ok=True)
            # A new random value per run: what the Compose secret's file holds is for containers.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_urlsafe(32))
            state.files.append(str(path))
            files[name] = path
        st.save(self.paths, state)
        return files

    def environment(
        self,
        service: Service,
        port: int,
        addresses: Mapping[str, tuple[int, int]],
        secret_files: Mapping[str, Path],
    ) -> dict[str, str]:
        """The process environment: the caller's, minus its SERVICE_* settings (a container
        would not see them either), plus the service's Compose environment, adapted."""
        return {
            **inherited(self.environ),
            **self.own_environment(service, port, addresses, secret_files),
        }

    def own_environment(
        self,
        service: Service,
        port: int,
        addresses: Mapping[str, tuple[int, int]],
        secret_files: Mapping[str, Path],
    ) -> dict[str, str]:
        """What the stack sets for the service (recorded, so a restart sets the same)."""
        env: dict[str, str] = {}
        mounts = {target: secret_files[name] for name, target in service.secrets.items()}
        for key, value in service.environment.items():
            env[key] = rewrite_urls(rewrite_mounts(value, mounts), addresses)
        env.update(SERVICE_HOST="127.0.0.1", SERVICE_PORT=str(port), PYTHONUNBUFFERED="1")
        if "PYTHONBREAKPOINT" not in env and "PYTHONBREAKPOINT" not in self.environ:
            env["PYTHONBREAKPOINT"] = "service_template.breakpoints.stop_or_skip"  # its docstring
        return env

    def _start(
        self,
        state: st.State,
        service: Service,
        port: int,
        addresses: Mapping[str, tuple[int, int]],
        secret_files: Mapping[str, Path],
    ) -> None:
        own = self.own_environment(service, port, addresses, secret_files)
        argv = [self.python, "-m", "service_template", *(service.command or IMAGE_COMMAND)]
        self.ui.say(f"starting {service.name}: {' '.join(argv[1:])}")
        log_path = self.paths.log(service.name)
        token_file = own.get("SERVICE_API_TOKEN_FILE")
        record = st.Process(
            pid=0,
            pgid=0,
            start=None,
            port=port,
            url=f"http://127.0.0.1:{port}/api",
            log=str(log_path),
            token_file=token_file if token_file and Path(token_file).is_file() else None,
            grace=service.stop_grace_period or DEFAULT_GRACE,
            argv=argv,
            env=own,
            module=module_file(self.paths.repo, service.command),
        )
        self.children[service.name] = self.spawn(record, fresh_log=True)
        state.services[service.name] = record
        st.save(self.paths, state)

    def spawn(
        self,
        record: st.Process,
        fresh_log: bool = False,
        argv: list[str] | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> subprocess.Popen[bytes]:
        """Start the recorded service in the background, its own process group, output to its
        log (appended to, unless ``fresh_log``); ``record`` gets the new process's identity.
        ``argv`` replaces the recorded command line (the reloader's standby launcher)."""
        log_path = Path(record.log)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb" if fresh_log else "ab") as log:
            child = subprocess.Popen(
                argv or record.argv,
                pass_fds=pass_fds,
                cwd=self.paths.repo,
                env={**inherited(self.environ), **record.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as one, never by the tty
            )
        record.pid = record.pgid = child.pid
        record.start = procs.start_time(child.pid)
        record.attached = False
        return child

    def wait_ready(
        self, name: str, record: st.Process, child: subprocess.Popen[bytes], limit: float
    ) -> float:
        """Poll ``/readyz`` until it answers 200; the seconds it took (StackError if the process
        exits or ``limit`` passes first)."""
        base = record.url.removesuffix("/api")
        started = time.monotonic()
        last = "no answer yet"
        while True:
            status = child.poll()
            if status is not None:
                raise self._failure(name, f"exited with status {status} while starting")
            answer = probe.probe(base, metrics=False, timeout=2.0)
            if answer["ready"] == 200:
                return time.monotonic() - started
            last = f"HTTP {answer['ready']}" if answer["ready"] else answer["ready_detail"]
            if time.monotonic() - started > limit:
                raise self._failure(
                    name, f"was not ready within {limit:.0f} s (last /readyz: {last})"
                )
            # Waiting on the process doubles as the poll interval and notices an exit at once.
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.05)

    def _wait_ready(self, state: st.State, service: Service, limit: float | None) -> None:
        record = state.services[service.name]
        patience = service.healthcheck.patience() if service.healthcheck else None
        took = self.wait_ready(
            service.name,
            record,
            self.children[service.name],
            limit or patience or DEFAULT_READY_LIMIT,
        )
        self.ui.say(f"{service.name} ready at {record.url} ({seconds(took)})")

    def _failure(self, name: str, what: str) -> StackError:
        log_path = self.paths.log(name)
        try:
            lines = tail(log_path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            lines = []
        errors = [line for line in lines if line.startswith("error:")]
        reason = (errors or lines or ["(no output)"])[-1][:300]
        return StackError(
            f"{name} {what}: {reason} (its log: {self.paths.shown(log_path)}); fix it and run up "
            "again",
            details=[f"last lines of {self.paths.shown(log_path)}:", *lines],
        )

    # -- down --------------------------------------------------------------------------------

    def down(self, state: st.State) -> list[str]:
        """Stop every recorded service, dependants first; lines saying how each ended."""
        report = []
        for name in reversed(list(state.services)):
            record = state.services[name]
            child = self.children.get(name)
            if not procs.is_ours(record.pid, record.pgid, record.start):
                if child is not None:
                    child.poll()  # reap our own child, already gone
                report.append(f"{name}: not running")
                continue
            how = procs.stop_group(record.pgid, record.grace, child)
            report.append(f"{name}: {how}")
            if how == "stuck":
                raise StackError(
                    f"{name} (process group {record.pgid}) survived SIGKILL; check it with "
                    f"`ps -g {record.pgid}`"
                )
        return report

    def running(self, state: st.State) -> list[str]:
        """The recorded services whose process still runs."""
        return [
            name
            for name, record in state.services.items()
            if procs.is_running(record.pid, record.start)
        ]
