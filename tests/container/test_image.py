"""The image on its own: non-root, read-only, serving, healthy, quick to stop, nothing left over.

Containers run hardened as an orchestrator would run them (read-only root filesystem, every
capability dropped, no privilege escalation) on the session's own network, with port 8000
published on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from .conftest import Containers
from .support import (
    REPO,
    CallLoad,
    call_log_ids,
    check_no_accepted_call_failed,
    get,
    log_entries,
    note,
    result_of,
    rpc,
    status_of,
    wait_for,
)

pytestmark = pytest.mark.container

# The image's own checks serve a module of their own, mounted into the image's working directory
# (/app, the documented way to serve your own module), so they hold whatever services the
# project has: the examples may be gone.
PROBE = "probe_service:ProbeService"
PROBE_SERVICE = """
from service_template import MicroService, private_api_method, public_method


class ProbeService(MicroService):
    name = "probe"

    @public_method
    async def say_hello(self, name: str) -> str:
        return f"hello {name}"

    @private_api_method
    async def say_private_hello(self, name: str) -> str:
        return f"this is secret: hello {name}"

    @public_method
    def fibonacci(self, n: int) -> int:
        a, b = 0, 1
        for _ in range(n):
            a, b = b, a + b
        return a
"""
PYTHON = "/opt/venv/bin/python"
HARDENED: dict[str, Any] = {
    "read_only": True,
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
}
EROFS = 30

# A call slow enough to be caught in flight, dropped into /app as PROBE_SERVICE is.
SLOW_SERVICE = """
import asyncio

from service_template import MicroService, public_method


class SlowService(MicroService):
    name = "slow"

    @public_method
    async def wait(self, seconds: float) -> str:
        await asyncio.sleep(seconds)
        return f"waited {seconds}"
"""


@dataclass
class Running:
    container: Container
    base: str  # http://127.0.0.1:<published port>


def probe_volume(folder: Path) -> dict[str, dict[str, str]]:
    """PROBE_SERVICE as a read-only file in the image's working directory."""
    module = folder / "probe_service.py"
    module.write_text(PROBE_SERVICE)
    module.chmod(0o644)  # the service runs as uid 10001
    return {str(module): {"bind": "/app/probe_service.py", "mode": "ro"}}


def start_service(containers: Containers, image: str, *command: str, **kwargs: Any) -> Running:
    container = containers.start(
        image, command=["serve", *command], publish=8000, **HARDENED, **kwargs
    )
    base = containers.url(container)
    wait_for(lambda: status_of(f"{base}/livez") == 200, 30, f"{container.name} /livez")
    return Running(container, base)


def started_at(container: Container) -> float:
    """The container's start time (epoch seconds) as the engine recorded it."""
    raw = container.attrs["State"]["StartedAt"]  # RFC 3339 with nanoseconds
    trimmed = re.sub(r"(\.\d{6})\d*", r"\1", raw).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed).timestamp()


@pytest.fixture(scope="module")
def hello(
    module_containers: Containers, image: str, tmp_path_factory: pytest.TempPathFactory
) -> Running:
    """One hardened probe service shared by the module's read-only checks."""
    volumes = probe_volume(tmp_path_factory.mktemp("probe"))
    return start_service(module_containers, image, PROBE, volumes=volumes)


def test_image_runs_as_numeric_non_root_user(
    docker_client: docker.DockerClient, image: str, containers: Containers
) -> None:
    assert docker_client.images.get(image).attrs["Config"]["User"] == "10001:10001"
    status, output = containers.run(
        image,
        entrypoint=[PYTHON],
        command=["-c", "import os; print(os.getuid(), os.getgid())"],
    )
    assert (status, output.split()) == (0, ["10001", "10001"])


def test_running_service_is_uid_10001_and_cannot_write_its_root_filesystem(
    hello: Running,
) -> None:
    probe = (
        "import json, os\n"
        "errors = {}\n"
        "for path in ('/app/x', '/tmp/x', '/opt/venv/x'):\n"
        "    try:\n"
        "        open(path, 'w').close()\n"
        "        errors[path] = 0\n"
        "    except OSError as exc:\n"
        "        errors[path] = exc.errno\n"
        "print(json.dumps({'uid': os.getuid(), 'errors': errors}))\n"
    )
    code, output = hello.container.exec_run([PYTHON, "-c", probe])
    assert code == 0, output
    seen = json.loads(output)
    assert seen["uid"] == 10001
    assert seen["errors"] == {"/app/x": EROFS, "/tmp/x": EROFS, "/opt/venv/x": EROFS}


