"""The gateway example in the template's Compose stack: its calls reach both backends by
service name, it forwards with its own token, and with a backend killed it stays ready (and
healthy), fails fast only the calls that need that backend, then recovers. ``stack.py remove
gateway`` deletes this file with the example."""

from __future__ import annotations

import time

import pytest

from .compose_stack import Stack, token_for
from .support import TOKEN, note, result_of, rpc, status_of, wait_for

pytestmark = pytest.mark.container

BACKEND_UNAVAILABLE = -32010
ACCESS_DENIED = -32001


def api(stack: Stack) -> str:
    return stack.url("gateway", 8000) + "/api"


def test_gateway_calls_reach_both_backends(stack: Stack) -> None:
    url = api(stack)
    assert result_of(rpc(url, "greet", ["x"])) == "hello x"
    assert result_of(rpc(url, "add", [1, 2])) == 3
    assert result_of(rpc(url, "greet_and_add", ["x", 1, 2])) == {"greeting": "hello x", "sum": 3}


def test_private_greet_refuses_a_missing_or_wrong_token_and_forwards_with_its_own(
    stack: Stack,
) -> None:
    url = api(stack)
    for token in (None, "wrong-" + TOKEN, token_for("hello")):
        # ... hello's token is hello's: the gateway does not accept it from a caller ...
        answer = rpc(url, "private_greet", ["x"], token=token)
        assert answer.get("error", {}).get("code") == ACCESS_DENIED, answer
    answer = rpc(url, "private_greet", ["x"], token=token_for("gateway"))
    # ... but sends it to hello's private method (SERVICE_PEER_TOKEN_FILES).
    assert result_of(answer) == "this is secret: hello x"


def test_killed_backend_leaves_the_gateway_ready_and_fails_only_its_calls_then_recovers(
    stack: Stack,
) -> None:
    gateway = stack.url("gateway", 8000)
    url = f"{gateway}/api"
    stack.run("kill", "compute")
    try:
        wait_for(
            lambda: (
                rpc(url, "add", [1, 2], timeout=10).get("error", {}).get("code")
                == BACKEND_UNAVAILABLE
            ),
            10,
            "add answering -32010 after compute was killed",
        )
        started = time.monotonic()
        answer = rpc(url, "add", [1, 2], timeout=10)
        took = time.monotonic() - started
        assert took < 5.0, f"add took {took:.2f} s with compute down"
        error = answer.get("error", {})
        assert error.get("code") == BACKEND_UNAVAILABLE, answer
        assert error.get("message") == "compute is unavailable", answer
        # The gateway stays in service: ready, and healthy for Docker, while compute is down.
        assert status_of(f"{gateway}/readyz") == 200
        assert stack.ps()["gateway"]["Health"] == "healthy"
        # The other backend is unaffected.
        assert result_of(rpc(url, "greet", ["x"])) == "hello x"

        stack.run("start", "compute")
        restarted = time.monotonic()

        def adds() -> bool:
            return rpc(url, "add", [1, 2], timeout=10).get("result") == 3

        wait_for(adds, 60, "add through the gateway again")
        note(
            f"compute killed: gateway stayed ready, add failed in {took * 1000:.0f} ms (-32010); "
            f"recovered {time.monotonic() - restarted:.1f} s after `start compute`"
        )
    finally:
        stack.run("start", "compute", check=False)  # leave the stack whole for later tests
