"""Failing fast: after a run of connection failures a client stops calling its peer for a
cool-down, then lets one probe through."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import pytest

from service_template.client import (
    AsyncRemoteClient,
    BreakerPolicy,
    ClientError,
    ConnectError,
    PeerFailing,
    RemoteClient,
)
from service_template.protocol import errors
from service_template.testing import serve_in_thread
from tests.integration.deadline_services import RelayService
from tests.integration.raw_http import answer, answers_add, raw_server

pytestmark = pytest.mark.integration


@pytest.fixture
def dead_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]  # bound, never listening: connections are refused


def test_a_dead_peer_fails_fast_after_a_run_of_failures(dead_port: int) -> None:
    url = f"http://127.0.0.1:{dead_port}/api"
    policy = BreakerPolicy(failures=3, cooldown=30)
    with RemoteClient(url, peer="hello", breaker=policy) as client:
        for _ in range(3):
            with pytest.raises(ConnectError, match="connection refused"):
                client.methods.add(1, 2)
        started = time.perf_counter()
        with pytest.raises(PeerFailing) as caught:
            client.methods.add(1, 2)
        took = time.perf_counter() - started
    assert took < 0.05  # no connection was tried
    assert str(caught.value).startswith(
        "service 'hello' is failing: 3 connection failures in a row, not called for"
    )
    assert isinstance(caught.value, ConnectError) and isinstance(caught.value, ClientError)
    assert 0 < caught.value.retry_in <= 30
    assert str(dead_port) not in str(caught.value)


def test_idempotent_calls_do_not_retry_into_an_open_breaker(dead_port: int) -> None:
    url = f"http://127.0.0.1:{dead_port}/api"
    with RemoteClient(url, breaker=BreakerPolicy(failures=1, cooldown=30)) as client:
        with pytest.raises(PeerFailing):
            client.idempotent.add(1, 2)  # one refusal opens it; the retry fails fast
        assert client.retry_stats.retries == 1


def test_after_the_cool_down_one_probe_goes_and_its_success_closes_the_breaker() -> None:
    async def scenario() -> None:
        # The port is taken by a listener only after the breaker opened: the peer "comes back".
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            client = AsyncRemoteClient(
                f"http://127.0.0.1:{port}/api", breaker=BreakerPolicy(failures=2, cooldown=0.3)
            )
            for _ in range(2):
                with pytest.raises(ConnectError):
                    await client.methods.add(1, 2)
            with pytest.raises(PeerFailing):
                await client.methods.add(1, 2)
        async with raw_server(answers_add, port):
            try:
                await asyncio.sleep(0.35)  # the cool-down itself is what is under test
                assert await client.methods.add(1, 2) == 3  # the probe
                assert await client.methods.add(1, 2) == 3  # closed again
            finally:
                await client.aclose()

    asyncio.run(scenario())


def test_an_error_answer_is_not_a_failure_of_the_peer() -> None:
    async def refuses(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> bool:
        writer.write(
            answer(
                b'{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"Method not found"}}'
            )
        )
        await writer.drain()
        return True

    async def scenario() -> None:
        async with (
            raw_server(refuses) as (_server, url),
            AsyncRemoteClient(url, breaker=BreakerPolicy(failures=1)) as client,
        ):
            for _ in range(3):
                with pytest.raises(errors.MethodNotFound):
                    await client.methods.nope()

    asyncio.run(scenario())


def test_the_breaker_can_be_turned_off(dead_port: int) -> None:
    url = f"http://127.0.0.1:{dead_port}/api"
    with RemoteClient(url, breaker=None) as client:
        for _ in range(8):
            with pytest.raises(ConnectError, match="connection refused"):
                client.methods.add(1, 2)


@pytest.mark.parametrize("options", [{"failures": 0}, {"cooldown": 0}, {"cooldown": -1.0}])
def test_an_unusable_breaker_policy_is_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerPolicy(**options)  # type: ignore[arg-type]


def test_a_gateway_fails_fast_for_a_dead_backend_after_a_few_calls(dead_port: int) -> None:
    peers = f"backend=http://127.0.0.1:{dead_port}/api"
    with serve_in_thread(RelayService, peers=peers) as relay:
        client = relay.client()
        for _ in range(5):  # the default breaker: 5 failures in a row
            assert client.call("relay_sleep", 0) == {"error": "ConnectError"}
        started = time.perf_counter()
        assert client.call("relay_sleep", 0) == {"error": "PeerFailing"}
        assert time.perf_counter() - started < 1.0  # one local round trip, no connect attempt
