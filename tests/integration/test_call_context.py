"""The call's context, hooks and authenticate, through a real server on loopback.

A method reads its call with ``current_call()`` (async, plain in the pool, each batch member
its own); hooks compose in declared order, refuse, observe; ``authenticate`` returns the
principal private methods need, and fails closed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import TOKEN, ServiceProcess
from tests.integration.services import INTERNALS, post, rpc

pytestmark = pytest.mark.integration

CONTEXT = "tests.integration.context_services:ContextService"
HOOKED = "tests.integration.context_services:HookedService"


def call(method: str, request_id: Any = 1, params: Any = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        doc["params"] = params
    return doc


def test_async_and_plain_methods_read_their_call(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(CONTEXT)
    headers = {"X-Request-Id": "ctx-req-1", "X-Test-Agent": "probe/1.0"}
    for method in ("whoami", "whoami_plain"):
        reply = rpc(service.port, method, request_id=f"id-{method}", headers=headers)
        assert reply.status == 200
        seen = reply.json()["result"]
        assert seen["method"] == method
        assert seen["id"] == f"id-{method}"
        assert seen["notification"] is False
        assert seen["request_id"] == "ctx-req-1"
        assert seen["agent"] == "probe/1.0"  # looked up as "X-TEST-Agent": case-insensitive
        assert seen["headers_read_only"] is True
        assert seen["principal"] is None  # public method, nobody asked who the caller is
    plain = rpc(service.port, "whoami_plain").json()["result"]
    assert plain["thread"].startswith("context-call")  # it did run in the pool


def test_each_batch_member_sees_its_own_method_and_id(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(CONTEXT)
    batch = [
        call("whoami_later", "slow-a", [0.2]),
        call("whoami", 2),
        call("whoami_plain", "three"),
        call("whoami_later", 4, [0.05]),  # runs concurrently with slow-a
        call("whoami", None),  # "id": null is a call, not a notification
    ]
    reply = post(service.port, json.dumps(batch).encode(), {"X-Request-Id": "batch-7"})
    assert reply.status == 200
    answers = {item["id"]: item["result"] for item in reply.json()}
    assert set(answers) == {"slow-a", 2, "three", 4, None}
    for item in batch:
        seen = answers[item["id"]]
        assert (seen["method"], seen["id"]) == (item["method"], item["id"])
        assert seen["request_id"] == "batch-7"


def test_a_private_method_sees_the_principal_of_a_valid_token(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(CONTEXT)
    reply = rpc(service.port, "whoami_private", headers={"X-Api-Token": TOKEN})
    assert reply.json()["result"]["principal"] == "api-token"
    refused = rpc(service.port, "whoami_private", headers={"X-Api-Token": "wrong"}).json()
    assert refused["error"]["code"] == -32001


def test_hooks_run_in_declared_order_first_outermost(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(HOOKED)
    reply = rpc(service.port, "layers")
    assert reply.json()["result"] == ["method", "second", "first"]


def test_a_hook_refuses_a_call_with_its_rpc_error(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(HOOKED)
    refused = rpc(service.port, "tenant.info", request_id=5).json()
    assert refused == {
        "jsonrpc": "2.0",
        "error": {"code": 4030, "message": "X-Tenant header required"},
        "id": 5,
    }
    allowed = rpc(service.port, "tenant.info", headers={"X-Tenant": "acme"}).json()
    assert allowed["result"] == "acme"


def test_a_hook_observes_outcome_and_duration_of_every_call(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(HOOKED)
    rpc(service.port, "whoami_later", [0.2], headers={"X-Request-Id": "timed-1"})
    rpc(service.port, "fail", headers={"X-Request-Id": "timed-2"})
    rpc(service.port, "whoami_private", headers={"X-Request-Id": "timed-3"})
    slow = service.wait_for_log(lambda e: e.get("hook_request_id") == "timed-1")
    assert slow["hook_method"] == "whoami_later"
    assert slow["hook_outcome"] == "ok"
    assert 150 <= float(slow["hook_ms"]) < 5000  # type: ignore[arg-type]
    failed = service.wait_for_log(lambda e: e.get("hook_request_id") == "timed-2")
    assert failed["hook_outcome"] == "ValueError"  # the method's own exception, seen by the hook
    denied = service.wait_for_log(lambda e: e.get("hook_request_id") == "timed-3")
    assert denied["hook_outcome"] == "-32001"  # hooks wrap authentication too


def test_authenticate_returns_the_principal_private_methods_need(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(HOOKED)
    bearer = {"Authorization": "Bearer user:alice"}
    assert rpc(service.port, "whoami_private", headers=bearer).json()["result"]["principal"] == (
        "alice"
    )
    # The API token is not accepted any more: this service authenticates another way.
    token = {"X-Api-Token": TOKEN}
    assert rpc(service.port, "whoami_private", headers=token).json()["error"]["code"] == -32001
    empty = {"Authorization": "Bearer empty"}  # a falsy principal proves nothing
    assert rpc(service.port, "whoami_private", headers=empty).json()["error"]["code"] == -32001
    # A hook may authenticate for a public method: the method then sees the principal too.
    me = rpc(service.port, "user.me", headers=bearer).json()["result"]
    assert (me["method"], me["principal"]) == ("user.me", "alice")
    assert rpc(service.port, "user.me").json()["error"]["code"] == -32001


def test_an_authenticate_that_raises_is_a_logged_refusal_not_a_fault(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(HOOKED)
    batch = [call("whoami_private", 1), call("user.me", 2), call("layers", 3)]
    reply = post(service.port, json.dumps(batch).encode(), {"Authorization": "Bearer explode"})
    assert reply.status == 200
    answers = {item["id"]: item for item in reply.json()}
    assert answers[1]["error"] == {"code": -32001, "message": "Access denied"}
    assert answers[2]["error"] == {"code": -32001, "message": "Access denied"}
    assert answers[3]["result"] == ["method", "second", "first"]
    assert not INTERNALS.search(reply.body) and b"s3cr3t" not in reply.body
    logged = service.wait_for_log(lambda e: e.get("msg") == "authenticate raised; access denied")
    assert "s3cr3t-detail" in str(logged.get("exc"))  # the operator gets the detail
    denials = [e for e in service.logs() if e.get("msg") == "authenticate raised; access denied"]
    assert len(denials) == 1  # asked once for the whole batch
