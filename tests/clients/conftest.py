"""Live services for the third-party client tests: ``tests/clients/service.py`` in a
subprocess on a free loopback port, with the suite's token (``tests.conftest.TOKEN``).

Each module gets its own process (the clients only read from it), and the process stops at the
end of the module with SIGTERM, as an orchestrator stops it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TOKEN, ServiceProcess, launch, missing_tool

CASES = "tests.clients.service:CasesService"
JS = Path(__file__).resolve().parent / "js"  # package.json, its lock, the Node scripts
INSTALL_JS = "run: bash scripts/ci/node-tools.sh"

__all__ = ["CASES", "JS", "TOKEN", "require_command", "run_node", "served"]


def require_command(name: str, how: str) -> str:
    """The path of command ``name``; fails in CI, skips elsewhere, when it is not installed."""
    path = shutil.which(name)
    if path is None:
        missing_tool(f"{name} is not installed ({how})")
    assert path is not None
    return path


def require_js_packages() -> str:
    """The ``node`` command, once tests/clients/js has exactly its lock's packages installed
    (``npm ci`` by scripts/ci/node-tools.sh, which leaves the lock's hash beside them)."""
    node = require_command("node", f"Debian: nodejs; {INSTALL_JS}")
    lock = hashlib.sha256((JS / "package-lock.json").read_bytes()).hexdigest()
    stamp = JS / "node_modules" / ".package-lock.sha256"
    installed = stamp.read_text().strip() if stamp.is_file() else None
    if installed != lock:
        state = "not installed" if installed is None else "installed from an older lock"
        missing_tool(f"the npm packages of tests/clients/js are {state}; {INSTALL_JS}")
    return node


def run_node(script: str, *args: str, timeout: float = 120) -> Any:
    """Run ``tests/clients/js/SCRIPT ARGS...`` and return the JSON document it prints."""
    node = require_js_packages()
    done = subprocess.run(
        [node, script, *args], cwd=JS, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"node {script} failed:\n{done.stdout}{done.stderr}"
    return json.loads(done.stdout)


def served(env: dict[str, str] | None = None) -> Iterator[ServiceProcess]:
    """The cases service for the length of a fixture, stopped cleanly (exit 0) after."""
    service = launch(CASES, env=env)
    try:
        yield service
    finally:
        service.stop_cleanly()


@pytest.fixture(scope="module")
def service() -> Iterator[ServiceProcess]:
    """The cases service with the suite's token: public math, ``fibonacci`` errors with data,
    the private ``reset``. One log line per call lets a test see a notification arrive."""
    yield from served({"SERVICE_LOG_FORMAT": "json"})
