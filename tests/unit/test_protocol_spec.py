"""Every example of section 7 of the JSON-RPC 2.0 specification, sent verbatim to the dispatcher.

The specification's error objects carry no ``data``; ``data`` is optional and server-defined
(section 5.1), so the comparisons drop it. Batch replies may come in any order (section 6).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from service_template.protocol import Dispatcher, Method
from tests.unit.rpc_doubles import FakeContext, invoke


class SpecService:
    """The methods the specification's examples call, and a log of the calls they received."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def subtract(self, minuend: int, subtrahend: int) -> int:
        return minuend - subtrahend

    def sum(self, *numbers: int) -> int:
        return sum(numbers)

    def update(self, *values: int) -> None:
        self.calls.append(("update", values))

    def notify_hello(self, value: int) -> None:
        self.calls.append(("notify_hello", (value,)))

    def notify_sum(self, *numbers: int) -> None:
        self.calls.append(("notify_sum", numbers))

    async def get_data(self) -> list[Any]:
        return ["hello", 5]


def make_dispatcher(service: SpecService) -> Dispatcher:
    funcs: dict[str, Callable[..., Any]] = {
        "subtract": service.subtract,
        "sum": service.sum,
        "update": service.update,
        "notify_hello": service.notify_hello,
        "notify_sum": service.notify_sum,
        "get_data": service.get_data,
    }
    return Dispatcher({name: Method(name, func) for name, func in funcs.items()}, invoke)


def send(text: str, service: SpecService | None = None) -> Any:
    """Dispatch ``text`` and return the decoded reply (None when there is no reply)."""
    dispatcher = make_dispatcher(service or SpecService())
    raw = asyncio.run(dispatcher.dispatch(text.encode(), FakeContext()))
    if raw is None:
        return None
    return without_data(json.loads(raw))


def without_data(reply: Any) -> Any:
    """Drop the optional ``error.data`` members the specification's examples do not show."""
    if isinstance(reply, list):
        return [without_data(item) for item in reply]
    if isinstance(reply, dict) and isinstance(reply.get("error"), dict):
        reply = dict(reply)
        reply["error"] = {k: v for k, v in reply["error"].items() if k != "data"}
    return reply


def unordered(replies: list[Any]) -> list[str]:
    return sorted(json.dumps(reply, sort_keys=True) for reply in replies)


def test_positional_parameters() -> None:
    assert send('{"jsonrpc": "2.0", "method": "subtract", "params": [42, 23], "id": 1}') == {
        "jsonrpc": "2.0",
        "result": 19,
        "id": 1,
    }
    assert send('{"jsonrpc": "2.0", "method": "subtract", "params": [23, 42], "id": 2}') == {
        "jsonrpc": "2.0",
        "result": -19,
        "id": 2,
    }


def test_named_parameters_in_either_order() -> None:
    request = (
        '{"jsonrpc": "2.0", "method": "subtract", '
        '"params": {"subtrahend": 23, "minuend": 42}, "id": 3}'
    )
    assert send(request) == {"jsonrpc": "2.0", "result": 19, "id": 3}
    request = (
        '{"jsonrpc": "2.0", "method": "subtract", '
        '"params": {"minuend": 42, "subtrahend": 23}, "id": 4}'
    )
    assert send(request) == {"jsonrpc": "2.0", "result": 19, "id": 4}


def test_notification_runs_the_method_and_gets_no_reply() -> None:
    service = SpecService()
    assert send('{"jsonrpc": "2.0", "method": "update", "params": [1,2,3,4,5]}', service) is None
    assert service.calls == [("update", (1, 2, 3, 4, 5))]


def test_notification_to_a_missing_method_gets_no_reply() -> None:
    assert send('{"jsonrpc": "2.0", "method": "foobar"}') is None


def test_call_of_a_non_existent_method() -> None:
    assert send('{"jsonrpc": "2.0", "method": "foobar", "id": "1"}') == {
        "jsonrpc": "2.0",
        "error": {"code": -32601, "message": "Method not found"},
        "id": "1",
    }


def test_call_with_invalid_json() -> None:
    assert send('{"jsonrpc": "2.0", "method": "foobar, "params": "bar", "baz]') == {
        "jsonrpc": "2.0",
        "error": {"code": -32700, "message": "Parse error"},
        "id": None,
    }


def test_call_with_an_invalid_request_object() -> None:
    assert send('{"jsonrpc": "2.0", "method": 1, "params": "bar"}') == {
        "jsonrpc": "2.0",
        "error": {"code": -32600, "message": "Invalid Request"},
        "id": None,
    }


def test_batch_with_invalid_json() -> None:
    request = """[
  {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
  {"jsonrpc": "2.0", "method"
]"""
    assert send(request) == {
        "jsonrpc": "2.0",
        "error": {"code": -32700, "message": "Parse error"},
        "id": None,
    }


def test_empty_array_is_one_invalid_request_not_an_array() -> None:
    assert send("[]") == {
        "jsonrpc": "2.0",
        "error": {"code": -32600, "message": "Invalid Request"},
        "id": None,
    }


def test_invalid_batch_of_one() -> None:
    assert send("[1]") == [
        {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None}
    ]


def test_invalid_batch_of_three() -> None:
    invalid = {
        "jsonrpc": "2.0",
        "error": {"code": -32600, "message": "Invalid Request"},
        "id": None,
    }
    assert send("[1,2,3]") == [invalid, invalid, invalid]


def test_mixed_batch() -> None:
    service = SpecService()
    request = """[
        {"jsonrpc": "2.0", "method": "sum", "params": [1,2,4], "id": "1"},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]},
        {"jsonrpc": "2.0", "method": "subtract", "params": [42,23], "id": "2"},
        {"foo": "boo"},
        {"jsonrpc": "2.0", "method": "foo.get", "params": {"name": "myself"}, "id": "5"},
        {"jsonrpc": "2.0", "method": "get_data", "id": "9"}
    ]"""
    replies = send(request, service)
    assert isinstance(replies, list)
    assert unordered(replies) == unordered(
        [
            {"jsonrpc": "2.0", "result": 7, "id": "1"},
            {"jsonrpc": "2.0", "result": 19, "id": "2"},
            {"jsonrpc": "2.0", "error": {"code": -32600, "message": "Invalid Request"}, "id": None},
            {"jsonrpc": "2.0", "error": {"code": -32601, "message": "Method not found"}, "id": "5"},
            {"jsonrpc": "2.0", "result": ["hello", 5], "id": "9"},
        ]
    )
    assert service.calls == [("notify_hello", (7,))]


def test_batch_of_notifications_only_gets_no_reply() -> None:
    service = SpecService()
    request = """[
        {"jsonrpc": "2.0", "method": "notify_sum", "params": [1,2,4]},
        {"jsonrpc": "2.0", "method": "notify_hello", "params": [7]}
    ]"""
    assert send(request, service) is None
    assert sorted(service.calls) == [("notify_hello", (7,)), ("notify_sum", (1, 2, 4))]
