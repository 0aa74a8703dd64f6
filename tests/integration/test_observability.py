"""The operator's kit in observability/ checked by the real tools: the alerting rules by
`promtool test rules` (and shown to catch a broken rule), the Compose Prometheus configuration
with its rules by `promtool check config`, and every PromQL expression of the Grafana dashboard
and the rules run by a real Prometheus scraping a live service, naming only series that service
exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from scripts.stacklib import rendered
from scripts.stacklib.rendered import compose_command
from service_template.testing import wait_until
from tests.conftest import ServiceProcess
from tests.integration.services import post, request, rpc
from tests.integration.test_health_metrics_logs import (
    _free_port,
    _get_json,
    _wait_for_scrape,
    require_tool,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OBSERVABILITY = REPO / "observability"
RULES = OBSERVABILITY / "alerts.yml"
DASHBOARD = OBSERVABILITY / "grafana-dashboard.json"
OBSERVED = "tests.integration.services:ObservedService"
# The job name of compose/prometheus.yml and the ServiceMonitors.
JOB = "service-template"

# Grafana's variables as a query run with every service and method selected would see them.
GRAFANA_VARIABLES = {"$service": ".+", "$method": ".+", "$__rate_interval": "1m"}
PROMQL_WORDS = {
    "sum", "by", "without", "rate", "irate", "increase", "histogram_quantile", "and", "or",
    "unless", "on", "ignoring", "group_left", "group_right", "avg_over_time", "max", "min",
    "avg", "count", "bool", "offset",
}  # fmt: skip


def promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_tool("promtool"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
    )


# -- the rules, by promtool -----------------------------------------------------------------------


def test_the_alerting_rules_pass_promtool_check_and_their_unit_tests():
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    tested = promtool("test", "rules", "alerts.test.yml", cwd=OBSERVABILITY)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


@pytest.mark.parametrize(
    ("before", "after", "alert"),
    [
        ("> 0.8", "> 0.95", "RPCSaturated"),
        ('outcome=~"-32603|-32002|-32003"}[1h]', 'outcome=~"-32603"}[1h]', "BurnFast"),
        ('up{job="service-template"} == 0', "up == 0", "RPCTargetDown"),
        ('rpc_client_breaker_state{state="open"}', "rpc_client_breaker_state", "BreakerOpen"),
        (") > 0.05", ") > 0.2", "RPCPeerRetriesHigh"),
    ],
    ids=["threshold", "fault codes", "job filter", "breaker state", "retry ratio"],
)
def test_the_rule_tests_catch_a_broken_rule(tmp_path: Path, before: str, after: str, alert: str):
    rules = RULES.read_text()
    assert before in rules
    (tmp_path / "alerts.yml").write_text(rules.replace(before, after, 1))
    shutil.copy(OBSERVABILITY / "alerts.test.yml", tmp_path)
    tested = promtool("test", "rules", "alerts.test.yml", cwd=tmp_path)
    assert tested.returncode != 0, tested.stdout
    assert alert in tested.stdout + tested.stderr


# -- the Compose profile --------------------------------------------------------------------------


def test_the_observability_profile_runs_prometheus_with_the_rules_file():
    command = compose_command()
    if command is None:
        pytest.fail("Compose is not installed: run scripts/ci/install-tools.sh")
    # Compose's own model, every profile on, the stack's required variables stood in for.
    model, _ = rendered.render(command, REPO / "compose" / "compose.yaml", {})
    prometheus = model["services"]["prometheus"]
    assert set(prometheus["profiles"]) == {"observability", "metrics"}  # the old name works
    mounts = {volume["target"]: Path(volume["source"]) for volume in prometheus["volumes"]}
    assert mounts["/etc/prometheus/alerts.yml"] == RULES
    assert mounts["/etc/prometheus/prometheus.yml"] == REPO / "compose" / "prometheus.yml"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]


def test_the_compose_prometheus_config_with_its_rules_passes_promtool(tmp_path: Path):
    # Side by side, as compose.yaml mounts them in /etc/prometheus.
    shutil.copy(REPO / "compose" / "prometheus.yml", tmp_path)
    shutil.copy(RULES, tmp_path)
    checked = promtool("check", "config", tmp_path / "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 8 rules found" in checked.stdout
    (tmp_path / "alerts.yml").unlink()  # guards the check: without the rules it must fail
    assert promtool("check", "config", tmp_path / "prometheus.yml").returncode != 0


# -- the dashboard and the rules against a live service --------------------------------------------


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of the dashboard."""
    doc = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in doc["panels"]
        for target in panel.get("targets", ())
    ]


def rule_queries() -> list[tuple[str, str]]:
    import yaml

    doc = yaml.safe_load(RULES.read_text())
    return [(rule["alert"], rule["expr"]) for group in doc["groups"] for rule in group["rules"]]


