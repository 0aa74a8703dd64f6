"""``serve --workers N``: a worker that dies is replaced; one that keeps dying stops the server."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from service_template.testing import wait_until
from tests.conftest import ServiceProcess
from tests.integration.services import result_of

pytestmark = pytest.mark.integration

OBSERVED = "tests.integration.services:ObservedService"

CRASHING = """
import os

from service_template import MicroService, public_method


class Crashing(MicroService):
    name = "crashing"

    async def on_start(self) -> None:
        # Once the test has created this file, every worker that starts fails at once.
        if os.path.exists(os.environ["CRASH_FLAG"]):
            raise RuntimeError("boom")

    @public_method
    def getpid(self) -> int:
        return os.getpid()
"""


def _pids(port: int, want: int = 2) -> set[int]:
    pids: set[int] = set()
    for _ in range(300):  # a fresh connection each time; any worker may accept
        pids.add(result_of(port, "getpid"))
        if len(pids) == want:
            break
    return pids


def test_killed_workers_are_replaced_and_calls_keep_succeeding(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(OBSERVED, args=("--workers", "2"))
    seen = _pids(service.port)
    assert len(seen) == 2
    for _ in range(3):  # more than once: the budget is not a single restart
        victim = result_of(service.port, "getpid")
        os.kill(victim, signal.SIGKILL)
        known = frozenset(seen)

        def a_new_worker_answers(known: frozenset[int] = known) -> bool:
            try:
                pid = result_of(service.port, "getpid")
            except OSError:
                return False
            seen.add(pid)
            return pid not in known

        wait_until(a_new_worker_answers, 15, f"a new worker replaces {victim}")
    assert len(seen) >= 5
    assert service.proc.poll() is None
    service.stop_cleanly()
    assert sum("replacing it" in line for line in service.lines) == 3


def test_a_worker_that_keeps_dying_stops_the_server_with_status_1(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    (tmp_path / "crashing.py").write_text(CRASHING, encoding="utf-8")
    service = start_service(
        f"{tmp_path / 'crashing.py'}:Crashing",
        args=("--workers", "2"),
        env={"CRASH_FLAG": str(tmp_path / "crash")},
    )
    (tmp_path / "crash").touch()
    os.kill(result_of(service.port, "getpid"), signal.SIGKILL)
    started = time.monotonic()
    assert service.proc.wait(timeout=60) == 1
    assert time.monotonic() - started < 60
    service.close_pipe()
    assert any("keeps dying" in line for line in service.lines)
    assert sum("replacing it" in line for line in service.lines) == 10
