"""The CI scripts that leave something running after they end, run with stand-ins for the
programs they start (the real engine is shared, and a test may not start or stop it)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

# `docker info` answers once the stand-in engine has started; the engine records its pid.
FAKE_DOCKER = """#!/usr/bin/env bash
case $1 in
    info) [[ -f "$FAKE_STATE/started" ]] ;;
    version) echo "0.0 (API 0.0)" ;;
    *) exit 1 ;;
esac
"""
FAKE_DOCKERD = """#!/usr/bin/env bash
echo $$ >"$FAKE_STATE/engine.pid"
touch "$FAKE_STATE/started"
exec sleep 120
"""


@pytest.fixture
def fake_tools(tmp_path: Path) -> Iterator[dict[str, str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("docker", FAKE_DOCKER), ("dockerd", FAKE_DOCKERD)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_STATE": str(tmp_path),
        "DOCKERD_LOG": str(tmp_path / "dockerd.log"),
        "DOCKERD_PID_FILE": str(tmp_path / "docker.pid"),
        "DOCKERD_START_TIMEOUT": "30",
    }
    yield env
    engine = tmp_path / "engine.pid"
    if engine.exists():
        os.kill(int(engine.read_text()), signal.SIGTERM)


def test_start_docker_under_flock_leaves_the_lock_free_while_the_engine_runs(
    tmp_path: Path, fake_tools: dict[str, str]
) -> None:
    lock = tmp_path / "docker.lock"
    lock.touch()
    done = subprocess.run(
        ["flock", str(lock), "bash", str(REPO / "scripts" / "ci" / "start-docker.sh")],
        env=fake_tools,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "engine ready" in done.stderr
    engine = int((tmp_path / "engine.pid").read_text())
    os.kill(engine, 0)  # still running after the script ended
    # The engine holds no descriptor of the lock, so the next `flock` gets it at once.
    held = [
        fd
        for fd in os.listdir(f"/proc/{engine}/fd")
        if os.path.realpath(f"/proc/{engine}/fd/{fd}") == str(lock)
    ]
    assert held == []
    with lock.open() as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # raises BlockingIOError if held
