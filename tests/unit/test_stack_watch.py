"""``up --docker --watch`` announces the watch only once Compose's watcher is set up.

Compose prints "Watch enabled" when its file watcher runs; a file saved before that is never
synced. These tests stand a small program in for ``docker compose watch`` (the real one is
exercised in tests/container/test_stack_docker.py) to pin the order and the failure paths.
"""

from __future__ import annotations

import io
import sys
import time
from types import SimpleNamespace
from typing import Any

import pytest

from scripts.stacklib import lifecycle
from scripts.stacklib.errors import StackError
from scripts.stacklib.ui import UI


def context(program: str, err: io.StringIO) -> Any:
    docker = SimpleNamespace(argv=lambda _state, *_args: [sys.executable, "-c", program])
    return SimpleNamespace(docker=docker, ui=UI(out=io.StringIO(), err=err))


def test_the_watch_is_announced_only_after_compose_says_it_is_enabled() -> None:
    err = io.StringIO()
    program = (
        "import sys, time\n"
        "print('preparing', flush=True)\n"
        "time.sleep(1.0)\n"
        "print('Watch enabled', flush=True)\n"
        "print('Syncing service \"hello\" after 1 changes were detected', flush=True)\n"
        "time.sleep(30)\n"
    )
    started = time.monotonic()
    watcher = lifecycle.start_watch(context(program, err), None, {})  # type: ignore[arg-type]
    try:
        assert time.monotonic() - started >= 1.0
        assert "each save is synced" in err.getvalue()
        assert "  | preparing" in err.getvalue()
        deadline = time.monotonic() + 10
        while "Syncing service" not in err.getvalue() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert '  | Syncing service "hello"' in err.getvalue()
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)


def test_a_watch_that_ends_before_watching_is_one_clear_error() -> None:
    err = io.StringIO()
    program = "import sys\nprint('no service has a develop section', flush=True)\nsys.exit(1)\n"
    with pytest.raises(StackError, match=r"compose watch ended \(exit status 1\) before"):
        lifecycle.start_watch(context(program, err), None, {})  # type: ignore[arg-type]
    assert "  | no service has a develop section" in err.getvalue()
    assert "each save is synced" not in err.getvalue()


def test_a_watch_that_never_starts_is_stopped_and_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lifecycle, "WATCH_START_TIMEOUT", 0.5)
    err = io.StringIO()
    with pytest.raises(StackError, match="did not start within"):
        lifecycle.start_watch(  # type: ignore[arg-type]
            context("import time\ntime.sleep(60)\n", err), None, {}
        )
