"""Benchmark baseline: a hand-written minimal JSON-RPC 2.0 handler on a Tornado RequestHandler.

Usage: python tornado_baseline.py PORT. Deliberately the least a correct-ish handler does:
stdlib json.loads, a dispatch dict, json.dumps; batches and notifications handled minimally.
No validation beyond what the benchmark needs, so it is the floor any framework adds cost to.
"""

import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

import tornado.web


def add(a: int, b: int) -> int:
    """Return the sum of two numbers."""
    return a + b


METHODS: dict[str, Callable[..., Any]] = {"add": add}


def call_one(request: Any) -> dict[str, Any] | None:
    """Run one request object; None for a notification (no reply, JSON-RPC 2.0 section 4.1)."""
    if not isinstance(request, dict) or not isinstance(request.get("method"), str):
        return {
            "jsonrpc": "2.0",
            "error": {"code": -32600, "message": "Invalid Request"},
            "id": None,
        }
    is_notification = "id" not in request
    method = METHODS.get(request["method"])
    if method is None:
        reply: dict[str, Any] = {
            "jsonrpc": "2.0",
            "error": {"code": -32601, "message": "Method not found"},
        }
    else:
        params = request.get("params", [])
        try:
            result = method(**params) if isinstance(params, dict) else method(*params)
        except Exception:
            reply = {"jsonrpc": "2.0", "error": {"code": -32603, "message": "Internal error"}}
        else:
            reply = {"jsonrpc": "2.0", "result": result}
    if is_notification:
        return None
    reply["id"] = request["id"]
    return reply


class RPCHandler(tornado.web.RequestHandler):
    """POST /api: decode, dispatch, encode."""

    def post(self) -> None:
        """Answer one JSON-RPC request or batch."""
        try:
            payload = json.loads(self.request.body)
        except ValueError:
            self._send(
                {"jsonrpc": "2.0", "error": {"code": -32700, "message": "Parse error"}, "id": None}
            )
            return
        if isinstance(payload, list) and payload:
            replies = [reply for reply in map(call_one, payload) if reply is not None]
            if replies:
                self._send(replies)
            else:
                self.set_status(204)
            return
        reply = call_one(payload)
        if reply is None:
            self.set_status(204)
        else:
            self._send(reply)

    def _send(self, body: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


async def serve(port: int) -> None:
    """Listen on 127.0.0.1:port until the process is stopped."""
    app = tornado.web.Application([("/api", RPCHandler)])
    app.listen(port, address="127.0.0.1")
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1])))
