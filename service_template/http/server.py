"""The HTTP server of one service process: listeners, connection sweeper, drain.

Connections are ours (``wire.py``, asyncio + httptools); ``/api`` is answered by ``api.py``,
every other path by Tornado's web application (``routes.py``) through ``bridge.py``. Tornado's
own defaults would not fit a service anyway (100 MiB bodies answered with 400, no body timeout,
an hour of idle keep-alive). Every bound is in ``limits.py``.

With ``admin_port`` set, a second listener (``admin.AdminListener``) serves ``/metrics`` and
the probes only, so a NetworkPolicy can give Prometheus that port and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from tornado.netutil import bind_sockets

from ..runtime import Runtime
from .admin import AdminListener
from .api import API_PATH, APIEndpoint
from .bridge import TornadoRoutes
from .framing import refresh_date
from .limits import Limits
from .request import Handler, Request
from .routes import make_app
from .service_routes import ServiceRoutes
from .wire import Connection

log = logging.getLogger("service_template.http")

__all__ = ["API_PATH", "AdminListener", "HTTPServer", "Server", "bind"]

SWEEP_INTERVAL = 0.5  # seconds between deadline checks; timeouts are this much coarse
DRAIN_POLL = 0.05
# How long a connection accepted before the drain may take to send its first request.
FIRST_REQUEST_GRACE = 1.0


def bind(host: str, port: int) -> list[socket.socket]:
    """Listening sockets for ``host``:``port`` (one per address family of ``host``)."""
    return bind_sockets(port, host, backlog=1024)


class HTTPServer:
    """Accepts connections, routes their requests and enforces their deadlines (the
    connections' ``request.Host``)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.limits = Limits.from_settings(runtime.settings)
        self.app = make_app(runtime)
        self.api = APIEndpoint(runtime, self.limits)
        self.routes = TornadoRoutes(self.app, self.limits)
        self.service_routes = ServiceRoutes(self.app, runtime)
        self.connections: set[Connection] = set()
        self.write_blocked: set[Connection] = set()  # their clients leave output unread
        self.listeners: list[asyncio.Server] = []
        self._sweeper: asyncio.Task[None] | None = None

    # -- request.Host ---------------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self.runtime.draining

    def route(self, request: Request) -> Handler:
        if request.path == API_PATH:
            return self.api
        return self.service_routes.find(request.path) or self.routes

    def count_rejection(self, status: int) -> None:
        self.runtime.count_rejection(status)

    def opened(self, conn: Connection) -> bool:
        if len(self.connections) >= self.limits.max_connections:
            return False
        self.connections.add(conn)
        return True

    def closed(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self.write_blocked.discard(conn)

    def blocked(self, conn: Connection, blocked: bool) -> bool:
        if not blocked:
            self.write_blocked.discard(conn)
            return False
        self.write_blocked.add(conn)
        unsent = 0
        for other in self.write_blocked:
            if other.transport is not None:
                unsent += other.transport.get_write_buffer_size()
        return unsent > self.limits.max_unsent_bytes

    # -- listening ------------------------------------------------------------------------------

    async def listen(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        for sock in sockets:
            sock.setblocking(False)
            self.listeners.append(
                await loop.create_server(lambda: Connection(self), sock=sock, backlog=1024)
            )
        self._sweeper = asyncio.ensure_future(self._sweep())

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            refresh_date()
            now = loop.time()
            for conn in list(self.connections):
                if conn.due(now):
                    try:
                        conn.expire(now)
                    except Exception:
                        # One connection's fault must never stop the sweeper: every deadline
                        # of every connection depends on it. Log the bug, drop the connection.
                        log.exception("expiring a connection failed; closing it")
                        conn.abort()

    def stop_listening(self) -> None:
        for listener in self.listeners:
            listener.close()

    def close_idle(self, now: float, grace: float) -> None:
        for conn in list(self.connections):
            conn.close_if_idle(now, grace)

    async def close(self) -> None:
        """Close every connection and stop the sweeper."""
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper


class Server:
    """The HTTP side of one service: start, and drain on shutdown."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.http = HTTPServer(runtime)
        self.admin = AdminListener(runtime) if runtime.settings.admin_port is not None else None
        self.port = 0
        self.admin_port: int | None = None

    async def listen(
        self,
        sockets: list[socket.socket] | None = None,
        admin_sockets: list[socket.socket] | None = None,
    ) -> int:
        """Start accepting on ``sockets`` (bound already by a pre-fork parent) or on newly
        bound ones, and on the admin port if one is set; returns the API port (useful with
        port 0; ``admin_port`` holds the other)."""
        if self.admin is not None:
            # Bound first: a busy admin port must not leave the API listener open.
            admin_sockets = admin_sockets or AdminListener.bind(self.runtime)
            self.admin_port = self.admin.listen(admin_sockets)
        if sockets is None:
            settings = self.runtime.settings
            sockets = bind(settings.host, settings.port)
        await self.http.listen(sockets)
        self.port = sockets[0].getsockname()[1]
        return self.port

    async def drain(self) -> None:
        """Fail readiness, stop accepting, let admitted requests finish (up to the drain
        deadline), then close every connection.

        Responses written during the drain carry ``Connection: close``, so keep-alive clients
        reconnect (to another instance) instead of racing a close on an idle connection.
        """
        runtime = self.runtime
        runtime.draining = True
        self.http.stop_listening()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + runtime.settings.drain_timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await runtime.wait_idle(remaining):
                log.warning("drain deadline passed with %d requests in flight", runtime.in_flight)
                break
            self.http.close_idle(loop.time(), min(FIRST_REQUEST_GRACE, remaining))
            if not self.http.connections:
                break
            # A connection is still receiving a request or answering a GET route: check again
            # shortly (bounded by the drain deadline; such requests end or time out quickly).
            await asyncio.sleep(DRAIN_POLL)
        await self.http.close()
        if self.admin is not None:
            await self.admin.close()
