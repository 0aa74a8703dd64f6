"""The benchmark's report (bench/report.py) and command line (bench/run.py), on made-up runs.

What a reader of the table relies on: ratios are taken round by round against the right peer,
a workload a peer did not run has no row, and each issue-14 target is judged on its own figure.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import REPO


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """bench/run.py as a module (it and its siblings import each other by bare name)."""
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    yield importlib.import_module("run")


def _run(peer: str, workload: str, round_no: int, calls: float, **extra: Any) -> dict[str, Any]:
    return {
        "round": round_no,
        "peer": peer,
        "workload": workload,
        "ok": True,
        "requests_per_s": calls,
        "calls_per_s": calls,
        "latency_ms": {"p50": 1.0, "p99": extra.pop("p99", 10.0)},
        "cpu_us_per_call": extra.pop("cpu", 100.0),
        "rss_mib": 30.0,
        "error_count": 0,
        **extra,
    }


def _verdicts(targets: str) -> dict[str, str]:
    """Each target line of the report: its label -> "<figure> <verdict>"."""
    found = {}
    for line in targets.splitlines()[1:]:
        label, _, rest = line.strip().partition("  ")
        found[label] = " ".join(rest.split())
    return found


def test_typed_is_judged_against_untyped_round_by_round(bench: ModuleType) -> None:
    runs = [
        _run("ours-untyped", "single", 1, 1000, cpu=100.0),
        _run("ours-typed", "single", 1, 950, cpu=130.0),
        _run("ours-untyped", "single", 2, 2000, cpu=100.0),
        _run("ours-typed", "single", 2, 1600, cpu=120.0),
    ]
    rows = bench.summarise(
        runs,
        ["ours-untyped", "ours-typed"],
        ["single"],
        {"single": 1},
        {"ours-typed": "ours-untyped"},
    )
    typed = rows[1]
    assert typed["ratios_per_round"]["vs_reference"] == [0.95, 0.8]
    assert typed["ratio_vs_reference"] == pytest.approx(0.875)
    verdicts = _verdicts(bench.format_targets(rows))
    assert verdicts["ours-typed single calls/s >= 0.85x ours-untyped"] == "0.88x met"
    assert typed["cpu_ratio_vs_reference"] == pytest.approx(1.25)
    assert verdicts["ours-typed single CPU/call <= 1.15x ours-untyped"] == "1.25x NOT MET"
    assert rows[0]["ratio_vs_reference"] is None  # no reference of its own in this run


def test_twohop_rows_only_for_peers_that_ran_it_with_each_hops_cpu(bench: ModuleType) -> None:
    runs = [
        _run("ours", "twohop", 1, 4000, cpu=200.0, backend_cpu_us_per_call=100.0,
             client_cpu_us_per_call=100.0, p99=30.0),
        _run("aiohttp-rpc", "twohop", 1, 1600, cpu=500.0, backend_cpu_us_per_call=200.0,
             client_cpu_us_per_call=300.0, p99=90.0),
    ]  # fmt: skip
    rows = bench.summarise(runs, ["ours", "ours-plain", "aiohttp-rpc"], ["twohop"], {"twohop": 1})
    assert [row["peer"] for row in rows] == ["ours", "aiohttp-rpc"]
    assert rows[0]["ratio_vs_aiohttp_rpc"] == pytest.approx(2.5)
    assert rows[0]["client_cpu_ratio_vs_aiohttp_rpc"] == pytest.approx(1 / 3)
    verdicts = _verdicts(bench.format_targets(rows))
    assert verdicts["ours twohop calls/s >= 2.0x aiohttp-rpc"] == "2.50x met"
    assert verdicts["ours twohop client CPU/call <= aiohttp-rpc's"] == "0.33x met"
    assert verdicts["ours twohop p99 <= aiohttp-rpc's"] == "0.33x met"
    hops = bench.format_hops(rows).splitlines()
    assert hops[3].split() == ["ours", "twohop", "4,000", "30.00", "200.0", "100.0", "100.0",
                               "2.50x", "0.33x"]  # fmt: skip


def test_the_floor_shows_what_the_architecture_reaches_and_ours_share_of_it(
    bench: ModuleType,
) -> None:
    runs = [
        _run("ours", "single", 1, 20_000),
        _run("aiohttp-rpc", "single", 1, 10_000),
        _run("asyncio-floor", "single", 1, 50_000),
    ]
    rows = bench.summarise(runs, ["ours", "aiohttp-rpc", "asyncio-floor"], ["single"],
                           {"single": 1})  # fmt: skip
    verdicts = _verdicts(bench.format_targets(rows))
    assert verdicts["ours single calls/s >= 3.5x aiohttp-rpc"] == "2.00x NOT MET"
    assert verdicts["asyncio-floor single calls/s x aiohttp-rpc; ours at"] == "5.00x 40%"


def test_a_missed_target_says_not_met(bench: ModuleType) -> None:
    runs = [
        _run("ours", "twohop", 1, 2000, backend_cpu_us_per_call=1.0, client_cpu_us_per_call=9.0),
        _run("aiohttp-rpc", "twohop", 1, 1600, backend_cpu_us_per_call=1.0,
             client_cpu_us_per_call=3.0),
    ]  # fmt: skip
    rows = bench.summarise(runs, ["ours", "aiohttp-rpc"], ["twohop"], {"twohop": 1})
    verdicts = _verdicts(bench.format_targets(rows))
    assert verdicts["ours twohop calls/s >= 2.0x aiohttp-rpc"] == "1.25x NOT MET"
    assert verdicts["ours twohop client CPU/call <= aiohttp-rpc's"] == "3.00x NOT MET"


def test_the_backend_runs_on_the_load_cpus_unless_told(bench: ModuleType) -> None:
    args = bench.parse_args([])
    assert (args.backend_cpus, args.overlap) == ("1", False)
    args = bench.parse_args(["--server-cpus", "0-3", "--load-cpus", "4-7", "--backend-cpus", "8"])
    assert (args.server_set, args.load_set, args.backend_set) == ({0, 1, 2, 3}, {4, 5, 6, 7}, {8})


def test_overlapping_cpus_are_accepted_and_flagged(bench: ModuleType) -> None:
    # So --workers 2 can be tried on two cores; the table then warns its figures mean nothing.
    args = bench.parse_args(["--workers", "2", "--server-cpus", "0,1", "--load-cpus", "1"])
    assert args.overlap is True
    rows = bench.summarise([_run("ours", "single", 1, 10)], ["ours"], ["single"], {"single": 1})
    assert "WARNING: server and wrk CPUs overlap" in bench.format_table(rows, args)


def test_an_unknown_peer_is_refused_with_the_known_ones(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "ours,nope"])
    assert "unknown peer(s) nope; known: ours, ours-plain, ours-untyped, ours-typed" in (
        capsys.readouterr().err
    )
