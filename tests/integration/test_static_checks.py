"""The linters a reviewer would run on the container and Compose files pass with no ignores."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, missing_tool

pytestmark = pytest.mark.integration
VENV_BIN = Path(sys.executable).parent
HINT = "run scripts/ci/install-tools.sh (root, Debian)"


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(VENV_BIN))
    if found is None:
        missing_tool(f"{name} is not installed: {HINT}")
    assert found is not None
    return found


def check(*cmd: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        cmd,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"


def test_hadolint_passes_on_every_dockerfile():
    check(
        tool("hadolint"),
        "Dockerfile",
        "compose/prometheus.Dockerfile",
        "compose/postgres/Dockerfile",
    )


def test_yamllint_passes_on_every_yaml_file():
    check(tool("yamllint"), "--strict", ".")


# compose/prometheus.yml needs its rules beside it, as compose.yaml mounts them:
# tests/integration/test_observability.py checks the two together with promtool.


def test_compose_file_is_valid_with_every_profile():
    docker = tool("docker")
    check(
        docker,
        "compose",
        "-f",
        "compose/compose.yaml",
        "--profile",
        "*",
        "config",
        "--quiet",
        env={name: "/dev/null" for name in TOKEN_FILES},
    )


# Each secret file compose.yaml requires (`${<NAME>_TOKEN_FILE:?...}`, the database password).
TOKEN_FILES = tuple(
    sorted(
        set(
            re.findall(r"\$\{([A-Z0-9_]+_FILE):\?", (REPO / "compose" / "compose.yaml").read_text())
        )
    )
)


@pytest.mark.parametrize("missing", TOKEN_FILES)
def test_compose_refuses_to_run_without_each_token_file(missing: str) -> None:
    docker = tool("docker")
    env = {k: v for k, v in os.environ.items() if k not in TOKEN_FILES}
    env.update({name: "/dev/null" for name in TOKEN_FILES if name != missing})
    result = subprocess.run(
        [docker, "compose", "-f", "compose/compose.yaml", "--env-file", "/dev/null", "config"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode != 0
    assert f"required variable {missing} is missing a value" in result.stderr


def test_shell_scripts_pass_shellcheck():
    scripts = sorted(
        str(p.relative_to(REPO)) for d in ("scripts", "compose") for p in (REPO / d).rglob("*.sh")
    )
    assert scripts
    check(tool("shellcheck"), *scripts, ".ci/run")
