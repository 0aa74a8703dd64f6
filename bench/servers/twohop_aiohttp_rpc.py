"""Benchmark peer: an aiohttp-rpc gateway answering add(a, b) by calling a backend's add.

Usage: python twohop_aiohttp_rpc.py PORT BACKEND_URL. The two-hop shape written with
aiohttp-rpc's own server and client, as its README shows them: the shared ``rpc_server`` with
its default middlewares, and one ``JSONRPCClient`` (one aiohttp session, so a connection pool)
opened at start-up and closed at clean-up. The backend is ``aiohttp_rpc_server.py``.
"""

import sys
from collections.abc import AsyncIterator

import aiohttp_rpc
from aiohttp import web


def main() -> None:
    """Serve on 127.0.0.1 at PORT, calling the backend at BACKEND_URL."""
    port, backend_url = int(sys.argv[1]), sys.argv[2]
    backend = aiohttp_rpc.JSONRPCClient(backend_url)

    async def add(a: int, b: int) -> int:
        """Return the backend's a + b."""
        return await backend.call("add", a, b)

    async def client_context(app: web.Application) -> AsyncIterator[None]:
        await backend.connect()
        yield
        await backend.disconnect()

    aiohttp_rpc.rpc_server.add_methods([add])
    app = web.Application()
    app.cleanup_ctx.append(client_context)
    app.router.add_routes([web.post("/api", aiohttp_rpc.rpc_server.handle_http_request)])
    web.run_app(app, host="127.0.0.1", port=port, print=None)


if __name__ == "__main__":
    main()
