"""A project generated from the template under another name runs its stack under Docker Compose:
its own image name, its own Compose project, reached and called, and gone after ``down``."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from scripts.stacklib import definition
from tests.generation import generate, make_template

from .support import REPO, compose_variables

pytestmark = pytest.mark.container

SLUG = "acme-orders"
PROJECT_LABEL = "com.docker.compose.project"


@pytest.fixture
def generated(tmp_path: Path, image: str) -> Path:
    """A generated project; the `image` fixture has made the wheels the offline build needs."""
    template = make_template(tmp_path / "template")
    project = generate(template, tmp_path / SLUG, SLUG, f"registry.example.com/acme/{SLUG}", SLUG)
    shutil.copytree(REPO / ".cache" / "wheels", project / ".cache" / "wheels")
    return project


@pytest.fixture
def stack_env(docker_client: docker.DockerClient, base_image: str) -> Iterator[dict[str, str]]:
    variables = compose_variables(REPO / "compose" / "compose.yaml")
    env = {
        k: v for k, v in os.environ.items() if k not in variables and not k.startswith("SERVICE_")
    }
    tag = f"{SLUG}:generated-test-{uuid.uuid4().hex[:8]}"
    env.update(BASE_IMAGE=base_image, SERVICE_IMAGE=tag, GATEWAY_PORT="0")
    yield env
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(tag)


def test_the_generated_stack_runs_under_compose_with_its_own_names(
    generated: Path, stack_env: dict[str, str], docker_client: docker.DockerClient
) -> None:
    def stack(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "scripts/stack.py", *args],
            cwd=generated,
            env={**stack_env, "PYTHONPATH": str(generated)},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    try:
        up = stack("up", "--docker", "-d")
        assert up.returncode == 0, up.stderr[-3000:]
        projects = {
            c.labels.get(PROJECT_LABEL)
            for c in docker_client.containers.list(filters={"label": PROJECT_LABEL})
        }
        assert any(name and name.startswith(SLUG) for name in projects), projects
        # Every service of the generated project that `up` runs (no profile named) ready and
        # answering a call (rpc.discover), whichever services the template had.
        smoke = stack("smoke")
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        passed = {
            line.split()[1].rstrip(":") for line in smoke.stdout.splitlines() if line[:5] == "PASS "
        }
        defined = definition.load(generated / "compose" / "compose.yaml", {})
        names = {service.name for service in defined.app_services() if not service.profiles}
        assert names and names <= passed, smoke.stdout
    finally:
        down = stack("down")
    assert down.returncode == 0, down.stderr
    left = docker_client.containers.list(all=True, filters={"label": PROJECT_LABEL})
    assert not [c.name for c in left if (c.labels.get(PROJECT_LABEL) or "").startswith(SLUG)]
