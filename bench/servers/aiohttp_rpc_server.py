"""Benchmark peer: aiohttp-rpc serving add(a, b) at POST /api, as its README sets it up.

Usage: python aiohttp_rpc_server.py PORT. Library defaults throughout (the shared `rpc_server`
with its default middlewares, stdlib json, asyncio's default loop, no debug).
"""

import sys

import aiohttp_rpc
from aiohttp import web


def add(a: int, b: int) -> int:
    """Return the sum of two numbers."""
    return a + b


def main() -> None:
    """Serve on 127.0.0.1 at the port given as the only argument."""
    port = int(sys.argv[1])
    aiohttp_rpc.rpc_server.add_methods([add])
    app = web.Application()
    app.router.add_routes([web.post("/api", aiohttp_rpc.rpc_server.handle_http_request)])
    # print=None only silences the start-up banner; access logging stays at its default.
    web.run_app(app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()
