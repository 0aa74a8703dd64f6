"""``scripts/stack.py up --docker`` on a real engine, on a copy of the repository: the same stack
under the real Compose, reached by name for calls, status and smoke, and gone without a trace
(container, network, volume) after ``down``, Ctrl-C, a crash of the orchestrator or a service
that fails to start.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import yaml

from tests.scratch_copies import copy_worktree

from .support import REPO, compose_variables

pytestmark = pytest.mark.container

PROJECT_LABEL = "com.docker.compose.project"
FIXTURE = REPO / "tests" / "stackfixture" / "compose.yaml"
COMPOSE_VARIABLES = compose_variables(FIXTURE) | compose_variables(
    REPO / "compose" / "compose.yaml"
)


# Where the dev image imports the project from, and any copy of it left in site-packages.
WHERE_FROM = """
import json, pathlib, sysconfig, service_template, services
site = pathlib.Path(sysconfig.get_path("purelib"))
print(json.dumps({
    "service_template": service_template.__file__,
    "services": services.__file__,
    "installed copies": sorted(
        p.name for p in site.iterdir() if p.name in ("service_template", "services")
    ),
}))
"""


class Checkout:
    """A copy of the repository with the stack commands and the engine's view of its project."""

    def __init__(self, root: Path, env: dict[str, str], client: docker.DockerClient) -> None:
        self.root = root
        self.env = env
        self.client = client
        self.processes: list[subprocess.Popen[str]] = []

    def run(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(self.root / "scripts" / "stack.py"), *args],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """An attached command; the fixture kills it if the test leaves it running."""
        process = subprocess.Popen(
            [sys.executable, str(self.root / "scripts" / "stack.py"), *args],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
            if process.stderr is not None:
                process.stderr.close()
        self.run("down", timeout=300)

    @property
    def project(self) -> str:
        """The Compose project: the file's own `name:`, as the raw Compose commands use."""
        document = yaml.safe_load((self.root / "compose" / "compose.yaml").read_text())
        return str(document["name"])

    def raw_compose(self, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
        """A Compose command as compose/README.md documents it, without stack.py."""
        return subprocess.run(
            ["docker", "compose", "-f", "compose/compose.yaml", *args],
            cwd=self.root,
            env={**self.env, "API_TOKEN_FILE": os.devnull, **variables},
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )

    def resources(self, project: str) -> dict[str, list[str]]:
        """What the engine still holds for the project: containers, networks, volumes."""
        labelled = {"label": f"{PROJECT_LABEL}={project}"}
        return {
            "containers": [c.name for c in self.client.containers.list(all=True, filters=labelled)],
            "networks": [n.name for n in self.client.networks.list(filters=labelled)],
            "volumes": [v.name for v in self.client.volumes.list(filters=labelled)],
        }


def nothing(project_resources: dict[str, list[str]]) -> bool:
    return not any(project_resources.values())


@pytest.fixture(scope="module")
def tag(docker_client: docker.DockerClient) -> Iterator[str]:
    name = f"service-template:stack-test-{uuid.uuid4().hex[:8]}"
    yield name
    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_client.images.remove(name)


@pytest.fixture
def checkout(
    tmp_path: Path, docker_client: docker.DockerClient, image: str, base_image: str, tag: str
) -> Iterator[Checkout]:
    """A fresh copy; the `image` fixture has made the wheels the offline build needs."""
    root = copy_worktree(tmp_path / "repo").resolve()
    # The tests' own stack (tests/stackfixture), so these tests hold whatever services the
    # project has; its services are mounted into the image.
    shutil.copyfile(FIXTURE, root / "compose" / "compose.yaml")
    shutil.copytree(REPO / ".cache" / "wheels", root / ".cache" / "wheels")
    env = {k: v for k, v in os.environ.items() if k not in COMPOSE_VARIABLES}
    env = {k: v for k, v in env.items() if not k.startswith("SERVICE_")}
    # The front on a free host port: a developer's stack on 8080 must not collide.
    env.update(BASE_IMAGE=base_image, SERVICE_IMAGE=tag, FRONT_PORT="0")
    made = Checkout(root, env, docker_client)
    yield made
    made.close()


def wait_for_line(process: subprocess.Popen[str], text: str, timeout: float = 600) -> list[str]:
    """Lines of the process's stderr up to the first containing ``text`` (bounded)."""
    assert process.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    for line in process.stderr:
        lines.append(line)
        if text in line:
            return lines
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"no {text!r} in:\n{''.join(lines[-40:])}")


def test_up_call_status_smoke_and_down_leave_no_container_network_or_volume(
    checkout: Checkout,
) -> None:
    up = checkout.run("up", "--docker", "-d")
    assert up.returncode == 0, up.stderr[-3000:]
    # Every token file the Compose file requires gets a generated dev token.
    required = sorted(v for v in compose_variables(FIXTURE) if v.endswith("TOKEN_FILE"))
    assert required
    for variable in required:
        assert f"{variable} is not set: using a generated dev token" in up.stderr
    rows = {line.split()[0]: line.split() for line in up.stdout.splitlines()[1:]}
    assert rows["front"][1].startswith("http://127.0.0.1:") and rows["front"][-2:] == [
        "running",
        "healthy",
    ]
    assert rows["greeter"][1:] == ["-", "(stack", "network", "only)", "running", "healthy"]
    assert rows["prometheus"][2] == "skipped"
    project = checkout.project
    assert len(checkout.resources(project)["containers"]) == 3
    # The raw Compose commands of the docs see the same project stack.py started.
    raw = checkout.raw_compose("ps", "--format", "{{.Service}}")
    assert sorted(raw.stdout.split()) == ["adder", "front", "greeter"], raw.stderr

    called = checkout.run("call", "front", "greet_and_add", "you", "2", "3")
    assert json.loads(called.stdout) == {"greeting": "hello you", "sum": 5}, called.stderr
    private = checkout.run("call", "greeter", "say_private_hello", "x")
    assert json.loads(private.stdout) == "this is secret: hello x", private.stderr
    assert (
        checkout.run("call", "--token", "wrong", "greeter", "say_private_hello", "x").returncode
        == 1
    )

    status = checkout.run("status", timeout=120)
    assert status.returncode == 0, status.stderr
    table = {line.split()[0]: line for line in status.stdout.splitlines()[1:]}
    assert "running  ready" in table["greeter"]
    smoke = checkout.run("smoke", timeout=120)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr
    assert "PASS adder: ready, rpc.discover -> adder (1 public methods)" in smoke.stdout
    logs = checkout.run("logs", "--tail", "5", "greeter", timeout=60)
    assert '"service":"greeter"' in logs.stdout

    down = checkout.run("down", timeout=300)
    assert down.returncode == 0, down.stderr
    assert nothing(checkout.resources(project))
    assert not (checkout.root / ".cache" / "stack" / "state.json").exists()


def test_a_stack_the_raw_compose_commands_started_is_seen_refused_and_stopped_by_stack_py(
    checkout: Checkout,
) -> None:
    """compose/README.md's raw commands and stack.py drive one Compose project: what
    `docker compose up` started, `stack.py status` shows, `up` refuses, and `down` stops."""
    token = checkout.root / "token"
    token.write_text("raw-compose-token")
    token.chmod(0o640)  # group-readable, as compose/README.md asks; the services join our group
    started = checkout.raw_compose(
        "up", "-d", "--wait", "--build", API_TOKEN_FILE=str(token), SECRETS_GID=str(os.getgid())
    )
    assert started.returncode == 0, started.stderr[-3000:]
    project = checkout.project
    assert len(checkout.resources(project)["containers"]) == 3
    assert not (checkout.root / ".cache" / "stack" / "state.json").exists()

    status = checkout.run("status", timeout=120)
    assert status.returncode == 0, status.stderr
    assert f"the Compose project {project} runs adder, front, greeter" in status.stderr
    table = {line.split()[0]: line for line in status.stdout.splitlines()[1:]}
    assert "running  ready" in table["greeter"]
    called = checkout.run(
        "call", "--token", "raw-compose-token", "greeter", "say_private_hello", "x"
    )
    assert json.loads(called.stdout) == "this is secret: hello x", called.stderr

    for backend in ((), ("--docker",)):
        again = checkout.run("up", *backend, "-d")
        assert again.returncode == 1
        assert again.stderr.splitlines()[-1] == (
            f"stack: error: the Compose project {project} is already running (started by "
            "docker compose); `python3 scripts/stack.py down` stops it, or `up --replace` "
            "replaces it"
        ), again.stderr
    assert len(checkout.resources(project)["containers"]) == 3  # the refusals touched nothing

    down = checkout.run("down", timeout=300)
    assert down.returncode == 0, down.stderr
    assert nothing(checkout.resources(project))
    assert checkout.run("status").stderr == (
        "stack: error: no stack is running; start it with `python3 scripts/stack.py up`\n"
    )


def test_a_service_that_crashes_on_start_fails_up_and_leaves_nothing(checkout: Checkout) -> None:
    compose = checkout.root / "compose" / "compose.yaml"
    compose.write_text(
        compose.read_text().replace("services:AdderService", "services:NoSuchService")
    )
    up = checkout.run("up", "--docker", "-d", "--timeout", "60")
    assert up.returncode == 1
    errors = [line for line in up.stderr.splitlines() if line.startswith("stack: error:")]
    assert len(errors) == 1
    assert errors[0].startswith("stack: error: adder did not become healthy")
    assert "NoSuchService" in errors[0]
    assert "  | last log lines of adder:" in up.stderr
    assert nothing(checkout.resources(checkout.project))
    assert not (checkout.root / ".cache" / "stack" / "state.json").exists()


def test_after_the_orchestrator_is_killed_down_removes_the_project(checkout: Checkout) -> None:
    process = checkout.popen("up", "--docker")
    wait_for_line(process, "Ctrl-C stops the stack")
    project = checkout.project
    process.kill()
    process.wait(timeout=30)
    assert process.stderr is not None
    process.stderr.close()
    assert checkout.resources(project)["containers"], "containers outlive the orchestrator"
    down = checkout.run("down", timeout=300)
    assert down.returncode == 0, down.stderr
    assert nothing(checkout.resources(project))


def test_ctrl_c_on_an_attached_up_removes_the_project(checkout: Checkout) -> None:
    process = checkout.popen("up", "--docker")
    wait_for_line(process, "Ctrl-C stops the stack")
    project = checkout.project
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=300) == 0
    assert process.stderr is not None
    rest = process.stderr.read()
    process.stderr.close()
    assert "stopped; nothing is left running" in rest
    assert nothing(checkout.resources(project))