def variable_queries() -> list[str]:
    """The selectors inside the dashboard's ``label_values(...)`` variable queries."""
    doc = json.loads(DASHBOARD.read_text())
    found = []
    for variable in doc["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["query"]["query"])
            assert match, variable["query"]
            found.append(match.group(1))
    return found


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (a small lexer: strings, label matchers,
    grouping clauses and durations removed; what is left that is not a function or keyword)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group()
        follows = text[match.end() :].lstrip()[:1]
        if name not in PROMQL_WORDS and follows != "(":
            names.add(name)
    return names


def exported_names(page: str) -> set[str]:
    """Every series name a /metrics page exports, families without samples included."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count", ""),
    }
    names = set()
    for family in text_string_to_metric_families(page):
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def test_metric_names_are_found_in_expressions():
    # Guards the lexer the next test relies on.
    assert metric_names(
        'sum by (service, le) (rate(rpc_x_bucket{a="b{c}",d=~"$m"}[5m])) / on(i) up > bool 2'
    ) == {"rpc_x_bucket", "up"}
    assert metric_names("sum by (service) (rpc_calls_in_flight) / rpc_max") == {
        "rpc_calls_in_flight",
        "rpc_max",
    }


@pytest.fixture
def scraped(start_service: Any, tmp_path: Path) -> Iterator[tuple[ServiceProcess, str]]:
    """A live service with traffic of every kind, scraped by a real Prometheus every second that
    evaluates the rules every second; yields (service, Prometheus's address)."""
    binary = require_tool("prometheus")
    # Its peer "gone" refuses connections: calls to it make the client series (retries, a
    # breaker that opens) the dashboard's "Calls to peers" row and the peer alerts read.
    gone = f"gone=http://127.0.0.1:{_free_port()}/api"
    service = start_service(OBSERVED, env={"SERVICE_MAX_BODY_BYTES": "2048", "SERVICE_PEERS": gone})
    traffic(service.port)  # makes every labelled series, so the first scrape has them all
    shutil.copy(RULES, tmp_path)
    (tmp_path / "prometheus.yml").write_text(
        "global:\n"
        "  scrape_interval: 1s\n"
        "  scrape_timeout: 1s\n"
        "  evaluation_interval: 1s\n"
        "rule_files: [alerts.yml]\n"
        "scrape_configs:\n"
        f"  - job_name: {JOB}\n"
        "    static_configs:\n"
        f"      - targets: ['127.0.0.1:{service.port}']\n"
        "        labels: {service: observed}\n"
    )
    web = f"127.0.0.1:{_free_port()}"
    log_path = tmp_path / "prometheus.log"
    with log_path.open("wb") as log:
        prometheus = subprocess.Popen(
            [
                binary,
                f"--config.file={tmp_path / 'prometheus.yml'}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address={web}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_scrape(f"http://{web}/api/v1", prometheus, log_path)
        # Again after a first scrape, so rate() sees every series increase.
        traffic(service.port)
        increased = (
            f'sum(rate(rpc_calls_total{{job="{JOB}",outcome!="ok"}}[1m])) > 0 and '
            f'sum(rate(rpc_http_rejected_total{{job="{JOB}"}}[1m])) > 0'
        )
        wait_until(lambda: query(web, increased) != [], 30, "a scrape after the traffic")
        yield service, web
    finally:
        prometheus.terminate()
        try:
            prometheus.wait(15)
        except subprocess.TimeoutExpired:
            prometheus.kill()
            prometheus.wait()


def traffic(port: int) -> None:
    """Calls of every kind the dashboard shows, and a refused request."""
    batch = [{"jsonrpc": "2.0", "method": "echo", "params": [i], "id": i} for i in range(5)]
    post(port, json.dumps(batch).encode())
    rpc(port, "fail")  # an application error
    rpc(port, "fail_with", [-32603])  # a server fault
    rpc(port, "echo", [1, 2])  # invalid params
    rpc(port, "sleep", [0.01])
    for _ in range(3):  # retried, then failed fast once the breaker opens
        rpc(port, "call_peer", ["gone"])
    too_big = post(port, b'{"pad": "' + b"x" * 4096 + b'"}')
    assert too_big.status == 413  # counted in rpc_http_rejected_total


def query(web: str, expr: str) -> list[Any]:
    """The result of an instant query; AssertionError with Prometheus's reason if it fails."""
    url = f"http://{web}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        doc = _get_json(url)
    except urllib.error.HTTPError as exc:
        raise AssertionError(f"{expr}\n-> {exc.code}: {exc.read().decode()}") from None
    assert doc["status"] == "success", doc
    result: list[Any] = doc["data"]["result"]
    return result


def substitute(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a Grafana variable this test does not know: {expr}"
    return expr


def test_every_dashboard_query_runs_and_shows_the_live_services_series(scraped):
    service, web = scraped
    exported = exported_names(request(service.port, "GET", "/metrics").body.decode())
    exported.add("up")  # Prometheus's own series for every target
    queries = dashboard_queries()
    assert len(queries) >= 14
    for title, expr in queries:
        names = metric_names(expr)
        assert names, (title, expr)
        assert names <= exported, f"{title}: not exported by the runtime: {names - exported}"
        # Every panel shows data for this service: its traffic above made every series.
        assert query(web, substitute(expr)) != [], f"{title}: no data for\n{substitute(expr)}"
    for selector in variable_queries():
        assert metric_names(selector) <= exported
        series = query(web, substitute(selector))
        assert {s["metric"]["service"] for s in series} == {"observed"}


def test_every_rule_names_exported_series_and_evaluates_without_error(scraped):
    service, web = scraped
    exported = exported_names(request(service.port, "GET", "/metrics").body.decode())
    exported.add("up")
    for alert, expr in rule_queries():
        assert metric_names(expr) <= exported, alert
        query(web, expr)  # parses and runs on the live series

    rules: list[dict[str, Any]] = []

    def evaluated() -> bool:
        groups = _get_json(f"http://{web}/api/v1/rules")["data"]["groups"]
        rules[:] = [rule for group in groups for rule in group["rules"]]
        # A rule never evaluated says 0001-01-01T00:00:00Z.
        return bool(rules) and all(rule["lastEvaluation"] > "1970" for rule in rules)

    wait_until(evaluated, 20, "every rule evaluated once")
    assert sorted(rule["name"] for rule in rules) == sorted(name for name, _ in rule_queries())
    assert {(rule["name"], rule["health"]) for rule in rules} == {
        (rule["name"], "ok") for rule in rules
    }
