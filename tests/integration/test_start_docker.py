"""``scripts/ci/start-docker.sh`` against stand-in ``docker`` and ``dockerd`` commands: a stale
containerd pid file does not stop the engine from starting. That the engine holds no lock of its
caller is ``test_ci_scripts.py``'s test (its stand-in engine outlives the script).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

SCRIPT = REPO / "scripts" / "ci" / "start-docker.sh"

# `docker info` fails until the stand-in engine has started; the engine records its descriptors.
FAKE_DOCKER = """#!/bin/bash
[[ -f "$FAKE/up" ]] || exit 1
[[ $1 == version ]] && echo stand-in
exit 0
"""
FAKE_DOCKERD = """#!/bin/bash
ls -l /proc/$$/fd >"$FAKE/fds"
touch "$FAKE/up"
sleep 3
"""


def start(tmp_path: Path, lock: Path, containerd_pid: str | None = None) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("docker", FAKE_DOCKER), ("dockerd", FAKE_DOCKERD)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    containerd_pid_file = tmp_path / "containerd.pid"
    if containerd_pid is not None:
        containerd_pid_file.write_text(containerd_pid)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "FAKE": str(tmp_path),
        "DOCKERD_LOG": str(tmp_path / "dockerd.log"),
        "DOCKERD_PID_FILE": str(tmp_path / "docker.pid"),
        "CONTAINERD_PID_FILE": str(containerd_pid_file),
        "DOCKERD_START_TIMEOUT": "30",
    }
    done = subprocess.run(
        ["flock", str(lock), "bash", str(SCRIPT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "engine ready: stand-in" in done.stderr
    return done.stderr


def test_a_containerd_pid_file_naming_another_process_is_removed(tmp_path: Path) -> None:
    # This test's own pid: alive, and not containerd (what a restored machine leaves behind).
    stderr = start(tmp_path, tmp_path / "docker.lock", containerd_pid=str(os.getpid()))
    assert "removing stale" in stderr and "containerd.pid" in stderr
    assert not (tmp_path / "containerd.pid").exists()
