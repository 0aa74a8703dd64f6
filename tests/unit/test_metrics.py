"""The call metrics as a scraper sees them: bucket resolution, a bounded ``outcome`` label, and
the exposition format negotiated from ``Accept`` (parsed back with prometheus_client's parsers).
"""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

from service_template.metrics import APPLICATION_ERROR, DURATION_BUCKETS, Metrics
from service_template.openrpc import declared_error_codes

# What Prometheus 2.x sends when it scrapes (scrape/scrape.go, acceptHeader).
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


def make_metrics(**kwargs: object) -> Metrics:
    return Metrics(CollectorRegistry(), "svc", ["echo", "fail"], **kwargs)  # type: ignore[arg-type]


def page(metrics: Metrics, accept: str | None = None) -> dict[tuple[str, frozenset[str]], float]:
    body, content_type = metrics.render(accept)
    parse = parse_om if content_type.startswith("application/openmetrics-text") else parse_text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in parse(body.decode())
        for s in family.samples
    }


def buckets_of(
    samples: dict[tuple[str, frozenset[str]], float], method: str
) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) pairs of one method's duration histogram, in order."""
    found = []
    for (name, labels), value in samples.items():
        label = dict(labels)
        if name == "rpc_call_duration_seconds_bucket" and label["method"] == method:
            found.append((float(label["le"]), value))
    return sorted(found)


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus's histogram_quantile (promql/quantile.go): linear inside the bucket that holds
    the rank, the lowest bucket's lower edge taken as 0."""
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    raise AssertionError("unreachable: +Inf holds every observation")


# -- buckets --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0.000003, 0.000012])
def test_a_microseconds_call_lands_above_the_lowest_bucket(seconds):
    metrics = make_metrics()
    for _ in range(100):
        metrics.observe_call("echo", None, seconds)
    buckets = buckets_of(page(metrics), "echo")
    assert buckets[0] == (DURATION_BUCKETS[0], 0)
    assert next(count for bound, count in buckets if bound >= seconds) == 100


@pytest.mark.parametrize("seconds", [0.000003, 0.000012, 0.00003, 0.0002, 0.003, 0.04, 0.7, 20.0])
def test_the_median_from_the_buckets_is_within_a_factor_of_three_of_the_truth(seconds):
    metrics = make_metrics()
    # A realistic spread: the same call, ±20 %.
    for i in range(200):
        metrics.observe_call("echo", None, seconds * (0.8 + 0.4 * i / 199))
    median = histogram_quantile(0.5, buckets_of(page(metrics), "echo"))
    assert seconds / 3 <= median <= seconds * 3, (seconds, median)


def test_buckets_run_from_a_microsecond_past_the_default_deadline():
    assert DURATION_BUCKETS[0] == 0.000001
    assert DURATION_BUCKETS[-1] > 30  # the default call_timeout
    assert list(DURATION_BUCKETS) == sorted(set(DURATION_BUCKETS))


# -- outcome --------------------------------------------------------------------------------------


def outcomes(samples: dict[tuple[str, frozenset[str]], float], method: str) -> dict[str, float]:
    found = {}
    for (name, labels), value in samples.items():
        label = dict(labels)
        if name == "rpc_calls_total" and label["method"] == method:
            found[label["outcome"]] = value
    return found


def test_reserved_and_declared_codes_count_by_value_and_every_other_code_as_one():
    metrics = make_metrics(declared_codes=[4001, 4002])
    for code in (-32601, -32602, -32603, -32001, -32003, -32050, 4001, 4002):
        metrics.observe_call("fail", code, 0.001)
    for code in range(1, 5001):  # a method that puts, say, a row id in its codes
        metrics.observe_call("fail", code * 7 if code * 7 not in (4001, 4002) else -code, 0.001)
    seen = outcomes(page(metrics), "fail")
    assert seen[APPLICATION_ERROR] == 5000
    for code in ("-32601", "-32602", "-32603", "-32001", "-32003", "-32050", "4001", "4002"):
        assert seen[code] == 1, code
    assert len(seen) == 10  # ok, eight codes by value, application_error


def test_the_outcome_of_a_success_is_ok():
    metrics = make_metrics()
    metrics.observe_call("echo", None, 0.001)
    assert outcomes(page(metrics), "echo") == {"ok": 1}


def test_declared_codes_are_read_from_the_openrpc_errors_of_methods_and_components():
    document = {
        "methods": [
            {"name": "a", "errors": [{"code": 4001, "message": "x"}, {"$ref": "#/c"}]},
            {"name": "b"},
            {"name": "c", "errors": [{"code": True}, {"code": "4003"}, "junk"]},
        ],
        "components": {"errors": {"Gone": {"code": 4100, "message": "gone"}}},
    }
    assert declared_error_codes(document) == {4001, 4100}


# -- exposition -----------------------------------------------------------------------------------


def test_prometheus_gets_openmetrics_which_parses_and_ends_in_eof():
    metrics = make_metrics(max_in_flight=64)
    metrics.observe_call("echo", None, 0.00002)
    body, content_type = metrics.render(PROMETHEUS_ACCEPT)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")
    samples = page(metrics, PROMETHEUS_ACCEPT)
    assert samples[("rpc_calls_total", frozenset({("method", "echo"), ("outcome", "ok")}))] == 1
    assert samples[("rpc_calls_max_in_flight", frozenset())] == 64


@pytest.mark.parametrize(
    "accept",
    [None, "", "text/plain", "*/*", "text/plain;version=0.0.4"],
    ids=["absent", "empty", "text", "anything", "text 0.0.4"],
)
def test_other_scrapers_get_the_prometheus_text_format(accept):
    metrics = make_metrics()
    metrics.observe_call("echo", None, 0.00002)
    body, content_type = metrics.render(accept)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert b"# EOF" not in body
    assert (
        page(metrics, accept)[
            ("rpc_calls_total", frozenset({("method", "echo"), ("outcome", "ok")}))
        ]
        == 1
    )


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [
        ("text/plain;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5", False),
        ("text/plain;q=0.5,application/openmetrics-text;version=1.0.0", True),
        ("application/openmetrics-text;version=1.0.0;q=0,text/plain", False),
        ("application/openmetrics-text;version=1.0.0;q=oops,text/plain", False),
    ],
    ids=["text preferred", "openmetrics preferred", "openmetrics refused", "malformed weight"],
)
def test_the_format_follows_the_weights_of_accept(accept, openmetrics):
    _, content_type = make_metrics().render(accept)
    assert content_type.startswith("application/openmetrics-text") is openmetrics
