"""Retries: idempotent calls are retried on connection errors and overload, within a budget and
the caller's deadline; every other call is sent once."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from typing import Any

import pytest

from service_template.client import (
    AsyncRemoteClient,
    ConnectError,
    RemoteClient,
    RequestTimeout,
    RetryPolicy,
    ServerOverloaded,
)
from service_template.protocol import deadline
from tests.integration.raw_http import Handler, RawServer, answer, answers_add, raw_server

pytestmark = pytest.mark.integration


def failing_first(times: int, reply: bytes | None = None) -> Handler:
    """Hang up (or send ``reply``) for the first ``times`` requests, then answer add."""
    seen = 0

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
    ) -> bool:
        nonlocal seen
        seen += 1
        if seen <= times:
            if reply is not None:
                writer.write(reply)
                await writer.drain()
            return False
        return await answers_add(reader, writer, body)

    return handler


OVERLOADED = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0.3\r\nContent-Length: 0\r\n"
    b"Connection: close\r\n\r\n"
)


def run(handler: Handler, scenario: Any) -> RawServer:
    async def main() -> RawServer:
        async with raw_server(handler) as (server, url):
            await scenario(url)
            return server

    return asyncio.run(main())


def test_an_idempotent_call_is_retried_after_a_dropped_connection() -> None:
    async def scenario(url: str) -> None:
        async with AsyncRemoteClient(url) as client:
            assert await client.idempotent.add(1, 2) == 3
            assert client.retry_stats.retries == 1

    assert run(failing_first(1), scenario).requests == 2


def test_a_call_not_declared_idempotent_is_sent_once() -> None:
    async def scenario(url: str) -> None:
        async with AsyncRemoteClient(url) as client:
            with pytest.raises(ConnectError, match="server disconnected"):
                await client.methods.add(1, 2)
            with pytest.raises(ConnectError):
                await client.notifications.add(1, 2)
            assert client.retry_stats.retries == 0

    assert run(failing_first(2), scenario).requests == 2


def test_an_overloaded_answer_is_retried_no_sooner_than_retry_after() -> None:
    async def scenario(url: str) -> None:
        async with AsyncRemoteClient(url) as client:
            started = time.monotonic()
            assert await client.idempotent.add(1, 2) == 3
            assert time.monotonic() - started >= 0.3

    assert run(failing_first(1, OVERLOADED), scenario).requests == 2


def test_a_timeout_is_never_retried() -> None:
    async def silent(_r: asyncio.StreamReader, _w: asyncio.StreamWriter, _b: bytes) -> bool:
        await asyncio.sleep(10)
        return False

    async def scenario(url: str) -> None:
        async with AsyncRemoteClient(url, timeout=0.3) as client:
            with pytest.raises(RequestTimeout):
                await client.idempotent.add(1, 2)

    assert run(silent, scenario).requests == 1


def test_retries_stop_after_the_attempts_and_raise_the_last_error() -> None:
    async def scenario(url: str) -> None:
        async with AsyncRemoteClient(url, retry=RetryPolicy(attempts=3, backoff=0.01)) as client:
            with pytest.raises(ConnectError):
                await client.idempotent.add(1, 2)
            assert client.retry_stats.retries == 2
            assert client.retry_stats.gave_up == 1

    assert run(failing_first(10), scenario).requests == 3


def test_the_budget_bounds_retries_when_a_peer_keeps_failing() -> None:
    policy = RetryPolicy(attempts=5, backoff=0.01, budget_ratio=0.0, budget_burst=2)

    async def scenario(url: str) -> None:
        async with AsyncRemoteClient(url, retry=policy) as client:
            for _ in range(3):
                with pytest.raises(ConnectError):
                    await client.idempotent.add(1, 2)
            stats = client.retry_stats
            assert stats.retries == 2  # the burst, then none: a fleet adds no more load
            assert stats.refused_by_budget == 3  # the first call's third try, then one each

    assert run(failing_first(100), scenario).requests == 5


def test_no_retry_waits_past_the_callers_deadline() -> None:
    async def scenario(url: str) -> None:
        async with AsyncRemoteClient(url) as client:
            token = deadline.DEADLINE.set(time.monotonic() + 0.2)
            try:
                with pytest.raises(ServerOverloaded):
                    await client.idempotent.add(1, 2)  # Retry-After 0.3 s > 0.2 s left
            finally:
                deadline.DEADLINE.reset(token)
            assert client.retry_stats.refused_by_deadline == 1

    assert run(failing_first(1, OVERLOADED), scenario).requests == 1


def test_retries_can_be_turned_off() -> None:
    async def scenario(url: str) -> None:
        async with AsyncRemoteClient(url, retry=None) as client:
            with pytest.raises(ConnectError):
                await client.idempotent.add(1, 2)

    assert run(failing_first(1), scenario).requests == 1


def test_a_refused_connection_is_retried_and_named_after_the_last_attempt() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{port}/api"
        with RemoteClient(url, peer="hello", retry=RetryPolicy(backoff=0.01)) as client:
            with pytest.raises(ConnectError, match="cannot connect to service 'hello'"):
                client.idempotent.add(1, 2)
            assert client.retry_stats.retries == 2


def test_the_blocking_client_retries_the_same_way() -> None:
    async def scenario(url: str) -> None:
        def blocking() -> Any:
            with RemoteClient(url) as client:
                return client.idempotent.add(1, 2), client.retry_stats.retries

        assert await asyncio.to_thread(blocking) == (3, 1)

    assert (
        run(failing_first(1, answer(json.dumps({"no": 1}).encode())[:20]), scenario).requests == 2
    )


@pytest.mark.parametrize(
    "options",
    [{"attempts": 0}, {"attempts": 11}, {"backoff": -1}, {"budget_ratio": float("inf")}],
)
def test_an_unusable_policy_is_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**options)