def test_hardened_container_serves_health_metrics_and_json_rpc(hello: Running) -> None:
    live = get(f"{hello.base}/livez")
    assert live.status == 200
    assert live.headers["content-type"].startswith("application/health+json")
    assert live.json()["status"] == "pass"
    assert live.json()["serviceId"] == "probe"

    ready = get(f"{hello.base}/readyz")
    assert (ready.status, ready.json()["status"]) == (200, "pass")

    answer = rpc(f"{hello.base}/api", "say_hello", ["container"])
    assert result_of(answer) == "hello container"

    metrics = get(f"{hello.base}/metrics")
    assert metrics.status == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    page = metrics.body.decode()
    assert 'rpc_service_info{service="probe"} 1.0' in page
    assert 'rpc_calls_total{method="say_hello",outcome="ok"} 1.0' in page


def test_image_healthcheck_probes_readiness_and_turns_healthy(
    docker_client: docker.DockerClient, image: str, hello: Running
) -> None:
    check = docker_client.images.get(image).attrs["Config"]["Healthcheck"]
    assert check["Test"][0] == "CMD"
    assert check["Test"][1] == PYTHON
    assert "/readyz" in check["Test"][-1]

    def healthy() -> bool:
        hello.container.reload()
        return bool(hello.container.attrs["State"]["Health"]["Status"] == "healthy")

    # The image's own timing, as shipped: the first probe runs one interval after the start.
    wait_for(healthy, 60, "HEALTHCHECK status healthy", interval=0.5)
    after = time.time() - started_at(hello.container)
    last = hello.container.attrs["State"]["Health"]["Log"][-1]
    assert last["ExitCode"] == 0, last
    seconds = {key: check.get(key, 0) / 1e9 for key in ("Interval", "Timeout", "StartPeriod")}
    note(
        "HEALTHCHECK interval {Interval:g} s, timeout {Timeout:g} s, start period "
        "{StartPeriod:g} s, retries {retries}: healthy {after:.1f} s after start".format(
            **seconds, retries=check.get("Retries"), after=after
        )
    )


def test_docker_stop_lets_an_in_flight_call_finish_and_exits_0_within_2_s(
    containers: Containers, image: str, tmp_path: Path
) -> None:
    module = tmp_path / "slow_service.py"
    module.write_text(SLOW_SERVICE)
    module.chmod(0o644)
    service = start_service(
        containers,
        image,
        "slow_service:SlowService",
        volumes={str(module): {"bind": "/app/slow_service.py", "mode": "ro"}},
    )
    outcome: dict[str, Any] = {}

    def call() -> None:
        try:
            outcome["answer"] = rpc(f"{service.base}/api", "wait", [0.8], timeout=10)
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    caller = threading.Thread(target=call)
    caller.start()
    try:
        # In flight for sure: the service's own gauge says so.
        wait_for(
            lambda: "rpc_calls_in_flight 1.0" in get(f"{service.base}/metrics").body.decode(),
            10,
            "the call to be in flight",
            interval=0.02,
        )
        started = time.monotonic()
        service.container.stop(timeout=10)
        took = time.monotonic() - started
    finally:
        caller.join(15)
    assert "error" not in outcome, f"the in-flight call failed: {outcome['error']!r}"
    assert result_of(outcome["answer"]) == "waited 0.8"
    service.container.reload()
    assert service.container.attrs["State"]["ExitCode"] == 0
    assert took < 2.0, f"docker stop took {took:.2f} s"
    logs = service.container.logs().decode()
    assert [e["in_flight"] for e in log_entries(logs, "draining")] == [1]
    assert log_entries(logs, "stopped"), logs[-2000:]
    note(f"docker stop with a 0.8 s call in flight: {took:.2f} s, exit 0, call answered")


