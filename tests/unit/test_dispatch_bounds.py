"""What the dispatcher bounds for one request: large bodies go through ``offload``, results JSON
cannot hold are errors, a reply over ``max_reply`` is an error per call (a batch's answers are
not held past it), batch members take concurrency slots, and a token check runs under the
call's deadline."""

from __future__ import annotations

import asyncio
import json
import logging
import tracemalloc
from typing import Any

import pytest

from service_template.protocol import NO_ID, UNKNOWN_METHOD, Dispatcher, Method, codec
from tests.unit.rpc_doubles import PRINCIPAL, FakeContext, invoke


class Offload:
    """Runs work inline, counting what it was given."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, work: Any) -> Any:
        self.calls += 1
        return work()


class Slots:
    """An Admission double with ``free`` slots."""

    def __init__(self, free: int) -> None:
        self.free = free
        self.asked: list[int] = []

    def acquire(self, count: int) -> int:
        self.asked.append(count)
        taken = min(count, self.free)
        self.free -= taken
        return taken

    def release(self, count: int) -> None:
        self.free += count


async def wait(seconds: float) -> float:
    await asyncio.sleep(seconds)
    return seconds


def instant(x: Any) -> Any:
    return x


def returns(value: Any) -> Any:
    return value


def make(**options: Any) -> Dispatcher:
    methods = {
        "wait": Method("wait", wait),
        "instant": Method("instant", instant),
        "returns": Method("returns", returns),
        "secret": Method("secret", instant, requires_auth=True),
    }
    return Dispatcher(methods, invoke, **options)


def call(method: str, params: Any, request_id: Any = NO_ID) -> dict[str, Any]:
    item: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if request_id is not NO_ID:
        item["id"] = request_id
    return item


def run(dispatcher: Dispatcher, body: Any, ctx: FakeContext | None = None) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = asyncio.run(dispatcher.dispatch(raw, ctx or FakeContext()))
    return None if reply is None else json.loads(reply)


# --- results JSON cannot hold -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        float("inf"),
        float("-inf"),
        float("nan"),
        [1, None, float("nan")],
        {"a": {"b": [float("inf")]}},
    ],
)
def test_a_result_json_cannot_hold_is_an_internal_error_with_a_log_line(
    value: Any, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = FakeContext()
    with caplog.at_level(logging.ERROR, "service_template.rpc"):
        reply = run(make(), [call("returns", [None], 1)], ctx)  # warm: null alone is fine
        assert reply == [{"jsonrpc": "2.0", "result": None, "id": 1}]
        dispatcher = make()
        dispatcher.methods["returns"] = Method("returns", lambda: value)
        reply = run(dispatcher, call("returns", [], 2), ctx)
    assert reply == {
        "jsonrpc": "2.0",
        "error": {"code": -32603, "message": "Internal error"},
        "id": 2,
    }
    assert any("NaN or infinity" in r.getMessage() for r in caplog.records)
    assert ctx.records[-1][3] == -32603


def test_a_large_result_is_checked_through_offload() -> None:
    offload = Offload()
    dispatcher = make(offload=offload, inline_limit=1000)
    dispatcher.methods["nulls"] = Method("nulls", lambda n, tail: [None] * n + [float(tail)])
    assert run(dispatcher, call("nulls", [1000, "inf"], 1))["error"]["code"] == -32603
    assert offload.calls == 1
    assert run(dispatcher, call("nulls", [1000, "1.5"], 2))["result"][-2:] == [None, 1.5]
    assert offload.calls == 2
    assert run(dispatcher, call("nulls", [10, "inf"], 3))["error"]["code"] == -32603
    assert offload.calls == 2  # small: checked inline


# --- large bodies -------------------------------------------------------------------------------


def test_a_body_over_the_inline_limit_is_decoded_through_offload_and_not_recorded_whole() -> None:
    offload = Offload()
    ctx = FakeContext()
    dispatcher = make(offload=offload, inline_limit=100)
    assert run(dispatcher, call("instant", ["x"], 1), ctx)["result"] == "x"
    assert offload.calls == 0
    assert ctx.records[-1][2] == ["x"]
    body = json.dumps(call("nope", ["y" * 200], 2)).encode()
    reply = run(dispatcher, body, ctx)
    assert reply["error"]["code"] == -32601
    assert offload.calls == 1
    label, _, params, code, _ = ctx.records[-1]
    assert (label, code) == (UNKNOWN_METHOD, -32601)
    assert params == {"omitted": "params of a large body", "body_bytes": len(body)}


def test_a_large_invalid_body_is_a_parse_error_through_offload() -> None:
    offload = Offload()
    reply = run(make(offload=offload, inline_limit=100), b"[" + b"1," * 100 + b"]")
    assert reply["error"]["code"] == -32700
    assert reply["id"] is None
    assert offload.calls == 1


def test_a_huge_method_name_is_not_echoed_whole() -> None:
    reply = run(make(), call("m" * 100_000, [], 1))
    assert reply["error"]["code"] == -32601
    assert len(reply["error"]["data"]["method"]) < 300


# --- the response limit -------------------------------------------------------------------------

TOO_LARGE = {
    "code": -32603,
    "message": "Response too large",
    "data": {"reason": "response too large", "limit_bytes": 10_000},
}


def test_a_reply_over_max_reply_is_an_error_under_the_calls_id_and_one_at_it_is_sent() -> None:
    dispatcher = make(max_reply=10_000)
    envelope = len(b'{"jsonrpc":"2.0","result":"","id":1}')
    fits = run(dispatcher, call("returns", ["x" * (10_000 - envelope)], 1))
    assert fits["result"] == "x" * (10_000 - envelope)
    over = run(dispatcher, call("returns", ["x" * (10_001 - envelope)], "big"))
    assert over == {"jsonrpc": "2.0", "error": TOO_LARGE, "id": "big"}


def test_a_batch_over_max_reply_is_an_error_for_each_answered_member() -> None:
    batch = [
        call("returns", ["x" * 4000], 1),
        call("returns", ["x" * 4000]),  # a notification: no answer, over the limit or not
        {"jsonrpc": "1.0", "method": "returns", "id": 2},  # invalid: answered all the same
        call("returns", ["x" * 4000], 3),
        call("returns", ["x" * 4000], 4),
    ]
    replies = run(make(max_reply=10_000), batch)
    assert replies == [{"jsonrpc": "2.0", "error": TOO_LARGE, "id": i} for i in (1, 2, 3, 4)]
    # Just under the limit (two answers and the brackets), the batch is answered in full.
    two = [call("returns", ["x" * 4900], 1), call("returns", ["y" * 4900], 2)]
    size = len(json.dumps([{"jsonrpc": "2.0", "result": "x" * 4900, "id": 1}] * 2).replace(" ", ""))
    assert size <= 10_000
    assert [r["result"][0] for r in run(make(max_reply=10_000), two)] == ["x", "y"]


def _peak_bytes(dispatcher: Dispatcher, body: bytes) -> tuple[bytes | None, int]:
    """The reply to ``body`` and the most memory allocated at once while making it."""
    tracemalloc.start()
    try:
        reply = asyncio.run(dispatcher.dispatch(body, FakeContext()))
        return reply, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


async def _big_later(n: int) -> str:
    await asyncio.sleep(0)  # suspends: the batch's later members run concurrently
    return "x" * n


@pytest.mark.parametrize("kind", ["inline", "concurrent"])
def test_a_batch_of_large_answers_is_dropped_as_it_passes_max_reply_not_held_whole(
    kind: str,
) -> None:
    dispatcher = make(max_reply=1_000_000)
    dispatcher.methods["big"] = Method(
        "big", (lambda n: "x" * n) if kind == "inline" else _big_later
    )
    # What one 200 kB answer costs to make (the encoder may allocate more than it returns).
    _, one = _peak_bytes(dispatcher, json.dumps(call("big", [200_000], 0)).encode())
    batch = json.dumps([call("big", [200_000], i) for i in range(100)]).encode()
    reply, peak = _peak_bytes(dispatcher, batch)
    assert reply is not None
    assert {r["error"]["message"] for r in json.loads(reply)} == {"Response too large"}
    # Held whole, the 100 answers would cost about 100 times one (and their join as much
    # again); dropped once past the 1 MB limit (5 answers), a handful.
    assert peak < 15 * one, f"peak {peak / 1e6:.1f} MB, one answer {one / 1e6:.1f} MB"


def test_a_batch_reply_is_joined_once() -> None:
    replies = run(make(), [call("instant", [i], i) for i in range(3)] + [call("instant", [9])])
    assert [r["result"] for r in replies] == [0, 1, 2]
    assert run(make(), [call("instant", [1]), call("instant", [2])]) is None  # notifications


# --- batch members and concurrency slots --------------------------------------------------------


def test_batch_members_that_wait_take_a_slot_each_and_the_rest_get_retryable_errors() -> None:
    slots = Slots(free=2)
    ctx = FakeContext()
    batch = [call("wait", [0.01], i) for i in range(5)] + [call("wait", [0.01])]
    replies = run(make(admission=slots), batch, ctx)
    # The first member runs on the request's own slot, the next two on the free ones.
    assert [r["result"] for r in replies[:3]] == [0.01, 0.01, 0.01]
    for reply, request_id in zip(replies[3:], [3, 4], strict=True):
        assert reply == {
            "jsonrpc": "2.0",
            "error": {"code": -32003, "message": "Server overloaded", "data": {"retry_after": 1}},
            "id": request_id,
        }
    assert len(replies) == 5  # the refused notification gets no answer
    assert slots.asked == [5]
    assert slots.free == 2  # every slot given back
    assert sorted(r[3] or 0 for r in ctx.records) == [-32003] * 3 + [0] * 3


def test_batch_members_that_finish_at_once_share_the_request_slot() -> None:
    slots = Slots(free=0)
    replies = run(make(admission=slots), [call("instant", [i], i) for i in range(5)])
    assert [r["result"] for r in replies] == [0, 1, 2, 3, 4]
    assert slots.asked == []


def test_a_refused_batch_member_that_is_invalid_gets_invalid_request() -> None:
    slots = Slots(free=0)
    batch = [call("wait", [0.01], 1), {"jsonrpc": "1.0", "method": "wait", "id": 2}]
    replies = run(make(admission=slots), batch)
    assert replies[0]["result"] == 0.01
    assert replies[1]["error"]["code"] == -32600


def test_slots_are_given_back_when_a_member_raises() -> None:
    slots = Slots(free=3)

    async def boom() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("x")

    dispatcher = make(admission=slots)
    dispatcher.methods["boom"] = Method("boom", boom)
    replies = run(dispatcher, [call("boom", [], i) for i in range(4)])
    assert [r["error"]["code"] for r in replies] == [-32603] * 4
    assert slots.free == 3


# --- token checks under the deadline ------------------------------------------------------------


class HangingContext(FakeContext):
    def __init__(self, seconds: float) -> None:
        super().__init__(authorized=True)
        self.seconds = seconds
        self.cancelled = False

    async def authenticate(self) -> Any:
        self.asked += 1
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        return PRINCIPAL


def test_a_token_check_that_hangs_ends_the_call_at_its_deadline() -> None:
    ctx = HangingContext(30)

    async def scenario() -> Any:
        dispatcher = make(deadline=lambda method: 0.05)
        started = asyncio.get_running_loop().time()
        raw = await dispatcher.dispatch(json.dumps(call("secret", [1], 1)).encode(), ctx)
        return json.loads(raw or b"null"), asyncio.get_running_loop().time() - started

    reply, seconds = asyncio.run(scenario())
    assert reply["error"] == {
        "code": -32002,
        "message": "Deadline exceeded",
        "data": {"timeout": 0.05},
    }
    assert seconds < 1.0
    assert ctx.cancelled  # the abandoned check does not live on after the request


def test_the_token_check_and_the_method_share_one_deadline() -> None:
    ctx = HangingContext(0.06)  # the check alone fits in 0.1 s, check + method does not
    dispatcher = make(deadline=lambda method: 0.1)
    dispatcher.methods["secret"] = Method("secret", wait, requires_auth=True)
    reply = run(dispatcher, call("secret", [0.06], 1), ctx)
    assert reply["error"]["code"] == -32002
    reply = run(dispatcher, call("secret", [0.0], 2), HangingContext(0.01))
    assert reply["result"] == 0.0


# --- results encoded where they were made -------------------------------------------------------


def test_a_result_encoded_in_a_worker_thread_is_spliced_into_the_response() -> None:
    async def encoded(method: Method, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        return codec.preencode(method.func(*args, **kwargs))

    dispatcher = Dispatcher({"instant": Method("instant", instant)}, encoded)
    for request_id in (1, "a", None, 2.5):
        raw = asyncio.run(
            dispatcher.dispatch(
                json.dumps(call("instant", [[1, {"b": None}]], request_id)).encode(), FakeContext()
            )
        )
        assert raw == codec.dumps({"jsonrpc": "2.0", "result": [1, {"b": None}], "id": request_id})
    # What preencode cannot encode comes back as is: the dispatcher reports it as usual.
    assert isinstance(codec.preencode([1.5]), codec.Encoded)
    nan = [float("nan")]
    assert codec.preencode(nan) is nan
    assert run(dispatcher, call("instant", [2**70], 3))["result"] == 2**70
