"""Dispatcher edge cases beyond the specification's examples.

Covers ids, request validation, params binding, errors raised by methods, private methods,
batches, concurrency and what ``CallContext.record()`` observes.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import pytest

from service_template.protocol import (
    INVALID,
    NO_ID,
    UNKNOWN_METHOD,
    Dispatcher,
    InvalidParams,
    Method,
    RPCError,
)
from tests.unit.rpc_doubles import FakeContext, invoke

SECRET_TEXT = "db password is hunter2"


class EdgeService:
    """Methods covering each outcome, logging the calls that actually ran."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def nothing(self) -> None:
        self.calls.append("nothing")

    def echo(self, value: Any) -> Any:
        self.calls.append("echo")
        return value

    def add(self, a: int, b: int) -> int:
        self.calls.append("add")
        return a + b

    def greet(self, name: str, greeting: str = "hello") -> str:
        self.calls.append("greet")
        return f"{greeting}, {name}"

    def kwonly(self, *, a: int) -> int:
        self.calls.append("kwonly")
        return a

    def concat(self, a: Any) -> Any:
        self.calls.append("concat")
        return a + "x"  # a TypeError for a number: a bug in the method, not bad params

    def quota(self) -> None:
        self.calls.append("quota")
        raise RPCError(4001, "Quota exceeded", {"limit": 10, "used": [1, 2]})

    def reject_age(self, age: int) -> None:
        self.calls.append("reject_age")
        raise InvalidParams("age must be positive", {"field": "age"})

    def unencodable_data(self) -> None:
        self.calls.append("unencodable_data")
        raise RPCError(4002, "Odd failure", {object()})

    def crash(self) -> None:
        self.calls.append("crash")
        raise ValueError(SECRET_TEXT)

    def returns_set(self) -> set[object]:
        self.calls.append("returns_set")
        return {object()}  # a set is written as an array, but of what?

    def returns_object(self) -> object:
        self.calls.append("returns_object")
        return object()

    def secret(self, x: int) -> int:
        self.calls.append("secret")
        return x * 2

    async def users_get(self, user_id: int) -> dict[str, Any]:
        self.calls.append("users.get")
        return {"id": user_id, "name": "ada"}


PRIVATE = {"secret"}


def make_dispatcher(service: EdgeService, **options: Any) -> Dispatcher:
    names = [name for name in vars(EdgeService) if not name.startswith("_")]
    methods = {}
    for name in names:
        exposed = "users.get" if name == "users_get" else name
        func = getattr(service, name)
        methods[exposed] = Method(exposed, func, requires_auth=name in PRIVATE)
    return Dispatcher(methods, invoke, **options)


def request(method: Any, params: Any = NO_ID, request_id: Any = NO_ID) -> dict[str, Any]:
    item: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if params is not NO_ID:
        item["params"] = params
    if request_id is not NO_ID:
        item["id"] = request_id
    return item


def dispatch_raw(
    body: bytes | Any,
    service: EdgeService | None = None,
    ctx: FakeContext | None = None,
    **options: Any,
) -> bytes | None:
    """Dispatch ``body`` (bytes as is, anything else JSON-encoded) and return the raw reply."""
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    dispatcher = make_dispatcher(service or EdgeService(), **options)
    return asyncio.run(dispatcher.dispatch(body, ctx or FakeContext()))


def dispatch(body: bytes | Any, **kwargs: Any) -> Any:
    """Dispatch and return the decoded reply, or None when there is no reply."""
    raw = dispatch_raw(body, **kwargs)
    return None if raw is None else json.loads(raw)


def assert_error(reply: Any, code: int, request_id: Any) -> dict[str, Any]:
    """Check an error response's shape and return its error object."""
    assert set(reply) == {"jsonrpc", "error", "id"}
    assert reply["jsonrpc"] == "2.0"
    assert reply["id"] == request_id
    assert type(reply["id"]) is type(request_id)
    assert reply["error"]["code"] == code
    assert isinstance(reply["error"]["message"], str)
    return reply["error"]  # type: ignore[no-any-return]


