"""A service's own HTTP routes, through a real server on loopback: body limits per route and by
default, the request id, the access line and metrics, reserved paths, and drain."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable

import pytest

from tests.conftest import REPO, TOKEN, ServiceProcess
from tests.integration.context_services import WEBHOOK_LIMIT
from tests.integration.services import Reply, metrics, request, result_of, sample

pytestmark = pytest.mark.integration

ROUTED = "tests.integration.context_services:RoutedService"
WEBHOOK = "/webhooks/stripe"


def webhook(port: int, size: int, request_id: str | None = None, token: str | None = None) -> Reply:
    headers = {"Content-Type": "application/json"}
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    if token is not None:
        headers["X-Api-Token"] = token
    return request(port, "POST", WEBHOOK, b"x" * size, headers)


def test_a_webhook_route_takes_a_body_up_to_its_limit(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(ROUTED)
    reply = webhook(service.port, WEBHOOK_LIMIT, request_id="hook-1")
    assert reply.status == 200
    assert reply.json() == {
        "principal": None,  # no token sent
        "received": WEBHOOK_LIMIT,
        "request_id": "hook-1",  # the handler sees the request's id
        "service": "routed",  # and reaches the service instance
        "webhooks": 1,
    }
    assert reply.headers["X-Request-Id"] == "hook-1"
    assert "Server" not in reply.headers
    made = webhook(service.port, 10)
    assert len(made.headers["X-Request-Id"]) == 16  # none given: one is made and echoed
    assert made.json()["request_id"] == made.headers["X-Request-Id"]
    assert webhook(service.port, 1, token=TOKEN).json()["principal"] == "api-token"
    assert result_of(service.port, "whoami")["method"] == "whoami"  # /api is still there


def test_a_body_over_the_routes_limit_is_refused_with_413(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(ROUTED)
    reply = webhook(service.port, WEBHOOK_LIMIT + 1, request_id="hook-big")
    assert reply.status == 413
    assert reply.json()["error"]["data"] == {"limit_bytes": WEBHOOK_LIMIT}
    assert reply.headers["X-Request-Id"] == "hook-big"
    assert webhook(service.port, 1).json()["webhooks"] == 1  # the handler never ran for it


def test_an_undeclared_limit_is_the_route_max_body_bytes_setting(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(ROUTED, env={"SERVICE_ROUTE_MAX_BODY_BYTES": "100000"})
    big = request(service.port, "PUT", "/uploads", b"y" * 100_000)
    assert (big.status, big.json()) == (200, {"label": "plain", "received": 100_000})
    over = request(service.port, "PUT", "/uploads", b"y" * 100_001)
    assert over.status == 413


def test_a_route_request_is_logged_and_counted_by_its_route(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(ROUTED)
    webhook(service.port, 5, request_id="hook-seen")
    webhook(service.port, 5)
    line = service.wait_for_log(lambda e: e.get("request_id") == "hook-seen")
    assert line["logger"] == "service_template.routes"
    assert (line["route"], line["http_method"], line["status"]) == (WEBHOOK, "POST", 200)
    assert float(line["duration_ms"]) >= 0  # type: ignore[arg-type]
    samples = metrics(service.port)
    labels = {"route": WEBHOOK, "method": "POST", "status": "200"}
    assert sample(samples, "rpc_http_route_requests_total", **labels) == 2
    assert sample(samples, "rpc_http_route_duration_seconds_count", route=WEBHOOK) == 2
    missing = request(service.port, "GET", "/no/such/route")
    assert missing.status == 404
    assert not [key for key in metrics(service.port) if ("route", "/no/such/route") in key[1]]


def test_a_route_cannot_take_a_path_the_runtime_serves() -> None:
    target = "tests.integration.context_services:ReservedRouteService"
    done = subprocess.run(
        [sys.executable, "-m", "service_template", "serve", target, "--port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "route '/(metrics|stats)': /metrics is served by the runtime" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_slow_route_handler_finishes_during_the_drain(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(ROUTED)
    replies: list[Reply] = []
    client = threading.Thread(
        target=lambda: replies.append(
            request(service.port, "GET", "/slow?seconds=1.5", headers={"X-Request-Id": "slow-1"})
        ),
        daemon=True,
    )
    client.start()
    service.wait_for_log(lambda e: e.get("slow_request_id") == "slow-1")
    service.proc.send_signal(signal.SIGTERM)
    client.join(15)
    assert replies, "the slow request got no response"
    reply = replies[0]
    assert (reply.status, reply.json()) == (200, {"slept": 1.5})
    assert reply.headers["Connection"] == "close"  # answered during the drain
    service.stop_cleanly()
