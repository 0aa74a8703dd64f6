"""The admin port (``admin_port``): ``/metrics`` and the probes on a listener of their own.

With it set, the API port stops serving ``/metrics`` (``routes.make_app``), so a NetworkPolicy
can give Prometheus this port and nothing else, and callers the API port and nothing else.

Its size bounds are fixed, not settings, because its callers are: the kubelet's probes (a
fresh connection each, closed after the answer) and a Prometheus scrape or two (one keep-alive
connection each); its timeouts are the service's. ``ADMIN_MAX_CONNECTIONS`` open connections
per process, one more answered a minimal 503 and closed at once, so a client that opens
connections without end costs the process that many descriptors, not all of them (which would
starve the API port too). A client that holds them all still keeps the probes out (a refusal
fails a probe like a timeout): the NetworkPolicies keep other clients off this port, the cap
keeps the API port alive. Each connection is held at most ``header_timeout`` waiting for a
request head and ``write_timeout`` waiting for its client to read an answer; Tornado answers
pipelined requests one at a time and reads the next only once the last answer is in the
kernel, so a client that never reads costs at most one answer (a small page: /metrics or a
probe) beyond the socket buffers.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any, cast

from tornado.http1connection import HTTP1ServerConnection
from tornado.httpserver import HTTPServer as TornadoHTTPServer
from tornado.ioloop import IOLoop, PeriodicCallback
from tornado.netutil import bind_sockets

from ..errors import StartupError
from .routes import make_admin_app

if TYPE_CHECKING:
    from tornado.iostream import IOStream

    from ..runtime import Runtime

__all__ = ["ADMIN_MAX_BYTES", "ADMIN_MAX_CONNECTIONS", "AdminListener"]

ADMIN_MAX_BYTES = 64 * 1024  # largest header section and body on the admin port (GETs only)
# Open admin connections per process: a few probes and scrapes at once, with room to spare.
ADMIN_MAX_CONNECTIONS = 32
UNREAD_SWEEP = 1.0  # seconds between checks for unread output; write_timeout is this coarse

_BUSY_BODY = b"too many connections to the admin port\n"
# The whole answer to a connection over the cap: no request read, no Date (nothing formatted).
AT_CAPACITY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s"
    % (len(_BUSY_BODY), _BUSY_BODY)
)


class CappedHTTPServer(TornadoHTTPServer):
    """Tornado's HTTP server with at most ``ADMIN_MAX_CONNECTIONS`` connections open at once,
    and ``cut_unread`` for clients that leave an answer unread.

    A connection over the cap gets ``AT_CAPACITY`` and is closed as soon as it is accepted;
    nothing of it is read or queued. A slot is freed when Tornado is done with a connection
    (``on_close``: the client closed it, an answer said ``Connection: close``, it timed out idle,
    or ``cut_unread`` closed it).
    """

    max_connections = ADMIN_MAX_CONNECTIONS

    # Tornado's HTTPServer is ``Configurable``: its constructor's arguments reach ``initialize``.
    def initialize(self, *args: Any, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        # Each admitted connection's stream, and since when it has had output waiting (None:
        # none at the last sweep).
        self.streams: dict[IOStream, float | None] = {}

    def handle_stream(self, stream: IOStream, address: tuple[Any, ...]) -> None:
        if len(self.streams) >= self.max_connections:
            # A fresh socket's send buffer takes these few bytes at once (IOStream.write writes
            # inline), so the close right after drops nothing and nothing waits on the client.
            stream.write(AT_CAPACITY)
            stream.close()
            return
        self.streams[stream] = None
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        # Called once per connection handle_stream admitted (HTTP1ServerConnection's loop).
        self.streams.pop(cast(HTTP1ServerConnection, server_conn).stream, None)
        super().on_close(server_conn)

    def cut_unread(self, now: float, timeout: float) -> None:
        """Close every connection whose output has been waiting for over ``timeout`` seconds.

        Tornado has no write timeout: a client that leaves an answer larger than the socket
        buffers unread holds it, and its slot, for as long as it keeps the connection open
        (Tornado reads no further request, so no header or idle timeout runs meanwhile).
        """
        for stream, since in list(self.streams.items()):
            if not stream.writing():
                self.streams[stream] = None
            elif since is None:
                self.streams[stream] = now
            elif now - since > timeout:
                stream.close()  # its connection ends and on_close frees the slot


class AdminListener:
    """The admin port: ``/metrics``, ``/livez`` and ``/readyz`` on Tornado's own HTTP server.

    Its callers are the kubelet and Prometheus, a few requests a second, so Tornado's server is
    fast enough; its limits are the service's (small bodies; the header, body and write
    timeouts) and ``ADMIN_MAX_CONNECTIONS`` rather than Tornado's defaults. It stays open
    through the drain, so probes keep getting answers (``/readyz``: 503) until the process
    exits.
    """

    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.server = CappedHTTPServer(
            make_admin_app(runtime),
            max_body_size=ADMIN_MAX_BYTES,
            max_header_size=ADMIN_MAX_BYTES,
            # Tornado's one timeout for both: the whole header section is due this long after
            # the connection opens or its last answer was sent, so a client sending a header
            # byte a second holds a slot for header_timeout, as on the API port, not for
            # idle_timeout. Prometheus reconnects after a shorter keep-alive at no real cost.
            idle_connection_timeout=min(settings.header_timeout, settings.idle_timeout),
            body_timeout=settings.body_timeout,
        )
        self.write_timeout = settings.write_timeout
        self.sweeper = PeriodicCallback(self._sweep, UNREAD_SWEEP * 1000)

    def _sweep(self) -> None:
        self.server.cut_unread(IOLoop.current().time(), self.write_timeout)

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
        self.sweeper.start()
        return int(sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.sweeper.stop()
        self.server.stop()
        await self.server.close_all_connections()
