"""The stack's services and who calls whom, as ``compose/compose.yaml`` defines them.

This is what the tests, ``new``/``remove`` and the manifest checks ask instead of keeping a list
of their own. Compose's own reading (``docker compose config --format json``: interpolation,
``<<:`` merges, every profile) is used when Compose is installed, which CI makes sure of
(scripts/ci/install-tools.sh); it renders without a Docker engine. Elsewhere the orchestrator's
reader (reader.py) answers, and tests/unit/test_stack_definition.py proves that both give the
same services, commands, peers and dependencies wherever Compose is there to compare with.

Who calls whom is ``SERVICE_PEERS`` on the caller, the one declaration of peers, parsed by
``service_template.peers`` (the runtime's own parser).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service_template.peers import PEERS_ENV, parse_peers, peer_host

from . import reader
from .errors import StackError
from .model import Compose

COMPOSE_CONFIG = "docker compose config"
READER = "the stack's reader"
# Variables the file requires (`${HELLO_TOKEN_FILE:?...}`: every service's token file) get a
# stand-in when unset: rendering the model to read the stack's shape must not need the secrets.
_REQUIRED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?")


def _stand_ins(compose_file: Path) -> dict[str, str]:
    try:
        text = compose_file.read_text(encoding="utf-8")
    except OSError:
        return {}
    return dict.fromkeys(_REQUIRED.findall(text), os.devnull)


@dataclass(frozen=True)
class StackService:
    """One service of the stack, as far as its shape matters to the tests and ``new``."""

    name: str
    command: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    profiles: tuple[str, ...] = ()
    published_ports: tuple[int, ...] = ()  # container ports in `ports:`, reachable from outside
    template_image: bool = False  # runs the template's image (a service of this project)
    peers: Mapping[str, str] = field(default_factory=dict)  # its SERVICE_PEERS, parsed

    @property
    def published(self) -> bool:
        """Whether anything outside the stack can reach it (it has ``ports:``)."""
        return bool(self.published_ports)

    @property
    def target(self) -> str | None:
        """The ``module:Class`` it serves, when its command is ``serve TARGET``."""
        if self.command and len(self.command) == 2 and self.command[0] == "serve":
            return self.command[1]
        return None


@dataclass(frozen=True)
class Definition:
    """Every service of the stack (sorted by name) and where the answer came from."""

    services: Mapping[str, StackService]
    source: str

    def app_services(self) -> list[StackService]:
        """The project's own services: those that run the template image with a target."""
        return [s for s in self.services.values() if s.template_image and s.target]

    def app_names(self) -> list[str]:
        return [service.name for service in self.app_services()]

    def calls(self) -> set[tuple[str, str]]:
        """(caller, callee) for every peer URL that names a service of the stack."""
        return {
            (service.name, peer_host(url))
            for service in self.services.values()
            for url in service.peers.values()
            if peer_host(url) in self.services
        }

    def callers_of(self, name: str) -> list[str]:
        """The services whose SERVICE_PEERS name ``name``, sorted."""
        return sorted(caller for caller, callee in self.calls() if callee == name)


def compose_command() -> list[str] | None:
    """How to run Compose here: the binary next to this Python (installed into the venv by
    install-tools.sh), ``docker-compose`` on PATH, or the ``docker compose`` plugin."""
    beside = Path(sys.executable).parent / "docker-compose"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("docker-compose")
    if found:
        return [found]
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [docker, "compose"] if probe.returncode == 0 else None


def render(compose_file: Path, environ: Mapping[str, str], command: list[str]) -> dict[str, Any]:
    """Compose's normalised model of the file, every profile included (no engine needed)."""
    env = {**_stand_ins(compose_file), **environ}
    args = [*command, "-f", str(compose_file), "--profile", "*", "config", "--format", "json"]
    try:
        result = subprocess.run(
            args, env=env, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StackError(f"{' '.join(command)} config failed to run: {exc}") from exc
    if result.returncode != 0:
        problem = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise StackError(f"{COMPOSE_CONFIG} refused {compose_file.name}: {problem}")
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _peers(name: str, environment: Mapping[str, str]) -> dict[str, str]:
    try:
        return parse_peers(environment.get(PEERS_ENV, ""))
    except ValueError as exc:
        raise StackError(f"services.{name}.environment.{PEERS_ENV}: {exc}") from None


def from_compose_config(document: Mapping[str, Any]) -> Definition:
    """The definition from ``docker compose config --format json`` output."""
    bodies: Mapping[str, Any] = document.get("services") or {}
    built = {body.get("image") for body in bodies.values() if body.get("build")}
    services = {}
    for name, body in sorted(bodies.items()):
        environment = {
            k: str(v) for k, v in (body.get("environment") or {}).items() if v is not None
        }
        command = body.get("command")
        services[name] = StackService(
            name=name,
            command=tuple(command) if command else None,
            environment=environment,
            depends_on=tuple(sorted(body.get("depends_on") or {})),
            profiles=tuple(body.get("profiles") or ()),
            published_ports=tuple(int(p["target"]) for p in body.get("ports") or []),
            template_image=bool(body.get("build")) or body.get("image") in built,
            peers=_peers(name, environment),
        )
    return Definition(services, COMPOSE_CONFIG)


def from_model(compose: Compose) -> Definition:
    """The definition from the orchestrator's own reading of the file."""
    services = {}
    for name, service in sorted(compose.services.items()):
        services[name] = StackService(
            name=name,
            command=service.command,
            environment=dict(service.environment),
            depends_on=tuple(sorted(d.service for d in service.depends_on)),
            profiles=service.profiles,
            published_ports=tuple(port.target for port in service.ports),
            template_image=compose.runs_template_image(service),
            peers=_peers(name, service.environment),
        )
    return Definition(services, READER)


def load(
    compose_file: Path, environ: Mapping[str, str], *, use_compose: bool | None = None
) -> Definition:
    """The stack defined by ``compose_file``: through Compose when it is installed (or when
    ``use_compose`` is True: then its absence is an error), else through the reader."""
    command = compose_command() if use_compose is not False else None
    if use_compose and command is None:
        raise StackError("Compose is not installed: run scripts/ci/install-tools.sh")
    if command is not None:
        return from_compose_config(render(compose_file, environ, command))
    return from_model(reader.load(compose_file, environ, compose_file.name))
