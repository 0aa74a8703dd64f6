"""The README's examples of a service's seams, served as written: the call's context,
``authenticate``, hooks around each call, and routes of its own.

Each example is a whole module. It is written to a file, served through a real server on
loopback with the project's test kit (``python -m service_template serve FILE.py:Class`` in a
subprocess, as its reader would, or ``serve_in_thread``), and called over HTTP; the tests
assert what the reader would see. ``test_readme.RUN_HERE`` registers the blocks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from service_template.loader import load_service_class
from service_template.testing import ServiceProcess, serve_in_thread
from tests.conftest import TOKEN
from tests.integration.services import post, request, rpc
from tests.integration.test_readme import block_of

pytestmark = pytest.mark.integration

DENIED = {"code": -32001, "message": "Access denied"}
SIGNING_KEY = "readme-signing-key-for-tests"


def written(kind: str, path: Path) -> Path:
    """The README block registered as ``kind``, saved as the module ``path``."""
    path.write_text(block_of(kind).text, encoding="utf-8")
    return path


def test_the_call_context_example_answers_with_its_own_call(
    tmp_path: Path, start_service: Callable[..., ServiceProcess]
) -> None:
    module = written("context", tmp_path / "who.py")
    service = start_service(f"{module}:WhoService")
    headers = {"X-Request-Id": "readme-ctx-1", "User-Agent": "reader/1.0"}
    reply = rpc(service.port, "whoami", request_id="call-7", headers=headers)
    assert reply.json()["result"] == {
        "method": "whoami",
        "id": "call-7",
        "notification": False,
        "request_id": "readme-ctx-1",
        "agent": "reader/1.0",
        "principal": "None",  # a public method: nobody asked who is calling
    }
    batch = [{"jsonrpc": "2.0", "method": "whoami", "id": n} for n in (1, None)]
    answers = post(service.port, json.dumps(batch).encode(), {"X-Request-Id": "readme-ctx-2"})
    seen = {item["id"]: item["result"] for item in answers.json()}
    assert set(seen) == {1, None}  # "id": null is a call, and each member sees its own id
    assert all(seen[n]["id"] == n and seen[n]["request_id"] == "readme-ctx-2" for n in seen)
    service.stop_cleanly()


def bearer(subject: str, key: str = SIGNING_KEY) -> dict[str, str]:
    """The token the README describes: ``<subject>.<hex HMAC-SHA256 of the subject>``."""
    signed = hmac.new(key.encode(), subject.encode(), hashlib.sha256).hexdigest()
    return {"Authorization": f"Bearer {subject}.{signed}"}


def test_the_authenticate_example_admits_a_signed_token_and_refuses_any_other(
    tmp_path: Path, start_service: Callable[..., ServiceProcess]
) -> None:
    module = written("authenticate", tmp_path / "accounts.py")
    service = start_service(f"{module}:AccountService", env={"SERVICE_SIGNING_KEY": SIGNING_KEY})
    reply = rpc(service.port, "whoami", headers=bearer("alice"))
    assert reply.json()["result"] == "alice"  # the principal reached the private method
    alices_signature = bearer("alice")["Authorization"].rpartition(".")[2]
    refused = [
        bearer("alice", key="another-key"),
        {"Authorization": f"Bearer bob.{alices_signature}"},
        {"Authorization": "Bearer alice"},
        {"Authorization": "Bearer ." + alices_signature},
        {"Authorization": bearer("alice")["Authorization"].replace("Bearer", "Basic")},
        {"X-Api-Token": TOKEN},  # this service authenticates its own way, not with the API token
        {},
    ]
    for headers in refused:
        reply = rpc(service.port, "whoami", headers=headers)
        assert (reply.status, reply.json()["error"]) == (200, DENIED), headers
    service.stop_cleanly()
    logged = "\n".join(service.lines)
    assert "authenticate raised" not in logged  # a bad token is a refusal, not a fault
    assert SIGNING_KEY not in logged


def test_the_hooks_example_refuses_a_call_without_a_tenant_and_times_every_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    module = written("hooks", tmp_path / "tenants.py")
    tenants = load_service_class(f"{module}:TenantService")

    class Impatient(tenants):  # type: ignore[misc,valid-type]
        slow_call = 0.0  # every call is slow: the timing hook logs each one

    caplog.set_level(logging.WARNING)
    for service_class in (tenants, Impatient):
        with serve_in_thread(service_class) as running:
            no_tenant = {"X-Request-Id": f"{service_class.__name__}-1"}
            refused = rpc(running.port, "tenant.info", request_id=5, headers=no_tenant).json()
            assert refused == {
                "jsonrpc": "2.0",
                "error": {"code": 4030, "message": "X-Tenant header required"},
                "id": 5,
            }
            acme = {"X-Tenant": "acme", "X-Request-Id": f"{service_class.__name__}-2"}
            assert rpc(running.port, "tenant.info", headers=acme).json()["result"] == "acme"
    slow = [r.getMessage() for r in caplog.records if r.name == tenants.__module__]
    assert len(slow) == 2, slow  # none from the README's class: its calls took under 1 s
    assert re.fullmatch(r"slow call tenant\.info \(Impatient-1\): \d+\.\ds", slow[0])  # refused
    assert re.fullmatch(r"slow call tenant\.info \(Impatient-2\): \d+\.\ds", slow[1])


def test_the_routes_example_serves_its_webhook_and_receipts(
    tmp_path: Path, start_service: Callable[..., ServiceProcess]
) -> None:
    module = written("routes", tmp_path / "billing_routes.py")
    service = start_service(f"{module}:Billing")
    event = {"Content-Type": "application/json", "X-Request-Id": "evt-1"}
    paid = request(service.port, "POST", "/webhooks/stripe", b'{"type": "charge"}', event)
    assert (paid.status, paid.body, paid.headers["X-Request-Id"]) == (204, b"", "evt-1")
    receipt = request(service.port, "GET", "/receipts/42")
    assert (receipt.status, receipt.json()) == (200, {"receipt": 42, "payments": 1})
    assert len(receipt.headers["X-Request-Id"]) == 16  # none sent: one is made and echoed
    over = request(service.port, "POST", "/webhooks/stripe", b"x" * (256 * 1024 + 1), event)
    assert over.status == 413
    assert request(service.port, "GET", "/receipts/latest").status == 404  # digits only
    assert request(service.port, "GET", "/receipts/1").json()["payments"] == 1  # 413: not run
    service.stop_cleanly()