# --- ids ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_id", "expected"),
    [
        ("0", 0),
        ('""', ""),
        ("null", None),
        ("-1", -1),
        ("1.5", 1.5),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ('"ключ 🙂 名前"', "ключ 🙂 名前"),
        ('"\\u00e9\\n"', "é\n"),
    ],
)
def test_echoes_the_id_exactly_as_sent(raw_id: str, expected: Any) -> None:
    body = f'{{"jsonrpc": "2.0", "method": "echo", "params": [7], "id": {raw_id}}}'.encode()
    reply = dispatch(body)
    assert reply == {"jsonrpc": "2.0", "result": 7, "id": expected}
    assert type(reply["id"]) is type(expected)


def test_echoes_a_large_integer_id_digit_for_digit() -> None:
    big = "123456789012345678901234567890"
    raw = dispatch_raw(f'{{"jsonrpc": "2.0", "method": "nothing", "id": {big}}}'.encode())
    assert raw is not None
    assert f'"id":{big}'.encode() in raw


def test_null_id_is_a_call_that_gets_a_response() -> None:
    service = EdgeService()
    assert dispatch(request("add", [1, 2], None), service=service) == {
        "jsonrpc": "2.0",
        "result": 3,
        "id": None,
    }
    assert service.calls == ["add"]


def test_null_id_error_is_answered_too() -> None:
    assert_error(dispatch(request("no_such_method", [], None)), -32601, None)


@pytest.mark.parametrize("bad_id", [True, False, {"a": 1}, [1], []])
def test_rejects_bool_object_and_array_ids_with_a_null_id(bad_id: Any) -> None:
    service = EdgeService()
    error = assert_error(dispatch(request("nothing", None, bad_id), service=service), -32600, None)
    assert error["message"] == "Invalid Request"
    assert service.calls == []


# --- request validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"method": "nothing", "id": 1},
        {"jsonrpc": "1.0", "method": "nothing", "id": 1},
        {"jsonrpc": 2.0, "method": "nothing", "id": 1},
        {"jsonrpc": "2", "method": "nothing", "id": 1},
        {"jsonrpc": None, "method": "nothing", "id": 1},
    ],
    ids=["missing", "1.0", "number-2.0", "2", "null"],
)
def test_rejects_a_missing_or_wrong_jsonrpc_version(body: dict[str, Any]) -> None:
    service = EdgeService()
    error = assert_error(dispatch(body, service=service), -32600, 1)
    assert error["message"] == "Invalid Request"
    assert service.calls == []


def test_invalid_request_without_id_is_still_answered() -> None:
    # Section 7's "invalid Request object" example: no id, yet a -32600 reply with id null.
    assert_error(dispatch({"jsonrpc": "2.0", "method": 1}), -32600, None)


def test_invalid_request_with_a_readable_id_is_answered_with_that_id() -> None:
    assert_error(dispatch({"jsonrpc": "2.0", "method": 1, "id": "abc"}), -32600, "abc")


@pytest.mark.parametrize("method", [None, 1, ["nothing"], {"name": "nothing"}, True])
def test_rejects_a_method_that_is_not_a_string(method: Any) -> None:
    assert_error(dispatch(request(method, None, 1)), -32600, 1)


def test_rejects_a_request_without_method() -> None:
    assert_error(dispatch({"jsonrpc": "2.0", "id": 1}), -32600, 1)


@pytest.mark.parametrize("params", [None, "bar", 3, 1.5, True])
def test_rejects_params_that_are_not_an_array_or_object(params: Any) -> None:
    service = EdgeService()
    error = assert_error(dispatch(request("nothing", params, 1), service=service), -32600, 1)
    assert "params" in error["data"]["reason"]
    assert service.calls == []


@pytest.mark.parametrize("body", [b"1", b'"nothing"', b"null", b"true", b"3.5"])
def test_rejects_a_body_that_is_neither_object_nor_array(body: bytes) -> None:
    assert_error(dispatch(body), -32600, None)


