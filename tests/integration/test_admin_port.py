"""``admin_port``: /metrics and the probes on a port of their own, and /metrics off the API port."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable

import pytest

from service_template.testing import wait_until
from tests.conftest import REPO, ServiceProcess
from tests.integration.services import (
    BackgroundCall,
    metrics,
    post,
    request,
    result_of,
    sample,
)

pytestmark = pytest.mark.integration

OBSERVED = "tests.integration.services:ObservedService"


def admin_port_of(service: ServiceProcess) -> int:
    entry = service.wait_for_log(lambda e: e.get("msg") == "listening")
    return int(entry["admin_port"])  # type: ignore[call-overload]


def test_metrics_and_probes_move_to_the_admin_port_and_api_stays_on_its_own(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(OBSERVED, env={"SERVICE_ADMIN_PORT": "0"})
    admin = admin_port_of(service)
    assert admin != service.port
    assert result_of(service.port, "echo", ["x"]) == "x"
    # The admin port: metrics (counting the API port's calls) and both probes.
    assert sample(metrics(admin), "rpc_calls_total", method="echo", outcome="ok") == 1
    for probe in ("/livez", "/readyz"):
        reply = request(admin, "GET", probe)
        assert reply.status == 200, probe
        assert reply.headers["Content-Type"] == "application/health+json"
    # ... and nothing else: no JSON-RPC, no OpenRPC document.
    call = json.dumps({"jsonrpc": "2.0", "method": "echo", "params": ["x"], "id": 1}).encode()
    assert post(admin, call).status == 404
    for path in ("/api", "/openrpc.json", "/"):
        assert request(admin, "GET", path).status == 404, path
    # The API port no longer serves /metrics; its probes stay (peers and HEALTHCHECK use them).
    assert request(service.port, "GET", "/metrics").status == 404
    assert request(service.port, "GET", "/readyz").status == 200
    assert request(service.port, "GET", "/openrpc.json").status == 200
    service.stop_cleanly()


def test_without_an_admin_port_metrics_stay_on_the_api_port(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(OBSERVED)
    assert request(service.port, "GET", "/metrics").status == 200
    assert "admin_port" not in service.wait_for_log(lambda e: e.get("msg") == "listening")


def test_the_admin_port_answers_readyz_503_through_the_drain(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(OBSERVED, env={"SERVICE_ADMIN_PORT": "0"})
    admin = admin_port_of(service)
    slow = BackgroundCall(service.port, "sleep", [2.0])
    slow.start()
    wait_until(
        lambda: sample(metrics(admin), "rpc_calls_in_flight") >= 1, 10, "the call is in flight"
    )
    service.proc.terminate()
    wait_until(lambda: request(admin, "GET", "/readyz").status == 503, 10, "readyz fails")
    assert request(admin, "GET", "/livez").status == 200
    assert slow.result() == 2.0
    assert service.proc.wait(timeout=15) == 0
    service.close_pipe()


def test_two_workers_share_the_admin_port_and_its_metrics_count_both(
    start_service: Callable[..., ServiceProcess],
) -> None:
    with socket.socket() as sock:  # a fixed free port: the workers' parent binds it once
        sock.bind(("127.0.0.1", 0))
        admin = sock.getsockname()[1]
    service = start_service(
        OBSERVED, args=("--workers", "2"), env={"SERVICE_ADMIN_PORT": str(admin)}
    )
    pids = {result_of(service.port, "getpid") for _ in range(60)}
    for _ in range(4):
        assert sample(metrics(admin), "rpc_calls_total", method="getpid", outcome="ok") == 60
    assert len(pids) >= 1
    service.stop_cleanly()


def test_a_busy_admin_port_stops_the_start_with_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "service_template", "serve", OBSERVED, "--port", "0"],
            cwd=REPO,
            env={"SERVICE_ADMIN_PORT": str(port), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    assert f"error: cannot listen on 127.0.0.1:{port} (admin_port): " in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
