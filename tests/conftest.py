"""Shared fixtures: real service processes on free loopback ports.

``start_service(target, env=..., args=...)`` runs ``python -m service_template serve TARGET
--port 0`` as a subprocess, reads the port from its "listening" log line (no port races, no
sleeps) and stops it at the end of the test with SIGTERM, killing it only if it will not stop.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOKEN = "test-token-0123456789"


@dataclass
class ServiceProcess:
    """A service running in a subprocess."""

    proc: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/api"

    def logs(self) -> list[dict[str, object]]:
        """Every JSON log line written so far (stdout)."""
        self._drain_queue()
        out = []
        for line in self.lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def _drain_queue(self) -> None:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return
            if line is not None:
                self.lines.append(line)

    def wait_for_log(
        self, predicate: Callable[[dict[str, object]], bool], timeout: float = 10.0
    ) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.logs():
                if predicate(entry):
                    return entry
            time.sleep(0.02)
        raise AssertionError(
            f"no matching log line within {timeout}s; got:\n" + "\n".join(self.lines[-20:])
        )

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close_pipe()

    def stop_cleanly(self, timeout: float = 15.0) -> None:
        """SIGTERM, and fail unless the process exits 0 in time (killing it if it hangs)."""
        try:
            code = self.stop(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.close_pipe()
            raise AssertionError("service did not stop on SIGTERM") from None
        assert code == 0, "\n".join(self.lines[-20:])

    def close_pipe(self) -> None:
        """After exit: collect the last lines and close the pipe (no ResourceWarning)."""
        if self.proc.poll() is None:
            return
        if self.reader is not None:
            self.reader.join(timeout=5)
        self._drain_queue()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _reader(proc: subprocess.Popen[str], sink: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        sink.put(line.rstrip("\n"))
    sink.put(None)


def wait_http(url: str, timeout: float = 20.0, status: int | None = 200) -> None:
    """Poll ``url`` until it answers (with ``status`` if given)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if status is None or response.status == status:
                    return
                last = response.status
        except urllib.error.HTTPError as exc:
            last = exc.code
            if status is None:
                return
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"{url} did not answer {status} within {timeout}s (last: {last})")


def launch(
    target: str,
    env: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
    cwd: Path | None = None,
    ready: bool = True,
    command: list[str] | None = None,
) -> ServiceProcess:
    """Start a service subprocess on a free port and wait until it listens (and is live).

    ``command`` replaces ``python -m service_template serve TARGET --port 0 ARGS`` (then the
    port must come from ``env``, e.g. ``SERVICE_PORT=0``)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    full_env.update({"SERVICE_API_TOKEN": TOKEN, "PYTHONUNBUFFERED": "1"})
    full_env.update(env or {})
    cmd = command or [
        sys.executable,
        "-m",
        "service_template",
        "serve",
        target,
        "--port",
        "0",
        *args,
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=cwd or REPO,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sink: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_reader, args=(proc, sink), daemon=True)
    reader.start()
    service = ServiceProcess(proc, 0, reader=reader, _queue=sink)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        service._drain_queue()
        for entry in service.logs():
            if entry.get("msg") == "listening" and "port" in entry:
                service.port = int(entry["port"])  # type: ignore[arg-type]
                break
        if service.port or proc.poll() is not None:
            break
        time.sleep(0.02)
    if not service.port:
        proc.kill()
        proc.wait()
        service.close_pipe()
        raise AssertionError(f"{target} did not start:\n" + "\n".join(service.lines[-30:]))
    if ready:
        wait_http(f"{service.base}/livez")
    return service


@pytest.fixture
def start_service() -> Iterator[Callable[..., ServiceProcess]]:
    """Factory fixture: every service it starts is stopped (SIGTERM, then kill) afterwards."""
    started: list[ServiceProcess] = []

    def start(target: str, **kwargs: object) -> ServiceProcess:
        service = launch(target, **kwargs)  # type: ignore[arg-type]
        started.append(service)
        return service

    yield start
    for service in started:
        try:
            service.stop(timeout=10)
        except subprocess.TimeoutExpired:
            service.proc.kill()
            service.proc.wait()
            service.close_pipe()


def missing_tool(message: str) -> None:
    """A tool a test needs is absent: fail in CI (``ST_REQUIRE_TOOLS=1``), skip elsewhere.

    CI installs every tool (``.ci/run``), so there a missing one is a broken setup, never a
    pass; on a developer machine the test skips with a one-line reason saying how to get it.
    """
    if os.environ.get("ST_REQUIRE_TOOLS") == "1" or os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