def test_a_nested_array_in_a_batch_is_an_invalid_member() -> None:
    replies = dispatch([[request("nothing", None, 1)]])
    assert isinstance(replies, list)
    assert len(replies) == 1
    assert_error(replies[0], -32600, None)


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b'{"jsonrpc": "2.0", "method": "echo", "params": [NaN], "id": 1}', b"\xff"],
)
def test_answers_an_unparsable_body_with_a_parse_error(body: bytes) -> None:
    error = assert_error(dispatch(body), -32700, None)
    assert error["message"] == "Parse error"


# --- params binding -----------------------------------------------------------------------------


def test_params_may_be_omitted_for_a_method_without_parameters() -> None:
    service = EdgeService()
    assert dispatch(request("nothing", request_id=1), service=service) == {
        "jsonrpc": "2.0",
        "result": None,
        "id": 1,
    }
    assert service.calls == ["nothing"]


def test_omitted_params_use_the_defaults() -> None:
    assert dispatch(request("greet", {"name": "ada"}, 1))["result"] == "hello, ada"
    assert dispatch(request("greet", ["ada", "hi"], 1))["result"] == "hi, ada"


def test_empty_params_are_accepted_for_a_method_without_parameters() -> None:
    assert dispatch(request("nothing", [], 1))["result"] is None
    assert dispatch(request("nothing", {}, 2))["result"] is None


@pytest.mark.parametrize(
    ("method", "params", "reason"),
    [
        ("add", None, "missing a required argument: 'a'"),
        ("add", {"a": 1}, "missing a required argument: 'b'"),
        ("add", [1], "missing a required argument: 'b'"),
        ("add", {"a": 1, "b": 2, "c": 3}, "unexpected keyword argument 'c'"),
        ("add", [1, 2, 3], "too many positional arguments"),
        ("greet", {"nme": "ada"}, "missing a required argument: 'name'"),
        ("greet", {"name": "ada", "colour": "red"}, "unexpected keyword argument 'colour'"),
        ("kwonly", [1], "too many positional arguments"),
        ("nothing", [1], "too many positional arguments"),
        ("nothing", {"x": 1}, "unexpected keyword argument 'x'"),
    ],
)
def test_params_that_do_not_bind_are_invalid_params_with_a_reason(
    method: str, params: Any, reason: str
) -> None:
    service = EdgeService()
    body = request(method, NO_ID if params is None else params, 9)
    error = assert_error(dispatch(body, service=service), -32602, 9)
    assert error["message"] == "Invalid params"
    assert reason in error["data"]["reason"]
    assert service.calls == []


def test_a_type_error_inside_a_method_is_an_internal_error_not_invalid_params() -> None:
    service = EdgeService()
    raw = dispatch_raw(request("concat", [1], 5), service=service)
    assert raw is not None
    error = assert_error(json.loads(raw), -32603, 5)
    assert error == {"code": -32603, "message": "Internal error"}
    assert b"TypeError" not in raw
    assert service.calls == ["concat"]


# --- errors raised by methods -------------------------------------------------------------------


def test_an_rpc_error_raised_by_a_method_reaches_the_client_with_its_data() -> None:
    reply = dispatch(request("quota", [], "q"))
    assert reply == {
        "jsonrpc": "2.0",
        "error": {"code": 4001, "message": "Quota exceeded", "data": {"limit": 10, "used": [1, 2]}},
        "id": "q",
    }


def test_a_standard_error_raised_by_a_method_keeps_its_message_and_data() -> None:
    error = assert_error(dispatch(request("reject_age", [-1], 1)), -32602, 1)
    assert error == {"code": -32602, "message": "age must be positive", "data": {"field": "age"}}


def test_unencodable_error_data_is_dropped_but_the_error_is_kept() -> None:
    error = assert_error(dispatch(request("unencodable_data", [], 1)), 4002, 1)
    assert error == {"code": 4002, "message": "Odd failure"}


def test_a_crash_is_a_generic_internal_error_that_leaks_nothing() -> None:
    raw = dispatch_raw(request("crash", [], 1))
    assert raw is not None
    assert json.loads(raw) == {
        "jsonrpc": "2.0",
        "error": {"code": -32603, "message": "Internal error"},
        "id": 1,
    }
    for leak in (b"ValueError", b"hunter2", b"Traceback", b"crash"):
        assert leak not in raw