def test_up_docker_watch_syncs_a_saved_change_into_the_running_container(
    checkout: Checkout, docker_client: docker.DockerClient
) -> None:
    """Compose's develop.watch with the image's dev target: a saved change of a service's
    module reaches the container, which restarts with it."""
    module = checkout.root / "services" / "watchdemo.py"
    source = (
        "from service_template import MicroService, public_method\n\n\n"
        "class WatchService(MicroService):\n"
        '    name = "watchdemo"\n\n'
        "    @public_method\n"
        "    async def version(self) -> str:\n"
        '        return "{}"\n'
    )
    module.write_text(source.format("one"))
    (checkout.root / "compose" / "compose.yaml").write_text(
        "name: watch-demo\n"
        "services:\n"
        "  watchdemo:\n"
        "    image: ${SERVICE_IMAGE:-service-template:latest}\n"
        "    build:\n"
        "      context: ..\n"
        "      args:\n"
        "        BASE_IMAGE: ${BASE_IMAGE:-python:3.11-slim}\n"
        '    command: ["serve", "services.watchdemo:WatchService"]\n'
        "    healthcheck:\n"
        "      interval: 1s\n"
        "      start_period: 30s\n"
    )
    process = checkout.popen("up", "--docker", "--watch")
    try:
        wait_for_line(process, "Ctrl-C stops the stack")
        wait_for_line(process, "compose watch:")
        assert json.loads(checkout.run("call", "watchdemo", "version").stdout) == "one"
        # The dev target's project is an editable install of /app: no copy in site-packages.
        (container,) = docker_client.containers.list(
            filters={"label": f"{PROJECT_LABEL}=watch-demo"}
        )
        code, output = container.exec_run(["python", "-c", WHERE_FROM])
        assert code == 0, output
        assert json.loads(output) == {
            "service_template": "/app/service_template/__init__.py",
            "services": "/app/services/__init__.py",
            "installed copies": [],
        }
        saved = time.monotonic()
        module.write_text(source.format("two"))
        answer = None
        while time.monotonic() - saved < 120:
            called = checkout.run("call", "watchdemo", "version", timeout=60)
            answer = json.loads(called.stdout) if called.returncode == 0 else None
            if answer == "two":
                break
        took = time.monotonic() - saved
        print(f"\ndocker watch, save to new answer: {took:.1f} s (calls through compose exec)")
        assert answer == "two", f"still {answer!r} after {took:.0f} s"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=300) == 0
    finally:
        checkout.close()  # stops the stack whatever happened above
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove("service-template:dev", force=True)
    assert nothing(checkout.resources("watch-demo"))
