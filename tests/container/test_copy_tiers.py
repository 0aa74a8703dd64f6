"""The container and client tiers pass in a copy of the project whose examples are gone.

``tests/integration/test_template_survives.py`` runs lint, unit and integration tiers in scratch
copies; the container tier (image, Compose stack, pod emulation) and the client tier (third-party
Python and npm clients, a browser) need the engine, so they run here: the same ``replaced`` copy
(``tests/scratch_copies.py``: every service removed with ``stack.py remove``, callers first, and
``stack.py new billing`` added), then the copy's own ``tests/container`` and ``tests/clients`` in
it, with a missing engine or tool a failure.

The copy builds its image under a tag of its own (``ST_TEST_IMAGE``) and names its Compose
projects after its own session, so the outer session's image and stack are untouched. Measured
about 4 to 6 minutes on the shared 2-core machine.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from scripts.stacklib import definition
from tests.scratch_copies import NAME, environment, replaced_copy

from .conftest import SESSION
from .support import REPO, note

pytestmark = [pytest.mark.container, pytest.mark.timeout(1800)]

THIS = Path(__file__).relative_to(REPO)
LIMIT = 1500  # seconds for the copy's two tiers on a busy 2-core machine


def test_the_container_and_client_tiers_pass_in_a_copy_without_the_examples(
    tmp_path: Path, image: str, base_image: str, docker_client: docker.DockerClient
) -> None:
    # `image` has built the runtime lock's wheels (.cache/wheels): the copy's offline build
    # needs them inside its own build context.
    copy = replaced_copy(tmp_path)
    shutil.copytree(REPO / ".cache" / "wheels", copy / ".cache" / "wheels")
    tag = f"service-template:copy-{SESSION}"
    env = {
        **environment(copy),
        "ST_TEST_IMAGE": tag,
        "ST_REQUIRE_DOCKER": "1",
        "ST_REQUIRE_TOOLS": "1",
        "BASE_IMAGE": base_image,
    }
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-rs",
                "tests/container",
                "tests/clients",
                f"--ignore={THIS}",
            ],
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=LIMIT,
            check=False,
        )
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag, force=True)
    output = (result.stdout + result.stderr)[-5000:]
    assert result.returncode == 0, output
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary, output
    assert "skipped" not in summary, output  # a skip is not a pass
    note(f"copy without the examples, with {NAME} added: container and client tiers {summary}")
    assert definition.load(copy / "compose" / "compose.yaml", {}).app_names() == [NAME]
