"""The benchmark harness (bench/run.py) runs each kind of measurement end to end, briefly.

Not a benchmark: one 1-second run per case, on the test's own interpreter (its venv has this
project, aiohttp-rpc and tornado), and only what a reader of the table relies on is asserted:
the run is clean (the exact replies before and after, no wrk or HTTP errors), it produced the
figures its table prints, and the processes it measured are the ones it claims. No figure is
compared with a threshold.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import REPO, ServiceProcess, missing_tool

pytestmark = pytest.mark.integration

BENCH = REPO / "bench"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[ModuleType]:
    """bench/run.py as a module, its server logs under tmp_path, its tools present."""
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            missing_tool(f"{tool} is not installed: bash scripts/ci/install-tools.sh .venv")
    if not {0, 1} <= os.sched_getaffinity(0):
        missing_tool("the benchmark harness needs CPUs 0 and 1")
    monkeypatch.syspath_prepend(str(BENCH))
    run = importlib.import_module("run")
    monkeypatch.setattr(run, "BENCH_DIR", tmp_path)
    monkeypatch.setattr(run, "LOG_DIR", tmp_path / "logs")
    (tmp_path / "logs").mkdir()
    yield run


def _args(run: ModuleType, *extra: str) -> argparse.Namespace:
    args: argparse.Namespace = run.parse_args(["--duration", "1", "--warmup", "0", *extra])
    return args


def _here(run: ModuleType, name: str) -> Any:
    """The named peer, started with this interpreter instead of its bench venv."""
    peer = next(peer for peer in run.PEERS if peer.name == name)
    return dataclasses.replace(peer, venv=None)


def _workload(run: ModuleType, name: str) -> Any:
    return next(workload for workload in run.WORKLOADS if workload.name == name)


def _clean(record: dict[str, Any]) -> None:
    assert record["failure"] is None, record.get("failure")
    assert record["ok"] is True
    assert record["requests"] > 0
    assert record["error_count"] == 0


def test_twohop_runs_our_gateway_and_aiohttp_rpcs_and_reports_each_hop(
    bench: ModuleType,
) -> None:
    args = _args(bench)
    twohop = _workload(bench, "twohop")
    records = [
        bench.measure(_here(bench, name), twohop, 1, args) for name in ("ours", "aiohttp-rpc")
    ]
    for record in records:
        _clean(record)
        assert record["cpu_us_per_call"] > 0  # the gateway's
        assert record["backend_cpu_us_per_call"] > 0
        assert record["client_cpu_us_per_call"] == pytest.approx(
            record["cpu_us_per_call"] - record["backend_cpu_us_per_call"]
        )
        assert record["server_log"] is None  # a clean run's logs are not kept
        assert record["backend_log"] is None
    rows = bench.summarise(records, ["ours", "aiohttp-rpc"], ["twohop"], {"twohop": 1}, {})
    ours = rows[0]
    assert ours["peer"] == "ours"
    assert ours["ratio_vs_aiohttp_rpc"] == pytest.approx(
        records[0]["calls_per_s"] / records[1]["calls_per_s"]
    )
    table = bench.format_hops(rows)
    assert "client ~ us/call" in table
    assert [line.split()[0] for line in table.splitlines()[3:]] == ["ours", "aiohttp-rpc"]


BROKEN_BACKEND = """
from service_template import MicroService, RPCError, public_method


class Unavailable(MicroService):
    name = "unavailable"

    @public_method
    async def add(self, a, b):
        raise RPCError(-32010, "backend is unavailable")
