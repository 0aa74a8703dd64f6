"""The example from gemstone 0.3.1's project page runs as written, import line aside.

The script binds port 5000 itself, as the page's example does, so this test needs that port free
on 127.0.0.1; it says so plainly when it is not, rather than talking to whatever holds it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service_template import RemoteClient
from tests.conftest import ServiceProcess

pytestmark = pytest.mark.integration

# Verbatim from gemstone 0.3.1's README, with only the import line changed.
EXAMPLE = """\
from service_template import MicroService, public_method, private_api_method



class HelloWorldService(MicroService):
    name = "hello.world.service"
    host = "127.0.0.1"
    port = 5000

    @public_method
    def say_hello(self, name):
        return "hello {}".format(name)

    @private_api_method
    def say_private_hello(self, name):
        return "this is secret: hello {}".format(name)

    def api_token_is_valid(self, api_token):
        return api_token == "hello_world_token"


if __name__ == '__main__':
    service = HelloWorldService()
    service.start()
"""
PORT = 5000
BASE = f"http://127.0.0.1:{PORT}"


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        # As the server binds: connections of an earlier run in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_until_live(proc: subprocess.Popen[str], url: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read() if proc.stdout else ""
            pytest.fail(f"the example exited with {proc.returncode} before serving:\n{output}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{url} did not answer within {timeout}s")


@pytest.fixture
def example_script(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """``python hello_world_service.py`` in a fresh directory, stopped afterwards."""
    (tmp_path / "hello_world_service.py").write_text(EXAMPLE, encoding="utf-8")
    if not port_is_free(PORT):
        pytest.fail(f"port {PORT} on 127.0.0.1 is in use; the gemstone example needs it")
    proc = subprocess.Popen(
        [sys.executable, "hello_world_service.py"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_live(proc, f"{BASE}/livez")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


HELLO = {"jsonrpc": "2.0", "method": "say_hello", "params": {"name": "world"}, "id": 1}
PRIVATE = {"jsonrpc": "2.0", "method": "say_private_hello", "params": ["world"], "id": 2}


@pytest.mark.usefixtures("example_script")
def test_the_example_answers_say_hello_over_http() -> None:
    assert post(f"{BASE}/api", HELLO) == (
        200,
        {"jsonrpc": "2.0", "result": "hello world", "id": 1},
    )


@pytest.mark.usefixtures("example_script")
def test_the_example_private_method_needs_its_token() -> None:
    denied = {"jsonrpc": "2.0", "error": {"code": -32001, "message": "Access denied"}, "id": 2}
    assert post(f"{BASE}/api", PRIVATE) == (200, denied)
    assert post(f"{BASE}/api", PRIVATE, {"X-Api-Token": "hello_world"}) == (200, denied)
    assert post(f"{BASE}/api", PRIVATE, {"X-Api-Token": "hello_world_token"}) == (
        200,
        {"jsonrpc": "2.0", "result": "this is secret: hello world", "id": 2},
    )


@pytest.mark.usefixtures("example_script")
def test_the_pages_client_lines_work_against_the_example() -> None:
    with RemoteClient("http://localhost:5000/api") as client:
        assert client.name == "hello.world.service"
        assert client.methods.say_hello("world") == "hello world"


def test_the_example_stops_on_sigterm_with_status_0(
    example_script: subprocess.Popen[str],
) -> None:
    example_script.send_signal(signal.SIGTERM)
    assert example_script.wait(10) == 0
    assert example_script.stdout is not None
    messages = [
        json.loads(line).get("msg") for line in example_script.stdout if line.startswith("{")
    ]
    assert messages.index("draining") < messages.index("stopped")


def test_the_example_runs_under_serve_with_a_file_target(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    (tmp_path / "hello_world_service.py").write_text(EXAMPLE, encoding="utf-8")
    service = start_service("hello_world_service.py:HelloWorldService", cwd=tmp_path)
    assert service.port != PORT  # --port 0 overrides the class attribute
    assert post(service.url, HELLO)[1]["result"] == "hello world"
    with RemoteClient(service.url) as client:
        assert client.name == "hello.world.service"
        assert client.methods.say_hello("world") == "hello world"
        token_headers = {"X-Api-Token": "hello_world_token"}
        assert post(service.url, PRIVATE, token_headers)[1]["result"] == (
            "this is secret: hello world"
        )
    assert service.stop() == 0
