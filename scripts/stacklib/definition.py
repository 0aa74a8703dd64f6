"""The stack's services and who calls whom, as ``compose/compose.yaml`` defines them.

This is what the tests, ``new``/``remove`` and the manifest checks ask instead of keeping a list
of their own. It is Compose's own reading of the file (rendered.py: ``docker compose config
--format json``, with interpolation, ``.env``, ``env_file``, ``<<:`` merges and every profile),
the same the backends run; it needs no Docker engine.

Who calls whom is ``SERVICE_PEERS`` on the caller, the one declaration of peers, parsed by
``service_template.peers`` (the runtime's own parser).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service_template.peers import PEERS_ENV, parse_peers, peer_host

from . import rendered
from .errors import StackError
from .model import Compose


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
    """Every service of the stack, sorted by name."""

    services: Mapping[str, StackService]

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


def _peers(name: str, environment: Mapping[str, str]) -> dict[str, str]:
    try:
        return parse_peers(environment.get(PEERS_ENV, ""))
    except ValueError as exc:
        raise StackError(f"services.{name}.environment.{PEERS_ENV}: {exc}") from None


def from_model(compose: Compose) -> Definition:
    """The definition from the model of Compose's rendering."""
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
    return Definition(services)


def load(compose_file: Path, environ: Mapping[str, str], text: str | None = None) -> Definition:
    """The stack defined by ``compose_file`` (or by ``text`` in its place), as Compose reads it;
    a one-line StackError when Compose is missing or refuses the file."""
    return from_model(rendered.read(compose_file, environ, text))
