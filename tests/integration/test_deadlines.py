"""Deadlines across a hop: a call passes what remains of its deadline to the calls it makes
(``X-Timeout-Ms``), and the service that receives it never works past it."""

from __future__ import annotations

import asyncio
import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from service_template.client import AsyncRemoteClient, RequestTimeout
from service_template.protocol import deadline
from service_template.testing import RunningService, serve_in_thread
from tests.integration.deadline_services import BackendService, RelayService

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def backend() -> Iterator[RunningService]:
    with serve_in_thread(BackendService, call_timeout=30) as running:
        yield running


@pytest.fixture(scope="module")
def relay(backend: RunningService) -> Iterator[RunningService]:
    with serve_in_thread(RelayService, peers=f"backend={backend.url}") as running:
        yield running


def post(service: RunningService, method: str, params: list[Any], headers: dict[str, str]) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": 7})
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    try:
        connection.request("POST", "/api", body, {"Content-Type": "application/json", **headers})
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


@pytest.mark.parametrize("method", ["relay_budget", "relay_budget_blocking"])
def test_a_call_gives_its_backend_call_only_what_remains_of_its_deadline(
    relay: RunningService, method: str
) -> None:
    given = relay.client().call(method)
    assert given is not None and given.isdigit()
    assert 0 < int(given) <= 1000  # the relay's calls have 1 s


def test_what_remains_is_what_is_passed_on_later_in_the_call(relay: RunningService) -> None:
    given = relay.client().call("relay_budget_later")
    assert 0 < int(given) <= 700  # 1 s, less the 0.3 s the relay slept first


def test_a_call_made_outside_any_call_sends_no_deadline(backend: RunningService) -> None:
    assert backend.client().call("budget") is None

    async def from_a_script() -> Any:
        async with AsyncRemoteClient(backend.url) as client:
            return await client.call("budget")

    assert asyncio.run(from_a_script()) is None


def test_a_backend_call_ends_when_the_callers_deadline_does(
    relay: RunningService, backend: RunningService
) -> None:
    before = len(backend.client().call("endings_so_far"))
    started = time.monotonic()
    reply = post(relay, "relay_sleep", [8], {})
    took = time.monotonic() - started
    assert took < 5, took  # the relay's 1 s, not the backend's 8 s sleep nor its 30 s deadline
    assert reply.get("error", {}).get("code") == -32002 or reply["result"] == {
        "error": "RequestTimeout"
    }
    # The backend stopped working too: its own deadline was the relay's remaining second.
    limit = time.monotonic() + 10
    endings: list[str] = []
    while time.monotonic() < limit:
        endings = backend.client().call("endings_so_far")[before:]
        if endings:
            break
        time.sleep(0.05)  # polling the backend's record, bounded by `limit`
    assert endings == ["cut"]


def test_a_call_that_arrives_with_no_time_left_is_refused_without_running(
    backend: RunningService,
) -> None:
    reply = post(backend, "echo", ["x"], {deadline.HEADER: "0"})
    assert reply["error"]["code"] == -32002
    assert "result" not in reply
    # A plain method is started straight in the thread pool: refused there too, never run.
    reply = post(backend, "plain_echo", ["x"], {deadline.HEADER: "0"})
    assert reply["error"]["code"] == -32002
    assert "plain ran" not in post(backend, "endings_so_far", [], {})["result"]
    assert post(backend, "plain_echo", ["x"], {})["result"] == "x"


def test_a_callers_deadline_shortens_a_call_but_never_lengthens_it(
    backend: RunningService,
) -> None:
    started = time.monotonic()
    reply = post(backend, "sleep", [5], {deadline.HEADER: "300"})
    assert reply["error"]["code"] == -32002
    assert reply["error"]["data"] == {"timeout": 0.3}
    assert time.monotonic() - started < 4
    reply = post(backend, "short_sleep", [2], {deadline.HEADER: "100000"})
    assert reply["error"]["data"] == {"timeout": 0.5}
    started = time.monotonic()
    reply = post(backend, "plain_sleep", [5], {deadline.HEADER: "300"})
    assert reply["error"]["data"] == {"timeout": 0.3}
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("value", ["abc", "-5", "1.5", "", "12\u00b2"])
def test_a_deadline_header_that_is_not_whole_milliseconds_is_ignored(
    backend: RunningService, value: str
) -> None:
    assert post(backend, "echo", ["x"], {deadline.HEADER: value})["result"] == "x"


def test_a_client_with_no_time_left_sends_nothing(backend: RunningService) -> None:
    async def scenario() -> None:
        token = deadline.DEADLINE.set(time.monotonic() - 0.01)
        try:
            async with AsyncRemoteClient(backend.url, peer="backend") as client:
                with pytest.raises(RequestTimeout, match="no time left to call service 'backend'"):
                    await client.call("sleep", 0)
        finally:
            deadline.DEADLINE.reset(token)

    before = len(backend.client().call("endings_so_far"))
    asyncio.run(scenario())
    assert len(backend.client().call("endings_so_far")) == before


@pytest.mark.parametrize("method", ["relay_request_id", "relay_request_id_blocking"])
def test_the_request_id_follows_the_call_to_the_backend(relay: RunningService, method: str) -> None:
    reply = post(relay, method, [], {"X-Request-Id": "trace-4f2a.7"})
    assert reply["result"] == "trace-4f2a.7"
    # Without one given, the id the relay made (and answered with) is what the backend sees.
    connection = http.client.HTTPConnection("127.0.0.1", relay.port, timeout=30)
    try:
        body = json.dumps({"jsonrpc": "2.0", "method": method, "id": 1})
        connection.request("POST", "/api", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        made = response.getheader("X-Request-Id")
        assert made and json.loads(response.read())["result"] == made
    finally:
        connection.close()
