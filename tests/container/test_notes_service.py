"""The notes example in the template's Compose stack (profile ``db``): it waits for its PostgreSQL
to be healthy, writes and reads rows through it, is unhealthy with a clear error while the
database is stopped, and finds its rows again on the named volume when it is back. notes is not
published (no ``ports:``), so the test calls it from inside its own container, with the image's
Python. ``stack.py remove notes`` deletes this file with the example."""

from __future__ import annotations

import json
import time
from typing import Any

import docker
import pytest

from .compose_stack import Stack, secret_for
from .support import note, wait_for

pytestmark = pytest.mark.container

UNAVAILABLE = -32010
# One JSON-RPC call (or a probe) from inside the container: prints the status and the body.
CALL = """
import json, sys, urllib.request, urllib.error
path, body = sys.argv[1], sys.argv[2]
request = urllib.request.Request("http://127.0.0.1:8000" + path, body.encode() or None,
                                 {"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(request, timeout=10) as response:
        print(response.status, response.read().decode())
except urllib.error.HTTPError as error:
    print(error.code, error.read().decode())
"""


def inside(stack: Stack, client: docker.DockerClient, path: str, body: str = "") -> tuple[int, Any]:
    container = client.containers.get(stack.ps()["notes"]["ID"])
    code, output = container.exec_run(["/opt/venv/bin/python", "-I", "-c", CALL, path, body])
    assert code == 0, output
    status, _, text = output.decode().strip().partition(" ")
    return int(status), json.loads(text) if text else None


def call(stack: Stack, client: docker.DockerClient, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    status, answer = inside(stack, client, "/api", body)
    assert status == 200, (status, answer)  # errors included: never a 5xx
    return answer


def test_notes_reads_and_writes_its_database_and_survives_the_database_going_away(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    rows = stack.ps()
    assert rows["postgres"]["Health"] == "healthy" and rows["notes"]["Health"] == "healthy"
    added = call(stack, docker_client, "add", "through compose")["result"]
    assert call(stack, docker_client, "get", added["id"])["result"] == added

    stack.run("stop", "postgres")
    try:
        # Not ready (so Docker marks it unhealthy) and a clear error, while the database is away.
        status, ready = inside(stack, docker_client, "/readyz")
        assert status == 503
        assert ready["checks"]["database:responseTime"][0]["status"] == "fail"
        started = time.monotonic()
        answer = call(stack, docker_client, "add", "while it is away")
        took = time.monotonic() - started
        assert answer["error"]["code"] == UNAVAILABLE, answer
        assert answer["error"]["message"] == "database is unavailable"
        wait_for(
            lambda: stack.ps()["notes"]["Health"] == "unhealthy" or None,
            60,
            "notes unhealthy with its database stopped",
            interval=1,
        )
    finally:
        stack.run("start", "postgres")
    restarted = time.monotonic()
    wait_for(
        lambda: stack.ps()["notes"]["Health"] == "healthy" or None,
        90,
        "notes healthy again",
        interval=1,
    )
    # The row is on the named volume: a stopped database lost nothing.
    assert call(stack, docker_client, "get", added["id"])["result"] == added
    note(
        f"notes: database stopped -> -32010 in {took * 1000:.0f} ms and unhealthy; healthy "
        f"again {time.monotonic() - restarted:.1f} s after `start postgres`"
    )


def test_the_database_password_is_in_no_environment_and_no_log(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    password = secret_for("DB_PASSWORD_FILE")
    for service in ("notes", "postgres"):
        container = docker_client.containers.get(stack.ps()[service]["ID"])
        assert not any(password in item for item in container.attrs["Config"]["Env"]), service
        assert password not in container.logs().decode(errors="replace"), service