def test_a_crash_in_debug_mode_names_the_exception() -> None:
    error = assert_error(dispatch(request("crash", [], 1), debug=True), -32603, 1)
    assert error["message"] == "Internal error"
    assert error["data"]["exception"] == "ValueError"
    assert SECRET_TEXT in error["data"]["message"]


@pytest.mark.parametrize("method", ["returns_set", "returns_object"])
def test_an_unencodable_result_is_an_internal_error_that_keeps_the_id(method: str) -> None:
    error = assert_error(dispatch(request(method, [], "keep-me")), -32603, "keep-me")
    assert error == {"code": -32603, "message": "Internal error"}


def test_an_unencodable_result_is_recorded_as_an_internal_error() -> None:
    # Metrics and logs must count what the client saw (-32603), not the method's own success.
    ctx = FakeContext()
    dispatch(request("returns_set", [], 1), ctx=ctx)
    assert ctx.outcomes() == Counter({("returns_set", "1", -32603): 1})


@pytest.mark.parametrize(
    ("method", "params", "code"),
    [
        ("crash", [], -32603),
        ("quota", [], 4001),
        ("no_such_method", [], -32601),
        ("add", [1], -32602),
        ("concat", [1], -32603),
        ("secret", [1], -32001),
        ("returns_set", [], None),  # never encoded: a notification's result is discarded
    ],
)
def test_a_notification_that_fails_gets_no_reply(
    method: str, params: Any, code: int | None
) -> None:
    ctx = FakeContext(authorized=False)
    assert dispatch(request(method, params), ctx=ctx) is None
    label = UNKNOWN_METHOD if method == "no_such_method" else method
    assert ctx.outcomes() == Counter({(label, NO_ID, code): 1})


# --- exactly one of result / error --------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        request("nothing", [], 1),
        request("echo", [None], 2),
        request("echo", [{"error": 1, "result": 2}], 3),
        request("crash", [], 4),
        request("quota", [], 5),
        request("add", [1], 6),
        request("no_such_method", [], 7),
        request("returns_set", [], 8),
        {"jsonrpc": "1.0", "method": "nothing", "id": 9},
        [request("nothing", [], 10), request("crash", [], 11), 1, request("echo", [0], 12)],
    ],
)
def test_every_response_has_exactly_one_of_result_and_error(body: Any) -> None:
    reply = dispatch(body)
    replies = reply if isinstance(reply, list) else [reply]
    assert replies
    for item in replies:
        assert item["jsonrpc"] == "2.0"
        assert "id" in item
        assert ("result" in item) != ("error" in item)
        assert set(item) in ({"jsonrpc", "id", "result"}, {"jsonrpc", "id", "error"})


# --- private methods ----------------------------------------------------------------------------


def test_a_private_method_is_denied_without_authorization() -> None:
    service = EdgeService()
    ctx = FakeContext(authorized=False)
    error = assert_error(dispatch(request("secret", [2], 1), service=service, ctx=ctx), -32001, 1)
    assert error["message"] == "Access denied"
    assert service.calls == []
    assert ctx.asked == 1


def test_a_private_method_answers_when_authorized() -> None:
    ctx = FakeContext(authorized=True)
    assert dispatch(request("secret", [2], 1), ctx=ctx) == {"jsonrpc": "2.0", "result": 4, "id": 1}
    assert ctx.asked == 1


def test_access_is_checked_before_params_so_signatures_do_not_leak() -> None:
    ctx = FakeContext(authorized=False)
    assert_error(dispatch(request("secret", {"wrong": 1}, 1), ctx=ctx), -32001, 1)


