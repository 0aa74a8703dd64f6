"""The Compose stack (compose/compose.yaml) under the real ``docker compose``: up healthy, calls
through the gateway, tokens, what is published, a backend killed and recovered, Prometheus.

One stack per module, with the ``metrics`` profile (Debian's Prometheus as an image, since no
registry can be reached here), under a project name of its own. Compose is given an env file of
the test's own, so a developer's compose/.env changes nothing; every value not set in it is the
compose file's default (e.g. the gateway published on 127.0.0.1). Published host ports are
chosen by the engine (port 0), so nothing races for a port.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import docker
import pytest

from .conftest import SESSION
from .support import (
    REPO,
    TOKEN,
    compose_variables,
    get,
    note,
    result_of,
    rpc,
    status_of,
    wait_for,
)

pytestmark = pytest.mark.container

COMPOSE_FILE = REPO / "compose" / "compose.yaml"
SERVICES = {"hello", "compute", "gateway", "prometheus"}
BACKEND_UNAVAILABLE = -32010
ACCESS_DENIED = -32001
COMPOSE_VARIABLES = compose_variables(COMPOSE_FILE)
# Each service has a token of its own; the tests call the gateway with TOKEN.
TOKENS = {"hello": "hello-" + TOKEN, "compute": "compute-" + TOKEN, "gateway": TOKEN}
# The token files' group, which the services join (SECRETS_GID): neither root's nor theirs when
# the tests run as root (CI), else the caller's own group (what compose/README.md tells users).
SECRETS_GID = 4711 if os.geteuid() == 0 else os.getgid()


@dataclass
class Stack:
    """One Compose project made from compose/compose.yaml."""

    compose: list[str]
    project: str
    env_file: Path
    env: dict[str, str]

    def run(
        self, *args: str, timeout: float = 120, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        argv = [
            *self.compose,
            "--project-name",
            self.project,
            "--env-file",
            str(self.env_file),
            "--file",
            str(COMPOSE_FILE),
            "--profile",
            "metrics",
            *args,
        ]
        proc = subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
            )
        return proc

    def ps(self) -> dict[str, dict[str, Any]]:
        """``docker compose ps --all --format json`` by service name."""
        out = self.run("ps", "--all", "--format", "json").stdout.strip()
        # Compose prints one object per line; versions before 2.21 printed one array.
        rows = json.loads(out) if out.startswith("[") else [json.loads(x) for x in out.splitlines()]
        return {row["Service"]: row for row in rows}

    def url(self, service: str, port: int) -> str:
        address = self.run("port", service, str(port)).stdout.strip()
        assert address.startswith("127.0.0.1:"), address
        return f"http://{address}"

    def leftovers(self, client: docker.DockerClient) -> list[str]:
        """Containers, networks and volumes that still carry the project's label."""
        label = {"label": f"com.docker.compose.project={self.project}"}
        found = [f"container {c.name}" for c in client.containers.list(all=True, filters=label)]
        found += [f"network {n.name}" for n in client.networks.list(filters=label)]
        found += [f"volume {v.name}" for v in client.volumes.list(filters=label)]
        return found

    def remove_by_label(self, client: docker.DockerClient) -> None:
        """Force-remove whatever ``down`` left behind (containers first, they hold the rest)."""
        label = {"label": f"com.docker.compose.project={self.project}"}
        for container in client.containers.list(all=True, filters=label):
            container.remove(force=True, v=True)
        for network in client.networks.list(filters=label):
            network.remove()
        for volume in client.volumes.list(filters=label):
            volume.remove(force=True)

    def down(self) -> None:
        self.run("down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=180)


@pytest.fixture(scope="module")
def stack(
    compose: list[str],
    docker_client: docker.DockerClient,
    image: str,
    prometheus_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The whole stack up and healthy (``up --wait``); torn down, and checked gone, at the end."""
    folder = tmp_path_factory.mktemp("compose")
    lines = [f"SERVICE_IMAGE={image}", f"PROMETHEUS_IMAGE={prometheus_image}"]
    for name, token in TOKENS.items():
        token_file = folder / f"{name}_token"
        token_file.write_text(token + "\n")
        # As compose/README.md says: group read for the group the services join, no world read.
        os.chown(token_file, -1, SECRETS_GID)
        token_file.chmod(0o640)
        lines.append(f"{name.upper()}_TOKEN_FILE={token_file}")
    lines += [f"SECRETS_GID={SECRETS_GID}", "GATEWAY_PORT=0", "PROMETHEUS_PORT=0"]
    env_file = folder / "compose.env"
    env_file.write_text("\n".join(lines) + "\n")
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in COMPOSE_VARIABLES and not key.startswith("COMPOSE_")
    }
    made = Stack(compose, f"st-test-{SESSION}", env_file, env)
    try:
        started = time.monotonic()
        up = made.run(
            "up",
            "--detach",
            "--wait",
            "--wait-timeout",
            "120",
            "--no-build",
            "--pull",
            "never",
            timeout=300,
            check=False,
        )
        if up.returncode != 0:
            logs = made.run("logs", "--no-color", "--tail", "20", check=False).stdout
            pytest.fail(f"docker compose up failed:\n{up.stderr[-3000:]}\n{logs[-4000:]}")
        note(f"compose stack (4 services) up and healthy in {time.monotonic() - started:.1f} s")
        yield made
    finally:
        down = made.run(
            "down", "--volumes", "--remove-orphans", "--timeout", "10", timeout=180, check=False
        )
        left = made.leftovers(docker_client)
        if left:
            made.remove_by_label(docker_client)  # never leave them on the machine
        assert not left, f"docker compose down (exit {down.returncode}) left {left}"


def api(stack: Stack) -> str:
    return stack.url("gateway", 8000) + "/api"


def test_every_service_of_the_stack_turns_healthy(stack: Stack) -> None:
    rows = stack.ps()
    assert set(rows) == SERVICES
    states = {name: (row["State"], row["Health"]) for name, row in rows.items()}
    assert states == {name: ("running", "healthy") for name in SERVICES}


def test_gateway_calls_reach_both_backends(stack: Stack) -> None:
    url = api(stack)
    assert result_of(rpc(url, "greet", ["x"])) == "hello x"
    assert result_of(rpc(url, "add", [1, 2])) == 3
    assert result_of(rpc(url, "greet_and_add", ["x", 1, 2])) == {"greeting": "hello x", "sum": 3}


def test_private_method_refuses_a_missing_or_wrong_token_and_accepts_the_right_one(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    url = api(stack)
    for token in (None, "wrong-" + TOKEN):
        answer = rpc(url, "private_greet", ["x"], token=token)
        assert answer.get("error", {}).get("code") == ACCESS_DENIED, answer
    # hello's token is hello's: the gateway does not accept it from a caller ...
    answer = rpc(url, "private_greet", ["x"], token=TOKENS["hello"])
    assert answer.get("error", {}).get("code") == ACCESS_DENIED, answer
    answer = rpc(url, "private_greet", ["x"], token=TOKEN)
    # ... but sends it to hello's private method (SERVICE_PEER_TOKEN_FILES).
    assert result_of(answer) == "this is secret: hello x"
    # The tokens are mounted secret files, so `docker inspect` shows them nowhere.
    for row in stack.ps().values():
        config = docker_client.containers.get(row["ID"]).attrs["Config"]
        for token in TOKENS.values():
            assert not any(token in item for item in config.get("Env") or []), row["Service"]


def test_each_service_reads_its_token_file_by_group_without_world_read(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    # Outside Swarm, Compose bind-mounts a file secret with the host file's owner and mode
    # (it ignores uid/gid/mode with a warning); the services read it through SECRETS_GID.
    probe = (
        "import os, stat, json; s = os.stat('/run/secrets/api_token'); "
        "print(json.dumps([oct(stat.S_IMODE(s.st_mode)), s.st_gid, os.getuid(), os.getgroups(), "
        "open('/run/secrets/api_token').read().strip()]))"
    )
    rows = stack.ps()
    for name, token in TOKENS.items():
        container = docker_client.containers.get(rows[name]["ID"])
        code, output = container.exec_run(["/opt/venv/bin/python", "-c", probe])
        assert code == 0, output
        mode, gid, uid, groups, read = json.loads(output)
        assert (mode, gid, uid, read) == ("0o640", SECRETS_GID, 10001, token), name
        assert SECRETS_GID in groups


def test_only_the_gateway_and_prometheus_are_published_and_only_on_loopback(
    stack: Stack,
) -> None:
    published = {
        name: sorted(
            (p["URL"], p["TargetPort"]) for p in row.get("Publishers") or [] if p["PublishedPort"]
        )
        for name, row in stack.ps().items()
    }
    assert published == {
        "hello": [],
        "compute": [],
        "gateway": [("127.0.0.1", 8000)],
        "prometheus": [("127.0.0.1", 9090)],
    }


def test_prometheus_scrapes_every_service_and_answers_promql(stack: Stack) -> None:
    result_of(rpc(api(stack), "greet_and_add", ["prometheus", 1, 2]))
    prometheus = stack.url("prometheus", 9090)
    wanted = {"hello": "up", "compute": "up", "gateway": "up"}

    def targets() -> dict[str, str] | None:
        active = get(f"{prometheus}/api/v1/targets").json()["data"]["activeTargets"]
        health = {t["labels"]["service"]: t["health"] for t in active}
        return health if health == wanted else None

    started = time.monotonic()
    wait_for(targets, 60, "every service scraped (target health up)", interval=0.5)

    def counters() -> dict[tuple[str, str], float] | None:
        query = urlencode({"query": "rpc_calls_total"})
        doc = get(f"{prometheus}/api/v1/query?{query}").json()
        assert doc["status"] == "success", doc
        seen = {
            (r["metric"]["service"], r["metric"]["method"]): float(r["value"][1])
            for r in doc["data"]["result"]
            if r["metric"].get("outcome") == "ok"
        }
        calls = [("gateway", "greet_and_add"), ("hello", "say_hello"), ("compute", "add")]
        return seen if all(seen.get(call, 0) >= 1 for call in calls) else None

    # Counters come with the first scrape after the call (scrape_interval 5 s).
    wait_for(counters, 60, "rpc_calls_total of every service in PromQL", interval=0.5)
    took = time.monotonic() - started
    note(f"Prometheus (profile metrics): every service's counters in PromQL after {took:.1f} s")


def test_killed_backend_fails_gateway_readiness_and_calls_fast_then_recovers(
    stack: Stack,
) -> None:
    gateway = stack.url("gateway", 8000)
    url = f"{gateway}/api"
    stack.run("kill", "compute")
    try:
        wait_for(
            lambda: status_of(f"{gateway}/readyz") == 503,
            10,
            "gateway /readyz answering 503 after compute was killed",
        )
        started = time.monotonic()
        answer = rpc(url, "add", [1, 2], timeout=10)
        took = time.monotonic() - started
        assert took < 5.0, f"add took {took:.2f} s with compute down"
        error = answer.get("error", {})
        assert error.get("code") == BACKEND_UNAVAILABLE, answer
        assert "compute" in error.get("message", ""), answer
        # The other backend is unaffected.
        assert result_of(rpc(url, "greet", ["x"])) == "hello x"

        stack.run("start", "compute")
        restarted = time.monotonic()
        wait_for(lambda: status_of(f"{gateway}/readyz") == 200, 60, "gateway /readyz 200 again")

        def adds() -> bool:
            return rpc(url, "add", [1, 2], timeout=10).get("result") == 3

        wait_for(adds, 30, "add through the gateway again")
        note(
            f"compute killed: add failed in {took * 1000:.0f} ms (-32010); "
            f"recovered {time.monotonic() - restarted:.1f} s after `start compute`"
        )
    finally:
        stack.run("start", "compute", check=False)  # leave the stack whole for later tests


def test_down_leaves_no_container_network_or_volume(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    assert stack.leftovers(docker_client), "the stack's resources are not found by label"
    stack.down()
    assert stack.leftovers(docker_client) == []
