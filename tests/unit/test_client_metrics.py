"""Client metrics: what a service's /metrics shows of the calls its clients make to peers.

Each test reads the exposition page a scraper would get from a fresh registry, and asserts on
the exact series (names and labels) a user would see there.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from service_template import MicroService, public_method
from service_template.client import (
    AsyncRemoteClient,
    BreakerPolicy,
    ConnectError,
    PeerFailing,
    RemoteClient,
    RetryPolicy,
    ServerOverloaded,
)
from service_template.client_metrics import ClientMetrics
from service_template.config import Settings
from service_template.protocol import deadline, errors
from service_template.runtime import Runtime

URL = "http://svc.test:8000/api"
NO_WAIT = RetryPolicy(backoff=0.0)


def page(registry: CollectorRegistry) -> list[str]:
    """The non-comment lines of the exposition page."""
    return [
        line
        for line in generate_latest(registry).decode().splitlines()
        if line and not line.startswith("#")
    ]


def value(registry: CollectorRegistry, series: str) -> float:
    """The value of one series, written exactly as it appears on the page."""
    for line in page(registry):
        name, _, number = line.rpartition(" ")
        if name == series:
            return float(number)
    raise AssertionError(f"{series} is not on the page:\n" + "\n".join(page(registry)))


def answering(*replies: Callable[[dict[str, Any]], httpx.Response]) -> httpx.MockTransport:
    """A peer that answers the n-th request with the n-th reply (the last one from then on)."""
    seen = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal seen
        reply = replies[min(seen, len(replies) - 1)]
        seen += 1
        return reply(json.loads(request.content))

    return httpx.MockTransport(handler)


def result(body: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"jsonrpc": "2.0", "result": 3, "id": body["id"]})


def error(code: int) -> Callable[[dict[str, Any]], httpx.Response]:
    def reply(body: dict[str, Any]) -> httpx.Response:
        answer = {"jsonrpc": "2.0", "error": {"code": code, "message": "no"}, "id": body["id"]}
        return httpx.Response(200, json=answer)

    return reply


def refused(_body: dict[str, Any]) -> httpx.Response:
    raise httpx.ConnectError("connection refused")


def client(
    transport: httpx.MockTransport, metrics: ClientMetrics | None, **options: Any
) -> RemoteClient:
    options.setdefault("retry", NO_WAIT)
    return RemoteClient(URL, transport=transport, peer="compute", metrics=metrics, **options)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def test_each_call_is_counted_by_peer_method_and_outcome_and_timed(
    registry: CollectorRegistry,
) -> None:
    remote = client(answering(result, error(-32602)), ClientMetrics(registry))
    assert remote.methods.add(1, 2) == 3
    with pytest.raises(errors.RPCError):
        remote.methods.add(1, "x")
    assert value(registry, 'rpc_client_calls_total{method="add",outcome="ok",peer="compute"}') == 1
    assert (
        value(registry, 'rpc_client_calls_total{method="add",outcome="error",peer="compute"}') == 1
    )
    count = 'rpc_client_call_duration_seconds_count{method="add",peer="compute"}'
    assert value(registry, count) == 2
    # The runtime's own buckets, from 1 µs to 60 s.
    assert (
        'rpc_client_call_duration_seconds_bucket{le="1e-06",method="add",peer="compute"} 0.0'
        in (page(registry))
    )
    top = 'rpc_client_call_duration_seconds_bucket{le="60.0",method="add",peer="compute"}'
    assert value(registry, top) == 2


def test_retries_are_counted_and_each_attempt_has_its_outcome(
    registry: CollectorRegistry,
) -> None:
    remote = client(answering(error(-32003), result), ClientMetrics(registry))
    assert remote.idempotent.add(1, 2) == 3
    assert value(registry, 'rpc_client_retries_total{method="add",peer="compute"}') == 1
    assert (
        value(registry, 'rpc_client_calls_total{method="add",outcome="overloaded",peer="compute"}')
        == 1
    )
    assert value(registry, 'rpc_client_calls_total{method="add",outcome="ok",peer="compute"}') == 1


@pytest.mark.parametrize(
    ("policy", "reason"),
    [
        (RetryPolicy(backoff=0.0, budget_burst=0.0, budget_ratio=0.0), "budget"),
        (RetryPolicy(backoff=0.0, attempts=1), "attempts"),
    ],
)
def test_a_retry_not_made_is_counted_with_its_reason(
    registry: CollectorRegistry, policy: RetryPolicy, reason: str
) -> None:
    remote = client(answering(error(-32003)), ClientMetrics(registry), retry=policy)
    with pytest.raises(ServerOverloaded):
        remote.idempotent.add(1, 2)
    refused_series = f'rpc_client_retries_refused_total{{peer="compute",reason="{reason}"}}'
    assert value(registry, refused_series) == 1
    assert not [line for line in page(registry) if line.startswith("rpc_client_retries_total{")]


def test_a_retry_that_would_pass_the_callers_deadline_is_refused_as_such(
    registry: CollectorRegistry,
) -> None:
    # The peer asks for 5 s (Retry-After); the current call has 1 s left.
    remote = client(answering(overloaded_for(5)), ClientMetrics(registry))
    token = deadline.DEADLINE.set(time.monotonic() + 1.0)
    try:
        with pytest.raises(ServerOverloaded):
            remote.idempotent.add(1, 2)
    finally:
        deadline.DEADLINE.reset(token)
    assert (
        value(registry, 'rpc_client_retries_refused_total{peer="compute",reason="deadline"}') == 1
    )


def overloaded_for(seconds: int) -> Callable[[dict[str, Any]], httpx.Response]:
    def reply(_body: dict[str, Any]) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": str(seconds)})

    return reply


def test_the_breaker_state_and_calls_failed_fast_are_shown(registry: CollectorRegistry) -> None:
    remote = client(answering(refused), ClientMetrics(registry), breaker=BreakerPolicy(failures=2))
    state = 'rpc_client_breaker_state{{peer="compute",state="{}"}}'
    assert value(registry, state.format("closed")) == 1
    for _ in range(2):
        with pytest.raises(ConnectError):
            remote.methods.add(1, 2)
    with pytest.raises(PeerFailing):
        remote.methods.add(1, 2)
    assert value(registry, state.format("open")) == 1
    assert value(registry, state.format("closed")) == 0
    assert value(registry, state.format("half_open")) == 0
    calls = 'rpc_client_calls_total{{method="add",outcome="{}",peer="compute"}}'
    assert value(registry, calls.format("connect_error")) == 2
    assert value(registry, calls.format("breaker_open")) == 1
    # A call failed fast took no time worth timing: only the two sent are in the histogram.
    count = 'rpc_client_call_duration_seconds_count{method="add",peer="compute"}'
    assert value(registry, count) == 2


def test_labels_stay_bounded_whatever_peers_and_methods_are_called(
    registry: CollectorRegistry,
) -> None:
    metrics = ClientMetrics(registry, max_peers=2, max_methods=2)
    for host in ("a", "b", "c", "d"):
        remote = RemoteClient(
            f"http://{host}.test:80/api", transport=answering(result), metrics=metrics
        )
        for method in ("m1", "m2", "m3", "m4"):
            remote.call(method)
    peers = {line.split('peer="')[1].split('"')[0] for line in page(registry) if 'peer="' in line}
    assert peers == {"a.test:80", "b.test:80", "__other__"}
    methods = {
        line.split('method="')[1].split('"')[0]
        for line in page(registry)
        if line.startswith("rpc_client_calls_total")
    }
    assert methods == {"m1", "m2", "__other__"}
    other = 'rpc_client_calls_total{method="__other__",outcome="ok",peer="__other__"}'
    assert value(registry, other) == 4


def test_the_peer_label_is_a_name_or_host_and_port_never_a_url_or_a_password(
    registry: CollectorRegistry,
) -> None:
    metrics = ClientMetrics(registry)
    secret = "http://user:s3cret@10.0.0.7:8000/api?tenant=42"
    remote = RemoteClient(secret, transport=answering(result), metrics=metrics)
    remote.call("add")
    text = generate_latest(registry).decode()
    assert 'peer="10.0.0.7:8000"' in text
    assert "s3cret" not in text and "tenant" not in text and "/api" not in text


def test_health_probes_batches_and_raw_bodies_have_their_own_method_label(
    registry: CollectorRegistry,
) -> None:
    def health(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"status": "ok", "checks": {}})
        body = json.loads(request.content)
        if isinstance(body, list):
            return httpx.Response(200, json=[{"jsonrpc": "2.0", "result": 3, "id": body[0]["id"]}])
        return result(body)

    remote = RemoteClient(
        URL, transport=httpx.MockTransport(health), peer="compute", metrics=ClientMetrics(registry)
    )
    remote.health()
    with remote.batch() as batch:
        batch.methods.add(1, 2)
    remote.send_raw(b'{"jsonrpc": "2.0", "method": "add", "id": 7}')
    for method in ("__health__", "__batch__", "__raw__"):
        series = f'rpc_client_calls_total{{method="{method}",outcome="ok",peer="compute"}}'
        assert value(registry, series) == 1


def test_the_async_client_reports_the_same_series(registry: CollectorRegistry) -> None:
    async def scenario() -> None:
        async with AsyncRemoteClient(
            URL,
            transport=answering(error(-32003), result),
            peer="compute",
            retry=NO_WAIT,
            metrics=ClientMetrics(registry),
        ) as remote:
            assert await remote.idempotent.add(1, 2) == 3

    asyncio.run(scenario())
    assert value(registry, 'rpc_client_retries_total{method="add",peer="compute"}') == 1
    assert value(registry, 'rpc_client_calls_total{method="add",outcome="ok",peer="compute"}') == 1


def test_a_client_without_metrics_runs_exactly_its_own_code() -> None:
    # A plain script pays nothing: no wrapper around send, no meter on retries or the breaker.
    remote = client(answering(result), None)
    assert remote._send.__func__ is RemoteClient._send  # type: ignore[attr-defined]
    assert remote._meter is None
    assert remote._retrier is not None and remote._retrier.meter is None
    assert remote._breaker is not None and remote._breaker.meter is None
    assert remote.methods.add(1, 2) == 3


class Billing(MicroService):
    name = "billing"

    @public_method
    async def ping(self) -> str:
        return "pong"


def started(**environ: str) -> tuple[MicroService, Runtime]:
    service = Billing(Settings.load(environ, None, None, Billing.class_defaults()))
    return service, Runtime(service, service.settings)


def test_a_started_service_gives_its_clients_the_registry_its_page_shows() -> None:
    service, runtime = started()
    try:
        assert service.client_metrics is not None
        own = RemoteClient(URL, transport=answering(result), metrics=service.client_metrics)
        own.call("charge")
        assert runtime.metrics is not None
        page_text = runtime.metrics.render()[0].decode()
        assert 'rpc_client_calls_total{method="charge",outcome="ok",peer="svc.test:8000"} 1.0' in (
            page_text
        )
    finally:
        runtime.close()


def test_with_metrics_off_a_service_gives_its_clients_none() -> None:
    service, runtime = started(SERVICE_METRICS_ENABLED="0")
    try:
        assert service.client_metrics is None
    finally:
        runtime.close()
