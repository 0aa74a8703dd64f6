"""The extension seams, through the real server: a service's own settings, its lifespan and
readiness checks, its own metrics (one process and ``--workers 2``), and ``start()`` running
it exactly as ``serve`` does. The services are in ``seam_services.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, TOKEN, ServiceProcess, wait_http
from tests.integration.services import metrics, request, result_of, sample

pytestmark = pytest.mark.integration

BILLING = "tests.integration.seam_services:BillingService"
FAILING = "tests.integration.seam_services:FailingStartService"
LATE_CHECKS = "tests.integration.seam_services:LateChecksService"
SCRIPT = str(REPO / "tests" / "integration" / "seam_services.py")
PASSWORD = "pa55-w0rd-not-for-logs"
DB_URL = f"postgresql://billing:{PASSWORD}@db.internal:5432/billing"


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m service_template ARGS`` to completion, with only the given SERVICE_ vars."""
    return run_command([sys.executable, "-m", "service_template", *args], env)


def run_command(
    command: list[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    full_env.update({"PYTHONUNBUFFERED": "1", **(env or {})})
    return subprocess.run(
        command, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=60, check=False
    )


def messages(service: ServiceProcess) -> list[str]:
    return [str(entry.get("msg")) for entry in service.logs()]


def in_order(seen: list[str], expected: list[str]) -> bool:
    """``expected`` appears in ``seen`` in this order (other lines may come between)."""
    remaining = iter(seen)
    return all(any(line == wanted for line in remaining) for wanted in expected)


def readyz(port: int) -> tuple[int, dict[str, Any]]:
    reply = request(port, "GET", "/readyz")
    return reply.status, reply.json()


def readme_example() -> str:
    """The Python block that follows the README's "example: billing" marker."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    after = readme.split("<!-- example: billing", 1)[1]
    return after.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_example_serves_its_settings_readiness_and_metrics(
    tmp_path: Path, start_service
):
    module = tmp_path / "billing.py"
    module.write_text(readme_example(), encoding="utf-8")
    service = start_service(
        f"{module}:BillingService",
        env={"SERVICE_DATABASE_URL": DB_URL, "SERVICE_INVOICE_PREFIX": "RM"},
        args=("--set", "pool_size=3"),
    )
    assert result_of(service.port, "next_invoice", [12]) == "RM-00012"
    wait_http(f"{service.base}/readyz")
    assert readyz(service.port)[1]["checks"]["database:responseTime"][0]["status"] == "pass"
    assert sample(metrics(service.port), "billing_invoices_total") == 1
    service.stop_cleanly()


# --- settings of its own --------------------------------------------------------------------------


def test_a_service_reads_its_own_settings_from_service_variables(start_service):
    service = start_service(
        BILLING,
        env={
            "SERVICE_DATABASE_URL": DB_URL,
            "SERVICE_INVOICE_PREFIX": "B",
            "SERVICE_POOL_SIZE": "7",
        },
    )
    assert result_of(service.port, "next_invoice", [42]) == "B-00042"
    database = result_of(service.port, "database")
    assert (database["host"], database["size"]) == ("db.internal", 7)
    service.stop_cleanly()
    assert PASSWORD not in "\n".join(service.lines)


def test_own_settings_follow_the_runtimes_precedence_file_then_env_then_flags(
    tmp_path: Path, start_service
):
    config = tmp_path / "billing.yaml"
    config.write_text(
        f"database_url: '{DB_URL}'\ninvoice_prefix: FILE\npool_size: 3\nmax_batch: 5\n"
    )
    service = start_service(
        BILLING,
        env={"SERVICE_INVOICE_PREFIX": "ENV", "SERVICE_POOL_SIZE": "4"},
        args=("--config", str(config), "--set", "invoice_prefix=FLAG"),
    )
    assert result_of(service.port, "next_invoice", [1]) == "FLAG-00001"
    assert result_of(service.port, "database")["size"] == 4  # the variable beats the file
    batch = request(
        service.port,
        "POST",
        "/api",
        b"["
        + b",".join(b'{"jsonrpc":"2.0","method":"database","id":%d}' % i for i in range(6))
        + b"]",
        {"Content-Type": "application/json"},
    )
    assert batch.json()["error"]["code"] == -32600  # the runtime's max_batch, from the same file


def test_a_typo_a_bad_value_and_a_missing_setting_are_all_reported_at_once():
    done = run_cli(
        "serve",
        BILLING,
        "--port",
        "0",
        env={"SERVICE_INVOICE_PREFX": "B", "SERVICE_POOL_SIZE": "0", "SERVICE_PROT": "1"},
    )
    assert done.returncode == 2, done.stdout + done.stderr
    header, *problems = done.stderr.splitlines()
    assert header == "error: invalid configuration (4 problems):"
    assert sorted(problems) == [
        "  SERVICE_DATABASE_URL: required, not set",
        "  SERVICE_INVOICE_PREFX: unknown setting (did you mean SERVICE_INVOICE_PREFIX?)",
        "  SERVICE_POOL_SIZE='0': must be between 1 and 50",
        "  SERVICE_PROT: unknown setting (did you mean SERVICE_PORT?)",
    ]
    assert "Traceback" not in done.stdout + done.stderr


def test_config_shows_the_services_own_settings_with_the_secret_masked(tmp_path: Path):
    secret_file = tmp_path / "database-url"
    secret_file.write_text(DB_URL + "\n")
    for env in (
        {"SERVICE_DATABASE_URL": DB_URL},
        {"SERVICE_DATABASE_URL_FILE": str(secret_file)},  # a mounted Kubernetes Secret
    ):
        done = run_cli("config", BILLING, "--set", "pool_size=9", env=env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == f"# {BILLING}"
        shown = yaml.safe_load(done.stdout)
        assert shown["database_url"] == "***"
        assert (shown["invoice_prefix"], shown["pool_size"], shown["port"]) == ("INV", 9, 8000)
        assert PASSWORD not in done.stdout + done.stderr


# --- a lifecycle that always cleans up ----------------------------------------------------------


def test_lifespan_wraps_serving_and_a_check_it_adds_decides_readyz(start_service):
    service = start_service(BILLING, env={"SERVICE_DATABASE_URL": DB_URL})
    wait_http(f"{service.base}/readyz")
    status, doc = readyz(service.port)
    assert status == 200
    assert doc["checks"]["database:responseTime"][0]["status"] == "pass"
    result_of(service.port, "set_database_up", [False])
    status, doc = readyz(service.port)
    assert status == 503
    assert doc["checks"]["database:responseTime"][0]["status"] == "fail"
    result_of(service.port, "set_database_up", [True])
    assert readyz(service.port)[0] == 200
    service.stop_cleanly()
    lifecycle = [
        "pool opened",
        "on_start ran",
        "listening",
        "draining",
        "on_stop ran",
        "pool closed",
        "stopped",
    ]
    assert in_order(messages(service), lifecycle), messages(service)


def test_checks_added_in_on_start_and_while_serving_decide_readyz(start_service):
    service = start_service(LATE_CHECKS)
    wait_http(f"{service.base}/readyz")
    status, doc = readyz(service.port)
    assert status == 200
    assert doc["checks"]["cache:responseTime"][0]["status"] == "pass"
    result_of(service.port, "set_cache_warm", [False])
    status, doc = readyz(service.port)
    assert status == 503
    assert doc["checks"]["cache:responseTime"][0]["status"] == "fail"
    result_of(service.port, "set_cache_warm", [True])
    assert readyz(service.port)[0] == 200
    result_of(service.port, "add_check", ["queue", False])
    status, doc = readyz(service.port)
    assert status == 503
    assert doc["checks"]["queue:responseTime"][0]["status"] == "fail"
    assert doc["checks"]["cache:responseTime"][0]["status"] == "pass"
    service.stop_cleanly()


def test_when_on_start_fails_halfway_on_stop_runs_and_lifespan_exits():
    done = run_cli("serve", FAILING, "--port", "0", env={"SERVICE_DATABASE_URL": DB_URL})
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [yaml.safe_load(line) for line in done.stdout.splitlines() if line.startswith("{")]
    seen = [str(line.get("msg")) for line in lines]
    assert in_order(seen, ["pool opened", "on_start began", "on_stop ran", "pool closed"]), seen
    assert "listening" not in seen  # the port never opened
    failure = next(line for line in lines if line.get("msg") == "the service failed")
    assert "the cache would not warm up" in str(failure)


def test_when_the_port_is_taken_everything_started_is_undone_and_the_error_is_plain():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_cli("serve", BILLING, "--port", str(port), env={"SERVICE_DATABASE_URL": DB_URL})
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port}: ")
    seen = [str(yaml.safe_load(line).get("msg")) for line in done.stdout.splitlines()]
    assert in_order(seen, ["pool opened", "on_start ran", "on_stop ran", "pool closed"]), seen


# --- metrics of its own --------------------------------------------------------------------------


def test_the_services_own_counter_is_on_the_metrics_page(start_service):
    service = start_service(BILLING, env={"SERVICE_DATABASE_URL": DB_URL})
    assert sample(metrics(service.port), "billing_invoices_total") == 0
    for number in range(3):
        result_of(service.port, "next_invoice", [number])
    page = metrics(service.port)
    assert sample(page, "billing_invoices_total") == 3
    assert sample(page, "rpc_calls_total", method="next_invoice", outcome="ok") == 3


def _calls_on_two_workers(port: int) -> int:
    """Call next_invoice on fresh connections until both workers answered; the call count."""
    pids: set[int] = set()
    calls = 0
    while len(pids) < 2 and calls < 300:
        result_of(port, "next_invoice", [calls])
        pids.add(result_of(port, "database")["pid"])
        calls += 1
    assert len(pids) == 2, f"one worker answered all {calls} calls"
    return calls


def test_the_services_own_counter_adds_up_across_workers(start_service):
    service = start_service(BILLING, env={"SERVICE_DATABASE_URL": DB_URL}, args=("--workers", "2"))
    calls = _calls_on_two_workers(service.port)
    for _ in range(4):  # any worker's page counts every worker's invoices, once
        page = metrics(service.port)
        assert sample(page, "billing_invoices_total") == calls
    service.stop_cleanly()


# --- one way to start ----------------------------------------------------------------------------


def test_start_runs_the_service_as_serve_does(start_service):
    env = {"SERVICE_DATABASE_URL": DB_URL, "SERVICE_PORT": "0", "SERVICE_INVOICE_PREFIX": "S"}
    service = start_service("", env=env, command=[sys.executable, SCRIPT])
    assert result_of(service.port, "next_invoice", [7]) == "S-00007"
    assert readyz(service.port)[1]["checks"]["database:responseTime"][0]["status"] == "pass"
    service.stop_cleanly()
    assert in_order(messages(service), ["pool opened", "listening", "draining", "pool closed"])


def test_start_runs_workers_as_serve_does(start_service):
    env = {"SERVICE_DATABASE_URL": DB_URL, "SERVICE_PORT": "0", "SERVICE_WORKERS": "2"}
    service = start_service("", env=env, command=[sys.executable, SCRIPT])
    calls = _calls_on_two_workers(service.port)
    assert sample(metrics(service.port), "billing_invoices_total") == calls
    service.stop_cleanly()


def test_start_refuses_a_bad_configuration_as_serve_does():
    env = {"SERVICE_DATABASE_URL": DB_URL, "SERVICE_INVOICE_PREFX": "B", "SERVICE_API_TOKEN": TOKEN}
    by_start = run_command([sys.executable, SCRIPT], env)
    by_serve = run_cli("serve", BILLING, env=env)
    assert by_start.returncode == by_serve.returncode == 2
    assert (
        by_start.stderr
        == by_serve.stderr
        == (
            "error: invalid configuration (1 problem):\n"
            "  SERVICE_INVOICE_PREFX: unknown setting (did you mean SERVICE_INVOICE_PREFIX?)\n"
        )
    )
