"""The async client's own transport (client/pool.py) against real servers on loopback.

A real service answers the ordinary calls; small raw asyncio servers play the misbehaving ones
(slow, too large, malformed, hanging up), because what matters is what the client does with the
bytes it gets.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from service_template.client import (
    AsyncRemoteClient,
    ClientError,
    ConnectError,
    RequestTimeout,
)
from service_template.client.pool import AsyncPoolTransport
from service_template.protocol import errors
from service_template.testing import serve_in_thread
from tests.integration.raw_http import (
    Handler,
    RawServer,
    answer,
    answers_add,
    raw_server,
    result_for,
)
from tests.integration.services import ProbeService

pytestmark = pytest.mark.integration


def test_calls_notifications_batches_name_and_health_against_a_real_service() -> None:
    with serve_in_thread(ProbeService) as running:

        async def scenario() -> tuple[Any, ...]:
            async with AsyncRemoteClient(running.url) as client:
                echoed = await client.methods.echo({"a": [1, "é"]})
                await client.notifications.echo(1)
                async with client.batch() as batch:
                    first = batch.methods.echo(1)
                    second = batch.methods.nope()
                with pytest.raises(errors.MethodNotFound):
                    second.result()
                return echoed, first.result(), await client.get_name(), await client.health()

        echoed, first, name, health = asyncio.run(scenario())
    assert echoed == {"a": [1, "é"]}
    assert first == 1
    assert name == "probe"
    assert health.ok


def test_sequential_and_concurrent_calls_reuse_kept_alive_connections() -> None:
    async def scenario() -> RawServer:
        async with (
            raw_server(answers_add) as (server, url),
            AsyncRemoteClient(url) as client,
        ):
            for _ in range(20):
                assert await client.methods.add(1, 2) == 3
            assert server.connections == 1
            results = await asyncio.gather(*(client.methods.add(1, 2) for _ in range(50)))
            assert results == [3] * 50
            assert await client.methods.add(1, 2) == 3
            return server

    server = asyncio.run(scenario())
    assert server.requests == 71
    assert 1 <= server.connections <= 50


def test_open_connections_never_exceed_the_pool_bound() -> None:
    async def slow(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> bool:
        await asyncio.sleep(0.02)
        return await answers_add(_r, writer, body)

    async def scenario() -> RawServer:
        async with raw_server(slow) as (server, url):
            client = AsyncRemoteClient(url)
            client._transport = AsyncPoolTransport(url, 10.0, {}, max_connections=3)
            async with client:
                results = await asyncio.gather(*(client.methods.add(1, 2) for _ in range(30)))
            assert results == [3] * 30
            return server

    server = asyncio.run(scenario())
    assert server.connections == 3


def test_a_server_that_does_not_answer_in_time_raises_request_timeout() -> None:
    async def silent(_r: asyncio.StreamReader, _w: asyncio.StreamWriter, _b: bytes) -> bool:
        await asyncio.sleep(30)
        return False

    async def scenario() -> float:
        async with (
            raw_server(silent) as (_server, url),
            AsyncRemoteClient(url, timeout=0.5) as client,
        ):
            started = time.monotonic()
            with pytest.raises(RequestTimeout, match=r"no answer from .* within 0.5 s"):
                await client.methods.add(1, 2)
            return time.monotonic() - started

    assert asyncio.run(scenario()) < 5


def test_an_answer_larger_than_the_bound_is_refused_before_it_is_read() -> None:
    async def huge(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, _b: bytes) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        await asyncio.sleep(5)
        return False

    async def chunked_flood(
        _r: asyncio.StreamReader, writer: asyncio.StreamWriter, _b: bytes
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(64):
            writer.write(b"4000\r\n" + b"x" * 0x4000 + b"\r\n")
            await writer.drain()
        return False

    async def scenario(handler: Handler) -> str:
        async with raw_server(handler) as (_server, url):
            client = AsyncRemoteClient(url, timeout=5)
            client._transport = AsyncPoolTransport(url, 5.0, {}, max_response_bytes=100_000)
            async with client:
                with pytest.raises(ConnectError) as caught:
                    await client.methods.add(1, 2)
                return str(caught.value)

    assert "larger than 100000 bytes" in asyncio.run(scenario(huge))
    assert "larger than 100000 bytes" in asyncio.run(scenario(chunked_flood))

    # The default bound exists too: a 1 GiB announcement is refused at the head.
    async def default_bound() -> str:
        async with (
            raw_server(huge) as (_server, url),
            AsyncRemoteClient(url, timeout=5) as client,
        ):
            with pytest.raises(ConnectError) as caught:
                await client.methods.add(1, 2)
            return str(caught.value)

    assert "larger than" in asyncio.run(default_bound())


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n{", "server disconnected"),
        (b"NOT HTTP AT ALL\r\n\r\n", "malformed HTTP answer"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", "more than 100 header fields"),
    ],
    ids=["cut-short", "malformed", "too-many-fields"],
)
def test_a_broken_answer_is_a_connect_error_and_the_next_call_works(
    reply: bytes, message: str
) -> None:
    calls = 0

    async def breaks_once(
        _r: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
    ) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            writer.write(reply)
            await writer.drain()
            return False
        return await answers_add(_r, writer, body)

    async def scenario() -> None:
        async with (
            raw_server(breaks_once) as (_server, url),
            AsyncRemoteClient(url, timeout=5, peer="backend") as client,
        ):
            with pytest.raises(ConnectError) as caught:
                await client.methods.add(1, 2)
            assert str(caught.value).startswith("connection to service 'backend' failed")
            assert message in str(caught.value)
            assert await client.methods.add(1, 2) == 3

    asyncio.run(scenario())


def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    async def one_per_connection(
        _r: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
    ) -> bool:
        await answers_add(_r, writer, body)
        return False  # hang up after each answer, without saying so in a header

    async def scenario() -> RawServer:
        async with (
            raw_server(one_per_connection) as (server, url),
            AsyncRemoteClient(url) as client,
        ):
            for _ in range(5):
                assert await client.methods.add(1, 2) == 3
                await asyncio.sleep(0.05)  # lets the hang-up reach the client
            return server

    assert asyncio.run(scenario()).connections == 5


def test_connection_close_and_an_answer_ended_by_the_hang_up_are_read() -> None:
    async def close_delimited(
        _r: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
    ) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + result_for(body))
        await writer.drain()
        return False

    async def scenario() -> RawServer:
        async with (
            raw_server(close_delimited) as (server, url),
            AsyncRemoteClient(url) as client,
        ):
            assert await client.methods.add(1, 2) == 3
            assert await client.methods.add(1, 2) == 3
            return server

    assert asyncio.run(scenario()).connections == 2


def test_a_cancelled_call_closes_its_connection_and_the_next_call_works() -> None:
    calls = 0

    async def slow_first(
        _r: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes
    ) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(30)
        return await answers_add(_r, writer, body)

    async def scenario() -> None:
        async with (
            raw_server(slow_first) as (_server, url),
            AsyncRemoteClient(url) as client,
        ):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.methods.add(1, 2), 0.2)
            assert await client.methods.add(1, 2) == 3

    asyncio.run(scenario())


def test_connection_refused_names_the_peer_and_the_reason() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        unused_port = sock.getsockname()[1]  # bound, never listening: connections are refused

    async def scenario() -> None:
        url = f"http://127.0.0.1:{unused_port}/api"
        async with AsyncRemoteClient(url, peer="hello") as client:
            with pytest.raises(ConnectError) as caught:
                await client.methods.add(1, 2)
        assert str(caught.value) == "cannot connect to service 'hello': connection refused"
        assert isinstance(caught.value, ConnectionError)

    asyncio.run(scenario())


def test_a_closed_client_refuses_calls() -> None:
    async def scenario() -> None:
        async with raw_server(answers_add) as (_server, url):
            client = AsyncRemoteClient(url)
            assert await client.methods.add(1, 2) == 3
            await client.aclose()
            with pytest.raises(ClientError, match="closed"):
                await client.methods.add(1, 2)

    asyncio.run(scenario())


@pytest.mark.parametrize("headers", [{"X-A": "b\r\nX-Injected: 1"}, {"X-A\r\nX-B": "c"}, {"": "x"}])
def test_a_header_that_could_inject_another_is_refused_before_anything_is_sent(
    headers: dict[str, str],
) -> None:
    with pytest.raises(ValueError, match="cannot be sent"):
        AsyncRemoteClient("http://127.0.0.1:9/api", headers=headers)


def test_the_token_and_extra_headers_reach_the_server_once() -> None:
    seen: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        seen.append(head)
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
        writer.write(answer(result_for(body)))
        await writer.drain()
        writer.close()

    ports: list[int] = []

    async def scenario() -> None:
        server = await asyncio.start_server(record, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ports.append(port)
        try:
            async with AsyncRemoteClient(
                f"http://127.0.0.1:{port}/api?v=1", token="s3cret", headers={"X-Trace": "abc"}
            ) as client:
                assert await client.methods.add(1, 2) == 3
        finally:
            server.close()

    asyncio.run(scenario())
    head = seen[0].decode("latin-1")
    assert head.startswith("POST /api?v=1 HTTP/1.1\r\n")
    lines = head.lower().split("\r\n")
    assert lines.count("x-api-token: s3cret") == 1
    assert lines.count("x-trace: abc") == 1
    assert f"host: 127.0.0.1:{ports[0]}" in lines
    assert "content-type: application/json" in lines


def test_calls_waiting_for_a_connection_end_when_the_client_closes() -> None:
    async def slow(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> bool:
        await asyncio.sleep(0.3)
        return await answers_add(_r, writer, body)

    async def scenario() -> list[Any]:
        async with raw_server(slow) as (_server, url):
            client = AsyncRemoteClient(url)
            client._transport = AsyncPoolTransport(url, 10.0, {}, max_connections=1)
            calls = [asyncio.ensure_future(client.methods.add(1, 2)) for _ in range(3)]
            await asyncio.sleep(0.05)  # lets the first call take the one connection
            await client.aclose()
            return await asyncio.gather(*calls, return_exceptions=True)

    first, *waiting = asyncio.run(scenario())
    assert first == 3  # the call in progress finishes
    assert all(isinstance(w, ClientError) and "closed" in str(w) for w in waiting), waiting
