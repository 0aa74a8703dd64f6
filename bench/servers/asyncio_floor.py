"""Benchmark floor: the least a JSON-RPC server on asyncio and httptools can do per request.

Usage: python asyncio_floor.py PORT. The same core as our runtime (an ``asyncio.Protocol`` fed
by httptools' parser, the standard event loop) with nothing on top: the body is parsed with the
standard json module, ``add`` is looked up in a dict and called, the reply is formatted into one
fixed head. No validation of the request object beyond what the benchmark's bodies need, no
limits, no timeouts, no auth, metrics, logs or context. Not a server anyone should deploy: it
shows how much of aiohttp-rpc's cost any Python server on this loop can save, so a throughput
ratio can be read against the most this architecture allows on the same core.
"""

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import httptools


def add(a: int, b: int) -> int:
    """Return the sum of two numbers."""
    return a + b


METHODS: dict[str, Callable[..., Any]] = {"add": add}
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
NO_CONTENT = b"HTTP/1.1 204 No Content\r\n\r\n"


def call_one(request: dict[str, Any]) -> dict[str, Any] | None:
    """Run one request object; None for a notification."""
    params = request.get("params", [])
    method = METHODS[request["method"]]
    result = method(**params) if isinstance(params, dict) else method(*params)
    if "id" not in request:
        return None
    return {"jsonrpc": "2.0", "result": result, "id": request["id"]}


class FloorProtocol(asyncio.Protocol):
    """One connection: feed httptools, answer each complete message in order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        payload = json.loads(b"".join(self.body))
        self.body.clear()
        if isinstance(payload, list):
            replies = [reply for reply in map(call_one, payload) if reply is not None]
            reply: Any = replies or None
        else:
            reply = call_one(payload)
        assert self.transport is not None
        if reply is None:
            self.transport.write(NO_CONTENT)
            return
        data = json.dumps(reply, separators=(",", ":")).encode()
        self.transport.write(HEAD % len(data) + data)


async def serve(port: int) -> None:
    """Listen on 127.0.0.1:port until the process is stopped."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(FloorProtocol, "127.0.0.1", port, backlog=1024)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
