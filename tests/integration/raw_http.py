"""Small raw HTTP servers on loopback for the client tests: they answer with the exact bytes a
test chooses (slow, broken, refusing), which a real service would never send."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[bool]]


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    """One request's body (None when the client closed the connection)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return await reader.readexactly(length)


def answer(body: bytes, *, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
        % (
            len(body),
            extra,
            body,
        )
    )


def result_for(body: bytes, value: Any = 3) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": json.loads(body)["id"], "result": value}).encode()


class RawServer:
    """Counts connections; ``handler`` answers each request and says whether to keep going."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.requests = 0
        self.writers: set[asyncio.StreamWriter] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        try:
            while (body := await read_request(reader)) is not None:
                self.requests += 1
                if not await self.handler(reader, writer, body):
                    break
        finally:
            writer.close()


@asynccontextmanager
async def raw_server(handler: Handler, port: int = 0) -> AsyncIterator[tuple[RawServer, str]]:
    """Serve ``handler`` on 127.0.0.1 (``port`` 0: a free one); every connection is closed
    when the block ends, so nothing outlives the test's event loop."""
    state = RawServer(handler)
    server = await asyncio.start_server(state.serve, "127.0.0.1", port, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    try:
        yield state, f"http://127.0.0.1:{port}/api"
    finally:
        server.close()
        for writer in state.writers:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


async def answers_add(_r: asyncio.StreamReader, writer: asyncio.StreamWriter, body: bytes) -> bool:
    writer.write(answer(result_for(body)))
    await writer.drain()
    return True