"""


def test_twohop_counts_error_replies_inside_a_200_as_errors(
    bench: ModuleType, tmp_path: Path, start_service: Callable[..., ServiceProcess]
) -> None:
    # A gateway whose backend calls fail answers quickly with -32010 in a 200: without reading
    # the replies, wrk would count those as calls served.
    (tmp_path / "unavailable.py").write_text(BROKEN_BACKEND)
    service = start_service(f"{tmp_path / 'unavailable.py'}:Unavailable")
    result, _ = bench.run_wrk(
        service.port, _workload(bench, "twohop"), 1, _args(bench), _here(bench, "ours")
    )
    assert result["requests"] > 0
    assert result["errors"]["rpc"] == result["requests"]
    assert result["errors"]["status"] == 0


def test_a_peer_without_a_gateway_does_not_run_the_twohop_workload(bench: ModuleType) -> None:
    peers = [peer for peer in bench.PEERS if peer.name in ("ours", "ours-plain", "nginx")]
    names = [peer.name for peer in bench.runs_of(_workload(bench, "twohop"), peers)]
    assert names == ["ours"]
    assert len(bench.runs_of(_workload(bench, "single"), peers)) == 3


def test_the_typed_and_untyped_peers_run_clean_and_compare_with_each_other(
    bench: ModuleType,
) -> None:
    args = _args(bench)
    single = _workload(bench, "single")
    records = [
        bench.measure(_here(bench, name), single, 1, args)
        for name in ("ours-untyped", "ours-typed")
    ]
    for record in records:
        _clean(record)
    rows = bench.summarise(
        records,
        ["ours-untyped", "ours-typed"],
        ["single"],
        {"single": 1},
        {"ours-typed": "ours-untyped"},
    )
    assert rows[1]["ratio_vs_reference"] == pytest.approx(
        records[1]["calls_per_s"] / records[0]["calls_per_s"]
    )
    assert "x ref: ours-typed over ours-untyped" in bench.format_table(rows, args)


def test_the_floor_answers_every_workload_exactly_and_runs_clean(bench: ModuleType) -> None:
    # Its figure is only a floor if it does the same work: the exact replies are checked before
    # and after each run, as for every JSON-RPC peer (204 and no body for a notification).
    args = _args(bench)
    floor = _here(bench, "asyncio-floor")
    assert floor.checked
    for name in ("single", "batch", "notification"):
        _clean(bench.measure(floor, _workload(bench, name), 1, args))


def test_the_server_path_cost_tool_answers_every_request_and_leaves_parts_out() -> None:
    # bench/server_path_cost.py checks every request was answered, or exits non-zero.
    tool = [sys.executable, str(BENCH / "server_path_cost.py"), "--requests", "640"]
    for without in ("", "log,metrics"):
        result = subprocess.run(
            [*tool, "--rounds", "1", "--without", without],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        figures = re.findall(r"(single|batch|notification)=([0-9.]+)us", result.stdout)
        assert [name for name, _ in figures] == ["single", "batch", "notification"]
        assert all(float(value) > 0 for _, value in figures)
        assert ("without log,metrics" in result.stdout) == bool(without)
    refused = subprocess.run(
        [*tool, "--without", "tracing"], capture_output=True, text=True, timeout=60, check=False
    )
    assert refused.returncode != 0
    assert "--without takes log, metrics; not tracing" in refused.stderr


def _call(port: int, params: list[Any]) -> dict[str, Any]:
    body = json.dumps({"jsonrpc": "2.0", "method": "add", "params": params, "id": 1}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        result: dict[str, Any] = json.loads(reply.read())
    return result


def test_the_typed_peer_validates_its_params_and_the_untyped_one_does_not(
    start_service: Callable[..., ServiceProcess],
) -> None:
    typed = start_service("bench/servers/ours_server.py:TypedComputeService")
    untyped = start_service("bench/servers/ours_server.py:UntypedComputeService")
    refused = _call(typed.port, ["1", 2])
    assert refused["error"]["code"] == -32602
    assert refused["error"]["data"]["param"] == "a"
    assert _call(untyped.port, ["1", "2"])["result"] == "12"  # nothing checked: str + str
    assert _call(typed.port, [1, 2])["result"] == 3


def test_workers_run_end_to_end_and_count_every_process(bench: ModuleType) -> None:
    # Two workers on two cores that wrk shares: only that it runs and what is summed is real.
    args = _args(bench, "--workers", "2", "--server-cpus", "0,1", "--load-cpus", "1")
    assert args.overlap is True
    single = _workload(bench, "single")
    record = bench.measure(_here(bench, "ours"), single, 1, args)
    _clean(record)
    assert record["server_processes"] == 3  # the supervisor and its two workers
    alone = bench.measure(_here(bench, "ours"), single, 1, _args(bench))
    _clean(alone)
    assert alone["server_processes"] == 1
    # Three interpreters resident against one: the sum covers the workers.
    assert record["rss_mib"] > 2 * alone["rss_mib"]
