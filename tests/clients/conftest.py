"""Live services for the third-party client tests: the example compute service in a
subprocess on a free loopback port, with the suite's token (``tests.conftest.TOKEN``).

Each module gets its own process (the clients only read from it), and the process stops at the
end of the module with SIGTERM, as an orchestrator stops it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.conftest import TOKEN, ServiceProcess, launch, missing_tool

COMPUTE = "services.compute:ComputeService"

__all__ = ["COMPUTE", "TOKEN", "require_command", "served"]


def require_command(name: str, how: str) -> str:
    """The path of command ``name``; fails in CI, skips elsewhere, when it is not installed."""
    path = shutil.which(name)
    if path is None:
        missing_tool(f"{name} is not installed ({how})")
    assert path is not None
    return path


def served(env: dict[str, str] | None = None) -> Iterator[ServiceProcess]:
    """A compute service for the length of a fixture, stopped cleanly (exit 0) after."""
    service = launch(COMPUTE, env=env)
    try:
        yield service
    finally:
        service.stop_cleanly()


@pytest.fixture(scope="module")
def compute() -> Iterator[ServiceProcess]:
    """The compute service with the suite's token: public math, ``fibonacci`` errors with data,
    the private ``reset``. One log line per call lets a test see a notification arrive."""
    yield from served({"SERVICE_LOG_FORMAT": "json"})
