"""Plain methods run in the thread pool (``service_template.pool``), against a real server.

- a plain method blocking a thread for a second does not delay other calls;
- a batch of plain members answers each member with its own result or error, ids kept;
- ``current_call()`` answers inside a plain method, in its pool thread;
- ``blocking=False`` runs a plain method on the event loop's thread instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import ServiceProcess
from tests.integration.services import BackgroundCall, post, rpc

pytestmark = pytest.mark.integration

TARGET = "tests.integration.offload_services:OffloadService"
# A quick call on an idle loopback server takes a few milliseconds; the machine is shared, so
# the bound is generous, yet far below the blocker's one second.
QUICK = 0.5


def _call(method: str, params: list[Any] | None, call_id: int | None) -> dict[str, Any]:
    call: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        call["params"] = params
    if call_id is not None:
        call["id"] = call_id
    return call


def test_a_blocking_plain_method_does_not_delay_other_calls(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(TARGET)
    blockers = [BackgroundCall(service.port, "block", [1.0]) for _ in range(2)]
    started = time.monotonic()
    for blocker in blockers:
        blocker.start()
    # While both sleep in their threads, plain, async and batched calls are answered at once.
    slowest = 0.0
    answered = 0
    while time.monotonic() - started < 0.8:
        for method in ("add", "add_async"):
            reply = rpc(service.port, method, [2, 3])
            assert reply.json() == {"jsonrpc": "2.0", "result": 5, "id": 1}
            slowest = max(slowest, reply.seconds)
            answered += 1
        batch = [_call("add", [i, 1], i) for i in range(1, 6)]
        reply = post(service.port, json.dumps(batch).encode())
        assert sorted(r["result"] for r in reply.json()) == [2, 3, 4, 5, 6]
        slowest = max(slowest, reply.seconds)
    assert all(blocker.is_alive() for blocker in blockers), "the blockers returned too early"
    assert answered >= 4
    assert slowest < QUICK, f"a call took {slowest:.3f}s while a plain method blocked"
    assert [blocker.result() for blocker in blockers] == [1.0, 1.0]


def test_a_batch_of_plain_calls_answers_each_member_with_its_own_outcome(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(TARGET)
    batch = [
        _call("add", [1, 2], 1),
        _call("fail", ["fault"], "two"),
        _call("add", [3, 4], 3),
        _call("add", [0, 0], None),  # a notification: no answer
        _call("fail", ["invalid"], 5),
        _call("block", [0.05], 6),
        _call("add", ["x"], 7),  # one argument short: invalid params, never run
    ]
    reply = post(service.port, json.dumps(batch).encode())
    assert reply.status == 200
    by_id = {member["id"]: member for member in reply.json()}
    assert set(by_id) == {1, "two", 3, 5, 6, 7}
    assert by_id[1] == {"jsonrpc": "2.0", "result": 3, "id": 1}
    assert by_id[3] == {"jsonrpc": "2.0", "result": 7, "id": 3}
    assert by_id[6] == {"jsonrpc": "2.0", "result": 0.05, "id": 6}
    fault = by_id["two"]["error"]
    assert fault == {"code": -32603, "message": "Internal error"}  # no server detail leaks
    assert by_id[5]["error"]["code"] == -32602
    assert by_id[5]["error"]["data"] == {"reason": "kind was 'invalid'"}
    assert by_id[7]["error"]["code"] == -32602


def test_many_concurrent_plain_calls_each_get_their_own_result(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(TARGET)
    batch = [_call("add", [i, 1000], i) for i in range(1, 101)]
    reply = post(service.port, json.dumps(batch).encode())
    assert {(m["id"], m["result"]) for m in reply.json()} == {(i, i + 1000) for i in range(1, 101)}


def test_batch_members_see_their_own_call_and_a_deadline_ends_only_its_member(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(TARGET)
    batch = [
        _call("slow", [2.0], "late"),
        *(_call("where", None, i) for i in range(1, 6)),
        _call("slow", [0.01], "on-time"),
    ]
    reply = post(service.port, json.dumps(batch).encode())
    assert reply.seconds < 2.0, "the batch waited for the member past its deadline"
    by_id = {member["id"]: member for member in reply.json()}
    assert by_id["late"]["error"]["code"] == -32002
    assert by_id["late"]["error"]["data"] == {"timeout": 0.3}
    assert by_id["on-time"]["result"] == 0.01
    for i in range(1, 6):
        assert by_id[i]["result"]["id"] == i
        assert by_id[i]["result"]["method"] == "where"


def test_current_call_answers_inside_a_plain_method_in_its_pool_thread(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(TARGET)
    result = rpc(service.port, "where", request_id="req-7").json()["result"]
    assert result["method"] == "where"
    assert result["id"] == "req-7"
    assert result["thread"].startswith("offload-call_"), result


def test_blocking_false_runs_a_plain_method_on_the_event_loop(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(TARGET)
    result = rpc(service.port, "where_inline", request_id=9).json()["result"]
    assert result == {"thread": "MainThread", "method": "where_inline", "id": 9}
