"""The Compose file as a typed model: what the orchestrator needs to know about each service.

``rendered`` makes it from Compose's own rendering of the file (``docker compose config``).
Anything not modelled here is left to Compose itself, which the Docker backend runs on the same
file: there is one stack definition, and one reader of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StackError

SECRETS_DIR = "/run/secrets"  # where Compose mounts a service's secrets


class ComposeError(StackError):
    """The Compose file cannot be used as it is."""


@dataclass(frozen=True)
class Port:
    """A published port: ``target`` in the container, ``published`` on the host."""

    target: int
    published: str | None
    host_ip: str | None
    protocol: str = "tcp"
    variables: tuple[str, ...] = ()  # the variables its text uses, for hints


@dataclass(frozen=True)
class Healthcheck:
    """The timing of a service's health probe (its test is the image's, or Compose's)."""

    disabled: bool = False
    interval: float | None = None
    timeout: float | None = None
    retries: int | None = None
    start_period: float | None = None

    def patience(self) -> float | None:
        """How long Compose would wait for the first healthy probe, in seconds (or None)."""
        if self.disabled or self.interval is None:
            return None
        return (self.start_period or 0.0) + self.interval * (self.retries or 3)


@dataclass(frozen=True)
class Dependency:
    """One ``depends_on`` entry."""

    service: str
    condition: str = "service_started"
    required: bool = True


@dataclass(frozen=True)
class Secret:
    """A top-level secret; ``file`` is None when its path cannot be known (``problem`` says why)."""

    name: str
    file: Path | None
    problem: str | None = None
    file_text: str | None = None  # `${VAR}` when unset: the variable that names the file


@dataclass(frozen=True)
class Service:
    """One Compose service, interpolated."""

    name: str
    image: str | None = None
    build: bool = False
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    depends_on: tuple[Dependency, ...] = ()
    healthcheck: Healthcheck | None = None
    profiles: tuple[str, ...] = ()
    secrets: Mapping[str, str] = field(default_factory=dict)  # secret -> path in the container
    stop_grace_period: float | None = None


@dataclass(frozen=True)
class Compose:
    """The whole file: services in Compose's order (by name), and the secrets they may use."""

    path: Path
    services: Mapping[str, Service]
    secrets: Mapping[str, Secret] = field(default_factory=dict)
    project_name: str | None = None

    @property
    def template_image(self) -> str | None:
        """The image the template builds (the first service with ``build:``), if any."""
        return next((s.image for s in self.services.values() if s.build and s.image), None)

    def runs_template_image(self, service: Service) -> bool:
        """Whether the service runs the template's own image (so it can run as a process): it
        builds it, or runs the image a service of the stack builds."""
        if service.build:
            return True
        return service.image is not None and service.image == self.template_image

    def get(self, name: str) -> Service:
        """The service called ``name``; a StackError lists the names there are."""
        try:
            return self.services[name]
        except KeyError:
            known = ", ".join(self.services) or "none"
            raise StackError(
                f"no service named {name!r} in {self.path.name} (services: {known})", status=2
            ) from None