def test_a_failing_authorization_check_is_an_internal_error_not_access() -> None:
    class BrokenContext(FakeContext):
        async def authenticate(self) -> Any:
            self.asked += 1
            raise OSError("token store unreachable")

    service = EdgeService()
    ctx = BrokenContext()
    replies = dispatch(
        [request("secret", [1], 1), request("secret", [2], 2)], service=service, ctx=ctx
    )
    for reply, request_id in zip(replies, [1, 2], strict=True):
        assert assert_error(reply, -32603, request_id) == {
            "code": -32603,
            "message": "Internal error",
        }
    assert service.calls == []
    assert ctx.asked == 1


def test_a_public_method_never_asks_for_authorization() -> None:
    ctx = FakeContext(authorized=False)
    assert dispatch(request("add", [1, 2], 1), ctx=ctx)["result"] == 3
    assert ctx.asked == 0


@pytest.mark.parametrize("verdict", [True, False])
def test_authorization_is_asked_at_most_once_per_batch(verdict: bool) -> None:
    ctx = FakeContext(authorized=verdict)
    batch = [request("secret", [i], i) for i in range(5)] + [request("add", [1, 2], 99)]
    batch.append(request("secret", [7]))  # a private notification shares the same verdict
    replies = dispatch(batch, ctx=ctx)
    assert ctx.asked == 1
    by_id = {reply["id"]: reply for reply in replies}
    assert set(by_id) == {0, 1, 2, 3, 4, 99}
    assert by_id[99]["result"] == 3
    for i in range(5):
        if verdict:
            assert by_id[i]["result"] == i * 2
        else:
            assert_error(by_id[i], -32001, i)


def test_a_batch_without_private_calls_never_asks_for_authorization() -> None:
    ctx = FakeContext()
    dispatch([request("add", [1, 2], 1), request("no_such_method", [], 2)], ctx=ctx)
    assert ctx.asked == 0


# --- batches ------------------------------------------------------------------------------------


def test_a_batch_longer_than_max_batch_is_one_invalid_request() -> None:
    service = EdgeService()
    ctx = FakeContext()
    batch = [request("nothing", [], i) for i in range(4)]
    reply = dispatch(batch, service=service, ctx=ctx, max_batch=3)
    assert isinstance(reply, dict)
    assert_error(reply, -32600, None)
    assert service.calls == []
    assert ctx.outcomes() == Counter({(INVALID, "null", -32600): 1})


def test_a_batch_of_exactly_max_batch_is_answered() -> None:
    batch = [request("echo", [i], i) for i in range(3)]
    replies = dispatch(batch, max_batch=3)
    assert [reply["result"] for reply in replies] == [0, 1, 2]


def test_the_default_max_batch_is_100() -> None:
    assert len(dispatch([request("echo", [i], i) for i in range(100)])) == 100
    assert_error(dispatch([request("echo", [i], i) for i in range(101)]), -32600, None)


def test_batch_replies_come_in_request_order_with_matching_ids() -> None:
    ids: list[Any] = ["z", 3, "a", 0, -7, 2.5, "", None, 10**20]
    replies = dispatch([request("echo", [f"value-{i}"], i) for i in ids])
    assert [reply["id"] for reply in replies] == ids
    assert [reply["result"] for reply in replies] == [f"value-{i}" for i in ids]


def test_notifications_in_a_batch_run_but_get_no_reply() -> None:
    service = EdgeService()
    batch = [request("nothing"), request("add", [1, 2], 1), request("crash")]
    assert dispatch(batch, service=service) == [{"jsonrpc": "2.0", "result": 3, "id": 1}]
    assert sorted(service.calls) == ["add", "crash", "nothing"]


def test_batch_members_run_concurrently() -> None:
    async def scenario() -> bytes | None:
        first, second = asyncio.Event(), asyncio.Event()

        # Each method waits for the other to start: run one after the other, they deadlock.
        async def ping() -> str:
            first.set()
            await second.wait()
            return "ping"

        async def pong() -> str:
            second.set()
            await first.wait()
            return "pong"

        dispatcher = Dispatcher(
            {"ping": Method("ping", ping), "pong": Method("pong", pong)}, invoke
        )
        body = json.dumps([request("ping", [], 1), request("pong", [], 2)]).encode()
        return await asyncio.wait_for(dispatcher.dispatch(body, FakeContext()), timeout=5)

    raw = asyncio.run(scenario())
    assert raw is not None
    assert json.loads(raw) == [
        {"jsonrpc": "2.0", "result": "ping", "id": 1},
        {"jsonrpc": "2.0", "result": "pong", "id": 2},
    ]


