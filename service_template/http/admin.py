"""The admin port (``admin_port``): ``/metrics`` and the probes on a listener of their own.

With it set, the API port stops serving ``/metrics`` (``routes.make_app``), so a NetworkPolicy
can give Prometheus this port and nothing else, and callers the API port and nothing else.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from tornado.httpserver import HTTPServer as TornadoHTTPServer
from tornado.netutil import bind_sockets

from ..errors import StartupError
from .routes import make_admin_app

if TYPE_CHECKING:
    from ..runtime import Runtime

__all__ = ["ADMIN_MAX_BYTES", "AdminListener"]

ADMIN_MAX_BYTES = 64 * 1024  # largest header section and body on the admin port (GETs only)


class AdminListener:
    """The admin port: ``/metrics``, ``/livez`` and ``/readyz`` on Tornado's own HTTP server.

    Its callers are the kubelet and Prometheus, a few requests a second, so Tornado's server is
    fast enough; its limits are the service's (small bodies, the idle and body timeouts) rather
    than Tornado's defaults. It stays open through the drain, so probes keep getting answers
    (``/readyz``: 503) until the process exits.
    """

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.server = TornadoHTTPServer(
            make_admin_app(runtime),
            max_body_size=ADMIN_MAX_BYTES,
            max_header_size=ADMIN_MAX_BYTES,
            idle_connection_timeout=settings.idle_timeout,
            body_timeout=settings.body_timeout,
        )

    @staticmethod
    def bind(runtime: Runtime) -> list[socket.socket]:
        """The admin port's sockets; ``StartupError`` when it cannot be bound."""
        settings = runtime.settings
        if settings.admin_port is None:
            raise StartupError("admin_port is not set")
        try:
            return bind_sockets(settings.admin_port, settings.host)
        except OSError as exc:
            where = f"{settings.host}:{settings.admin_port}"
            raise StartupError(
                f"cannot listen on {where} (admin_port): {exc.strerror or exc}"
            ) from exc

    def listen(self, sockets: list[socket.socket]) -> int:
        self.server.add_sockets(sockets)
        return int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.server.stop()
        await self.server.close_all_connections()