def fibonacci(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def test_docker_stop_ends_a_busy_service_within_2_s_and_loses_no_accepted_call(
    containers: Containers, image: str, tmp_path: Path
) -> None:
    service = start_service(containers, image, PROBE, volumes=probe_volume(tmp_path))
    # The container's address on the test network: a refused connection then means the
    # service's listener is closed (the published port would be answered by docker-proxy).
    url = f"http://{containers.ip(service.container)}:8000/api"
    load = CallLoad(url, "fibonacci", [10_000], fibonacci(10_000), clients=4).start()
    try:
        wait_for(lambda: load.count("ok") >= 20, 20, "calls answered under load", interval=0.05)
        started = time.monotonic()
        service.container.stop(timeout=10)
        took = time.monotonic() - started
    finally:
        outcomes = load.stop()
    service.container.reload()
    assert service.container.attrs["State"]["ExitCode"] == 0
    assert took < 2.0, f"docker stop took {took:.2f} s"
    logs = service.container.logs().decode()
    check_no_accepted_call_failed(outcomes, call_log_ids(logs))
    in_flight = [e["in_flight"] for e in log_entries(logs, "draining")]
    note(
        f"docker stop under load (fibonacci, 4 clients): {took:.2f} s, exit 0, "
        f"{sum(o.kind == 'ok' for o in outcomes)} calls answered, {in_flight[0]} in flight "
        "at SIGTERM"
    )


def test_image_holds_no_build_leftovers(containers: Containers, image: str) -> None:
    # As root, so that no directory is hidden from the listing by its permissions.
    listing = (
        "import importlib.util, json, os\n"
        "paths = ['/tmp/wheels', '/tmp/dist', '/src', '/opt/pip', '/tmp/requirements.txt',\n"
        "         '/tmp/build-requirements.txt', '/root/.cache/pip']\n"
        "wheels = []\n"
        "for root, dirs, files in os.walk('/'):\n"
        "    dirs[:] = [d for d in dirs if os.path.join(root, d) not in {'/proc', '/sys'}]\n"
        "    wheels += [os.path.join(root, f) for f in files if f.endswith('.whl')]\n"
        "print(json.dumps({\n"
        "    'present': [p for p in paths if os.path.lexists(p)],\n"
        "    'venv_bin': sorted(os.listdir('/opt/venv/bin')),\n"
        "    'wheels': wheels,\n"
        "    'pip': importlib.util.find_spec('pip') is not None,\n"
        "}))\n"
    )
    status, output = containers.run(image, entrypoint=[PYTHON], command=["-c", listing], user="0:0")
    assert status == 0, output
    seen = json.loads(output)
    assert seen["present"] == []
    assert not [name for name in seen["venv_bin"] if name.startswith("pip")], seen["venv_bin"]
    assert seen["pip"] is False, "pip is importable in the runtime environment"
    built = {path.name for path in (REPO / ".cache" / "wheels").glob("*.whl")}
    leaked = [path for path in seen["wheels"] if Path(path).name in built]
    assert not leaked, f"wheels from .cache/wheels in the image: {leaked}"


def test_image_adds_little_to_its_base(
    docker_client: docker.DockerClient, image: str, base_image: str
) -> None:
    size = docker_client.images.get(image).attrs["Size"]
    base = docker_client.images.get(base_image).attrs["Size"]
    note(f"image {size / 1e6:.1f} MB on a base of {base / 1e6:.1f} MB")
    # The virtual environment with its dependencies is about 15 MB, and the pruned base is
    # smaller than the base (no shell, apt, pip...); much more means the build stage leaked
    # into the runtime one.
    assert size - base < 40e6, f"the image adds {(size - base) / 1e6:.1f} MB to its base"


def test_the_image_traces_calls_when_the_otel_variables_ask(
    containers: Containers, image: str, tmp_path: Path
) -> None:
    # The tracing extra is in the image: a span per call, here printed by the console exporter
    # (OTLP/HTTP is tests/integration/test_tracing.py), and trace ids in the call log line.
    env = {"OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    running = start_service(
        containers, image, PROBE, volumes=probe_volume(tmp_path), environment=env
    )
    assert result_of(rpc(f"{running.base}/api", "say_hello", ["traced"])) == "hello traced"
    running.container.stop(timeout=10)  # the drain flushes the span
    output = running.container.logs().decode(errors="replace")
    assert '"rpc.system.name": "jsonrpc"' in output and '"kind": "SpanKind.SERVER"' in output
    [line] = log_entries(output, "call")
    assert f'"trace_id": "0x{line["trace_id"]}"' in output