def test_identical_failing_requests_get_their_own_ids() -> None:
    replies = dispatch([request("no_such_method", [], "a"), request("no_such_method", [], "b")])
    assert [reply["id"] for reply in replies] == ["a", "b"]
    for reply, request_id in zip(replies, ["a", "b"], strict=True):
        assert_error(reply, -32601, request_id)


def test_fifty_mixed_errors_in_a_batch_each_keep_their_own_id() -> None:
    # (method, params, jsonrpc version, expected code), cycled through 50 requests.
    kinds: list[tuple[str, list[Any], str, int]] = [
        ("no_such_method", [], "2.0", -32601),
        ("add", [1], "2.0", -32602),
        ("quota", [], "2.0", 4001),
        ("crash", [], "2.0", -32603),
        ("nothing", [], "1.0", -32600),
    ]
    batch = []
    for i in range(50):
        method, params, version, _ = kinds[i % len(kinds)]
        batch.append({"jsonrpc": version, "method": method, "params": params, "id": i})
    replies = dispatch(batch)
    assert len(replies) == 50
    for i, reply in enumerate(replies):
        assert_error(reply, kinds[i % len(kinds)][3], i)


# --- record() -----------------------------------------------------------------------------------


def test_record_is_called_once_per_call_with_the_right_label_and_code() -> None:
    ctx = FakeContext(authorized=False)
    batch = [
        request("add", [1, 2], 1),
        request("no_such_method", [], 2),
        {"jsonrpc": "2.0", "method": 5, "id": 3},
        17,
        request("crash", [], 4),
        request("quota", [], 5),
        request("add", {"a": 1}, 6),
        request("secret", [1], 7),
        request("nothing"),
        request("no_such_method"),
    ]
    dispatch(batch, ctx=ctx)
    assert ctx.outcomes() == Counter(
        {
            ("add", "1", None): 1,
            (UNKNOWN_METHOD, "2", -32601): 1,
            (INVALID, "3", -32600): 1,
            (INVALID, "null", -32600): 1,
            ("crash", "4", -32603): 1,
            ("quota", "5", 4001): 1,
            ("add", "6", -32602): 1,
            ("secret", "7", -32001): 1,
            ("nothing", NO_ID, None): 1,
            (UNKNOWN_METHOD, NO_ID, -32601): 1,
        }
    )
    assert all(seconds >= 0 for *_, seconds in ctx.records)


def test_record_receives_the_params_of_the_call() -> None:
    ctx = FakeContext()
    dispatch(request("add", {"a": 1, "b": 2}, 1), ctx=ctx)
    assert [(m, params) for m, _, params, _, _ in ctx.records] == [("add", {"a": 1, "b": 2})]


@pytest.mark.parametrize(
    ("body", "code"),
    [(b"{oops", -32700), (b"[]", -32600), (b'"x"', -32600)],
)
def test_record_labels_bodies_that_are_not_requests_as_invalid(body: bytes, code: int) -> None:
    ctx = FakeContext()
    dispatch(body, ctx=ctx)
    assert ctx.outcomes() == Counter({(INVALID, "null", code): 1})


# --- method names -------------------------------------------------------------------------------


def test_dotted_method_names_are_dispatched_and_recorded_by_name() -> None:
    ctx = FakeContext()
    reply = dispatch(request("users.get", {"user_id": 7}, "u"), ctx=ctx)
    assert reply == {"jsonrpc": "2.0", "result": {"id": 7, "name": "ada"}, "id": "u"}
    assert ctx.outcomes() == Counter({("users.get", '"u"', None): 1})


@pytest.mark.parametrize("name", ["users", "users.", "get", "Users.get", " users.get", "users_get"])
def test_method_names_match_exactly(name: str) -> None:
    assert_error(dispatch(request(name, {"user_id": 7}, 1)), -32601, 1)
