"""A service's /metrics shows the calls it makes to its peers, summed over ``--workers 2``.
(The gateway's, with a backend stopped for real, is in test_gateway_service.py.)"""

from __future__ import annotations

import pytest

from tests.integration.services import metrics, request, result_of, sample
from tests.integration.test_health_metrics_logs import _free_port, _promtool_check

pytestmark = pytest.mark.integration


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
