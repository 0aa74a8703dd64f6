"""A service's /metrics shows the calls it makes to its peers: the gateway, as a real process,
calling a compute service that is stopped for real, scraped over HTTP like Prometheus does; and
with ``--workers 2`` the page sums every worker's calls."""

from __future__ import annotations

import re
import urllib.request

import pytest

from service_template import RPCError
from service_template.testing import ServiceFactory, ServiceProcess
from tests.integration.services import metrics, request, result_of, sample
from tests.integration.test_health_metrics_logs import _free_port, _promtool_check

pytestmark = pytest.mark.integration

GATEWAY = "services.gateway:GatewayService"
COMPUTE = "services.compute:ComputeService"
HELLO = "services.hello:HelloService"
SERIES = re.compile(r"^(rpc_client_[a-z_]+)\{([^}]*)\} (\S+)$")


def scrape(service: ServiceProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The rpc_client_* series of ``service``'s /metrics: (name, labels) -> value."""
    with urllib.request.urlopen(f"{service.base}/metrics", timeout=10) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        match = SERIES.match(line)
        if match:
            labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match[2]))
            found[(match[1], labels)] = float(match[3])
    return found


def series(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def test_the_gateway_metrics_show_retries_failures_and_the_open_breaker() -> None:
    with ServiceFactory() as services:
        hello = services.process(HELLO)
        compute = services.process(COMPUTE)
        peers = f"hello={hello.url},compute={compute.url}"
        gateway = services.process(GATEWAY, env={"SERVICE_PEERS": peers})
        client = services.client(gateway.url)
        assert client.methods.greet_and_add("you", 1, 2) == {"greeting": "hello you", "sum": 3}
        before = scrape(gateway)
        calls, duration = "rpc_client_calls_total", "rpc_client_call_duration_seconds_count"
        assert before[series(calls, peer="compute", method="add", outcome="ok")] == 1
        assert before[series(calls, peer="hello", method="say_hello", outcome="ok")] == 1
        assert before[series(duration, peer="compute", method="add")] == 1
        assert before[series("rpc_client_breaker_state", peer="compute", state="closed")] == 1

        compute.stop_cleanly()
        # add is idempotent: each call is tried up to 3 times (a connection refused each time)
        # until the breaker opens after 5 failures in a row; then calls fail fast.
        for _ in range(3):
            with pytest.raises(RPCError, match="compute is unavailable"):
                client.methods.add(1, 2)
        after = scrape(gateway)

    def value(name: str, **labels: str) -> float:
        return after.get(series(name, **labels), 0.0)

    add = {"peer": "compute", "method": "add"}
    assert value("rpc_client_calls_total", **add, outcome="connect_error") == 5
    # Call 1: three attempts refused; call 2: two more open the breaker, its third fails fast;
    # call 3 fails fast.
    assert value("rpc_client_calls_total", **add, outcome="breaker_open") == 2
    assert value("rpc_client_retries_total", **add) == 4
    assert value("rpc_client_retries_refused_total", peer="compute", reason="attempts") >= 1
    assert value("rpc_client_breaker_state", peer="compute", state="open") == 1
    assert value("rpc_client_breaker_state", peer="compute", state="closed") == 0
    # The other peer's series are untouched, and no label shows an address.
    assert value("rpc_client_breaker_state", peer="hello", state="closed") == 1
    assert not [key for key in after if any("127.0.0.1" in v for _, v in key[1])]


def test_with_two_workers_the_page_sums_every_workers_calls_to_a_peer(start_service) -> None:
    gone = f"gone=http://127.0.0.1:{_free_port()}/api"  # refuses connections
    service = start_service(
        "tests.integration.services:ObservedService",
        args=("--workers", "2"),
        env={"SERVICE_PEERS": gone},
    )
    calls = 6  # fresh connections: either worker may take each
    for _ in range(calls):
        assert result_of(service.port, "call_peer", ["gone"]) in ("ConnectError", "PeerFailing")
    page = metrics(service.port)
    attempts = sum(
        sample(page, "rpc_client_calls_total", peer="gone", method="echo", outcome=outcome)
        for outcome in ("connect_error", "breaker_open")
    )
    retries = sample(page, "rpc_client_retries_total", peer="gone", method="echo")
    # Each call is one attempt plus its retries (the workers' files, summed on any page).
    assert attempts == calls + retries and retries >= 2
    # One breaker per worker that called: each is in exactly one state.
    in_a_state = sum(
        sample(page, "rpc_client_breaker_state", peer="gone", state=state)
        for state in ("closed", "open", "half_open")
    )
    assert in_a_state in (1, 2)
    _promtool_check(request(service.port, "GET", "/metrics").body)
