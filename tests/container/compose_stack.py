"""The template's Compose stack (compose/compose.yaml) as one Compose project for the container
tests: ``Stack`` runs ``docker compose`` on it; ``up_stack`` brings it up healthy and, at the
end, down, checking that nothing is left (the conftest's session fixture ``stack`` uses it, so
every module that tests the stack shares one).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from .support import REPO, TOKEN, compose_variables, note

COMPOSE_FILE = REPO / "compose" / "compose.yaml"
COMPOSE_VARIABLES = compose_variables(COMPOSE_FILE)
# Each service has a token of its own, in the file its <NAME>_TOKEN_FILE variable names.
TOKEN_VARIABLES = sorted(v for v in COMPOSE_VARIABLES if v.endswith("_TOKEN_FILE"))
# The other secret files the file requires (the database password: DB_PASSWORD_FILE).
OTHER_SECRET_VARIABLES = sorted(
    v for v in COMPOSE_VARIABLES if v.endswith("_FILE") and v not in TOKEN_VARIABLES
)
# The token files' group, which the services join (SECRETS_GID): neither root's nor theirs when
# the tests run as root; the caller's own group otherwise (chown needs root).
SECRETS_GID = 4711 if os.geteuid() == 0 else os.getgid()


def token_for(service: str) -> str:
    """The token the stack's service ``service`` checks (and its callers send it)."""
    return f"{service}-{TOKEN}"


def secret_for(variable: str) -> str:
    """What the secret file that ``variable`` names holds (a password) in the tests' stack."""
    return f"{variable.lower()}-{TOKEN}"


def token_services() -> list[str]:
    """The services that have a token of their own, from the Compose file's variables."""
    return [variable.removesuffix("_TOKEN_FILE").lower() for variable in TOKEN_VARIABLES]


@dataclass
class Stack:
    """One Compose project made from compose/compose.yaml."""

    compose: list[str]
    project: str
    env_file: Path
    env: dict[str, str]
    profiles: tuple[str, ...] = ("*",)

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            *self.compose,
            "--project-name",
            self.project,
            "--env-file",
            str(self.env_file),
            "--file",
            str(COMPOSE_FILE),
            # Every profile whose images are here (observability, db): see runnable_profiles.
            *(flag for profile in self.profiles for flag in ("--profile", profile)),
            *args,
        ]
        proc = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
            )
        return proc

    def ps(self) -> dict[str, dict[str, Any]]:
        """``docker compose ps --all --format json`` by service name."""
        out = self.run("ps", "--all", "--format", "json").stdout.strip()
        # Compose prints one object per line; versions before 2.21 printed one array.
        rows = json.loads(out) if out.startswith("[") else [json.loads(x) for x in out.splitlines()]
        return {row["Service"]: row for row in rows}

    def url(self, service: str, port: int) -> str:
        address = self.run("port", service, str(port)).stdout.strip()
        assert address.startswith("127.0.0.1:"), address
        return f"http://{address}"

    def leftovers(self, client: docker.DockerClient) -> list[str]:
        """Containers, networks and volumes that still carry the project's label."""
        label = {"label": f"com.docker.compose.project={self.project}"}
        found = [f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
        found += [f"network {n.name}" for n in client.networks.list(filters=label)]
        found += [f"volume {v.name}" for v in client.volumes.list(filters=label)]
        return found

    def remove_by_label(self, client: docker.DockerClient) -> None:
        """Force-remove whatever ``down`` left behind (containers first, they hold the rest)."""
        label = {"label": f"com.docker.compose.project={self.project}"}
        for container in client.containers.list(all=True, filters=label):
            container.remove(force=True, v=True)
        for network in client.networks.list(filters=label):
            network.remove()
        for volume in client.volumes.list(filters=label):
            volume.remove(force=True)

    def runnable_profiles(self, client: docker.DockerClient) -> tuple[str, ...]:
        """The Compose file's profiles whose every image is on this machine (ours are built by
        the tier; a profile such as ``tracing`` pulls a third-party image from a registry, which
        is not reachable here). Each profile left out is noted with its image."""
        rendered = json.loads(self.run("config", "--format", "json").stdout)
        runnable: set[str] = set()
        missing: dict[str, str] = {}
        for service in rendered["services"].values():
            image = service.get("image", "")
            try:
                client.images.get(image)
                present = True
            except docker.errors.ImageNotFound:
                present = False
            for profile in service.get("profiles", []):
                if present:
                    runnable.add(profile)
                else:
                    missing[profile] = image
        for profile, image in sorted(missing.items()):
            note(f"profile {profile} not run: its image {image} is not on this machine")
        return tuple(sorted(runnable - set(missing)))

    def down(self) -> None:
        self.run("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=180)


def up_stack(
    project: str,
    compose: list[str],
    docker_client: docker.DockerClient,
    images: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The whole stack up and healthy (``up --wait``); at the end ``down``, and nothing of it
    (container, network, volume) may be left. ``images``: SERVICE_IMAGE, PROMETHEUS_IMAGE..."""
    folder = tmp_path_factory.mktemp("compose")
    lines = [f"{variable}={value}" for variable, value in images.items()]
    secrets = [
        *(
            (f"{s}_token", v, token_for(s))
            for s, v in zip(token_services(), TOKEN_VARIABLES, strict=True)
        ),
        *((v.lower(), v, secret_for(v)) for v in OTHER_SECRET_VARIABLES),
    ]
    for file_name, variable, value in secrets:
        secret_file = folder / file_name
        secret_file.write_text(value + "\n")
        # As compose/README.md says: group read for the group the services join, no world read.
        os.chown(secret_file, -1, SECRETS_GID)
        secret_file.chmod(0o640)
        lines.append(f"{variable}={secret_file}")
    lines += [f"SECRETS_GID={SECRETS_GID}", "GATEWAY_PORT=0", "PROMETHEUS_PORT=0"]
    env_file = folder / "compose.env"
    env_file.write_text("\n".join(lines) + "\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in COMPOSE_VARIABLES and not key.startswith("COMPOSE_")
    }
    made = Stack(compose, project, env_file, env)
    made.profiles = made.runnable_profiles(docker_client)
    try:
        started = time.monotonic()
        up = made.run(
            "up",
            "--detach",
            "--wait",
            "--wait-timeout",
            "120",
            "--no-build",
            "--pull",
            "never",
            timeout=300,
            check=False,
        )
        if up.returncode != 0:
            logs = made.run("logs", "--no-color", "--tail", "20", check=False).stdout
            pytest.fail(f"docker compose up failed:\n{up.stderr[-3000:]}\n{logs[-4000:]}")
        count = len(made.ps())
        note(
            f"compose stack ({count} services) up and healthy in {time.monotonic() - started:.1f} s"
        )
        assert made.leftovers(docker_client), "the stack's resources are not found by label"
        yield made
    finally:
        down = made.run(
            "down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=180, check=False
        )
        left = made.leftovers(docker_client)
        if left:
            made.remove_by_label(docker_client)  # never leave them on the machine
        assert not left, f"docker compose down (exit {down.returncode}) left {left}"
