"""Logs a person can read at a terminal: text lines (coloured on a terminal) and tracebacks as
tracebacks; JSON lines when the output is not a terminal, or when asked."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SERVICE = """
from service_template import MicroService, public_method


class Chatty(MicroService):
    name = "chatty"

    @public_method
    def echo(self, text: str) -> str:
        return text

    @public_method
    def fail(self) -> None:
        raise ValueError("boom")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def call(port: int, method: str, params: list[object]) -> None:
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": 7}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def serve(
    tmp_path: Path, port: int, log_format: str | None, stdout: int
) -> subprocess.Popen[bytes]:
    (tmp_path / "chatty.py").write_text(SERVICE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    env.update(PYTHONUNBUFFERED="1")
    env.pop("NO_COLOR", None)
    if log_format is not None:
        env["SERVICE_LOG_FORMAT"] = log_format
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service_template",
            "serve",
            "chatty.py:Chatty",
            "--port",
            str(port),
        ],
        cwd=tmp_path,
        env=env,
        stdout=stdout,
        stderr=subprocess.STDOUT,
    )


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the service exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1):
                return
        except OSError:
            time.sleep(0.05)  # polling the health endpoint
    raise AssertionError("the service never answered")


def exercise(tmp_path: Path, log_format: str | None, terminal: bool) -> str:
    """Serve, make one good and one failing call, stop; everything the service printed."""
    port = free_port()
    if terminal:
        leader, follower = pty.openpty()
        process = serve(tmp_path, port, log_format, follower)
        os.close(follower)
    else:
        process = serve(tmp_path, port, log_format, subprocess.PIPE)
    try:
        wait_ready(port, process)
        call(port, "echo", ["hi"])
        call(port, "fail", [])
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    if not terminal:
        assert process.stdout is not None
        with process.stdout:
            return process.stdout.read().decode()
    chunks = []
    while select.select([leader], [], [], 0.5)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the pty's other side is closed: all read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return b"".join(chunks).decode()


def test_on_a_terminal_the_logs_are_coloured_text_with_tracebacks(tmp_path: Path) -> None:
    out = exercise(tmp_path, None, terminal=True)
    assert "{" not in out.split("call", 1)[0], out  # no JSON objects before the first call
    call_lines = [line for line in out.splitlines() if "echo" in line and "id=7" in line]
    assert call_lines, out
    assert "\x1b[32mok\x1b[0m" in call_lines[0]  # the outcome in green
    assert "Traceback (most recent call last)" in out
    assert 'raise ValueError("boom")' in out  # the traceback as a traceback, not a JSON string


def test_through_a_pipe_the_logs_stay_json(tmp_path: Path) -> None:
    out = exercise(tmp_path, None, terminal=False)
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    calls = [line for line in lines if line.get("msg") == "call"]
    assert [c["method"] for c in calls] == ["echo", "fail"]
    assert any("boom" in str(line.get("exc", "")) for line in lines)


def test_text_can_be_asked_for_without_a_terminal_and_then_has_no_colour(tmp_path: Path) -> None:
    out = exercise(tmp_path, "text", terminal=False)
    assert "\x1b[" not in out
    assert any(" echo " in line and "id=7" in line and " ok " in line for line in out.splitlines())


def test_json_can_be_asked_for_on_a_terminal(tmp_path: Path) -> None:
    out = exercise(tmp_path, "json", terminal=True)
    first = next(line for line in out.splitlines() if line.strip())
    assert json.loads(first)["msg"]
