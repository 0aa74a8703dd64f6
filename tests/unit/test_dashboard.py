"""The Grafana dashboard's shape: an importable document whose every query follows the service
and method the viewer picks. (Its PromQL runs on a real Prometheus in
tests/integration/test_observability.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "observability" / "grafana-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def load() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return doc


def panels() -> list[dict[str, Any]]:
    return [panel for panel in load()["panels"] if panel["type"] != "row"]


def test_the_dashboard_is_one_importable_json_document() -> None:
    doc = load()
    assert doc["uid"] and len(doc["uid"]) <= 40  # Grafana's limit on uids
    assert doc["title"]
    assert isinstance(doc["schemaVersion"], int)
    ids = [panel["id"] for panel in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]


def test_the_viewer_picks_the_data_source_the_service_and_the_method() -> None:
    variables = {v["name"]: v for v in load()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("service", "method"):
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["datasource"] == DATASOURCE
        assert variable["multi"] and variable["includeAll"]
        assert variable["allValue"] == ".+"  # "All" must also match services added later
    # The methods offered are those of the services picked.
    assert 'service=~"$service"' in variables["method"]["query"]["query"]


def test_every_panel_shows_what_the_issue_asks_for() -> None:
    exprs = " ".join(t["expr"] for panel in panels() for t in panel["targets"])
    assert "rate(rpc_calls_total" in exprs  # rate
    assert "sum by (service, outcome)" in exprs  # errors by outcome
    for quantile in ("0.5", "0.9", "0.99"):  # latency quantiles
        assert f"histogram_quantile({quantile}, sum by (service, method, le)" in exprs
    assert "rpc_calls_in_flight" in exprs  # in flight
    assert "/ sum by (service, instance) (rpc_calls_max_in_flight" in exprs  # saturation


def test_every_query_follows_the_variables_and_the_data_source() -> None:
    for panel in panels():
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert target["datasource"] == DATASOURCE
            # Every selector is narrowed to the services picked.
            selectors = re.findall(r"\{([^}]*)\}", expr)
            assert selectors, expr
            for selector in selectors:
                assert 'service=~"$service"' in selector, expr
            if "rpc_calls_total" in expr or "rpc_call_duration" in expr:
                assert all('method=~"$method"' in s for s in selectors), expr
            # Grafana widens the range to what the scrape interval needs.
            for window in re.findall(r"\[([^\]]+)\]", expr):
                assert window == "$__rate_interval", expr


def test_the_calls_to_peers_have_their_own_row() -> None:
    # Outcomes, latency, retries (made and refused) and open breakers of the calls each
    # service makes to its peers (client_metrics.py), by peer.
    rows = [panel["title"] for panel in load()["panels"] if panel["type"] == "row"]
    assert "Calls to peers" in rows
    exprs = " ".join(t["expr"] for panel in panels() for t in panel["targets"])
    assert "sum by (service, peer, outcome) (rate(rpc_client_calls_total" in exprs
    assert "sum by (service, peer, le) (rate(rpc_client_call_duration_seconds_bucket" in exprs
    assert "rate(rpc_client_retries_total" in exprs
    assert "sum by (service, peer, reason) (rate(rpc_client_retries_refused_total" in exprs
    assert 'rpc_client_breaker_state{service=~"$service",state="open"}' in exprs
