"""The async client's transport: a bounded pool of keep-alive connections to one service.

Chosen by measurement (``bench/client_cost.py``): httpx spends most of a small call in its
connection pool, h11 and anyio; this pool and ``connection.py`` make the same call for a fraction
of the CPU. Every resource is bounded: ``max_connections`` open at once (callers beyond it wait,
within their timeout), idle connections closed after ``keepalive_expiry`` seconds, answers
bounded in head and body (``max_response_bytes``). The timeout covers a whole exchange: waiting
for a connection, connecting, sending and reading the answer.

A request is never sent twice: a call that fails after it was written may have run.
"""

from __future__ import annotations

import asyncio
import collections
import socket
import ssl
import time
from collections.abc import Mapping
from typing import Any, TypeVar

from service_template.protocol.deadline import HEADER

from .connection import Connection, ConnectionFailed
from .errors import ConnectError, RequestTimeout, TransportError, reason
from .exchange import Exchange, current_request_id
from .urls import Endpoint, endpoint, safe_url

T = TypeVar("T")

DEFAULT_MAX_CONNECTIONS = 100
DEFAULT_KEEPALIVE_EXPIRY = 5.0  # seconds; below a server's idle timeout (ours: 60 s)
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024


_HEADER = HEADER.encode("ascii")


class _Timeout(Exception):
    """The exchange's time ran out."""


def _check_header(name: str, value: str) -> None:
    # A CR or LF in a field would let a value start a header of its own (or a second request).
    if any(c in name for c in "\r\n:") or not name.strip() or any(c in value for c in "\r\n\0"):
        raise ValueError(f"header {name!r} cannot be sent: a name or value holds CR, LF or ':'")


class AsyncPoolTransport:
    """Sends exchanges over a pool of HTTP/1.1 connections to the client's endpoint."""

    def __init__(
        self,
        url: str,
        timeout: float,
        headers: Mapping[str, str],
        *,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        keepalive_expiry: float = DEFAULT_KEEPALIVE_EXPIRY,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        for name, value in headers.items():
            _check_header(name, value)
        self.timeout = timeout
        self.max_connections = max_connections
        self.keepalive_expiry = keepalive_expiry
        self.max_response_bytes = max_response_bytes
        self._endpoint = endpoint(url)
        self._pass_request_id = all(name.lower() != "x-request-id" for name in headers)
        self._fields = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self._heads: dict[tuple[str, str], bytes] = {}  # (method, url) -> head up to the length
        self._idle: collections.deque[Connection] = collections.deque()
        self._open = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False
        self._ssl: ssl.SSLContext | None = (
            ssl.create_default_context() if self._endpoint.scheme == "https" else None
        )

    # ---- the seam both clients' _send use ----

    async def send(self, exchange: Exchange[T], limit: float, budget: str | None) -> T:
        """Send ``exchange`` within ``limit`` seconds, with ``budget`` as ``X-Timeout-Ms``."""
        timeout = limit
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        request = self._encode(exchange, budget)
        connection = await self._acquire(exchange, loop, deadline, timeout)
        try:
            answer = await self._wait(connection.exchange(request, loop), loop, deadline)
        except _Timeout:
            connection.close()
            raise RequestTimeout(
                f"no answer from {exchange.where} within {timeout:g} s",
                url=safe_url(exchange.url),
            ) from None
        except ConnectionFailed as exc:
            raise _failed(exc, exchange) from exc.os_error
        except BaseException:  # cancelled mid-exchange: the connection's state is unknown
            connection.close()
            raise
        finally:
            self._release(connection, loop)
        return exchange.finish(answer)

    async def aclose(self) -> None:
        """Close every idle connection; connections in use close when their exchange ends."""
        self._closed = True
        while self._idle:
            self._idle.pop().close_softly()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    # ---- requests ----

    def _encode(self, exchange: Exchange[Any], budget: str | None) -> bytes:
        key = (exchange.method, exchange.url)
        head = self._heads.get(key)
        if head is None:
            target = self._target(exchange.url)
            content_type = "Content-Type: application/json\r\n" if exchange.body is not None else ""
            head = (
                f"{exchange.method} {target.target} HTTP/1.1\r\nHost: {target.host_header}\r\n"
                f"{self._fields}{content_type}"
            ).encode("latin-1")
            if len(self._heads) < 16:  # the endpoint and its two probes; bounded regardless
                self._heads[key] = head
        body = exchange.body or b""
        if budget is not None:  # a call made from inside one: its deadline and its request id
            head = b"%s%s: %s\r\n" % (head, _HEADER, budget.encode("ascii"))
            request_id = current_request_id() if self._pass_request_id else None
            if request_id is not None:
                head = b"%sX-Request-Id: %s\r\n" % (head, request_id.encode("ascii"))
        for name, value in exchange.extra:  # tracing's traceparent, when it is on
            _check_header(name, value)
            head = b"%s%s: %s\r\n" % (head, name.encode("latin-1"), value.encode("latin-1"))
        return b"%sContent-Length: %d\r\n\r\n%s" % (head, len(body), body)

    def _target(self, url: str) -> Endpoint:
        target = endpoint(url)
        mine = self._endpoint
        if (target.scheme, target.host, target.port) != (mine.scheme, mine.host, mine.port):
            raise ValueError(f"{safe_url(url)} is not on this client's service")
        return target

    # ---- the pool ----

    async def _acquire(
        self,
        exchange: Exchange[Any],
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        seconds: float,  # the whole timeout, for messages
    ) -> Connection:
        if self._closed:
            raise TransportError(
                f"the client for {exchange.where} is closed", url=safe_url(exchange.url)
            )
        now = time.monotonic()
        while self._idle:
            connection = self._idle.pop()  # most recently used first: the likeliest still open
            if connection.reusable and now - connection.idle_since < self.keepalive_expiry:
                return connection
            connection.close_softly()
            self._open -= 1
        while self._open >= self.max_connections:
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await self._wait(waiter, loop, deadline)
            except _Timeout:
                raise RequestTimeout(
                    f"no answer from {exchange.where} within {seconds:g} s "
                    f"(all {self.max_connections} connections busy)",
                    url=safe_url(exchange.url),
                ) from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if self._idle or self._closed:  # closed: the call above raises
                return await self._acquire(exchange, loop, deadline, seconds)
        self._open += 1
        try:
            return await self._connect(exchange, loop, deadline, seconds)
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    async def _connect(
        self,
        exchange: Exchange[Any],
        loop: asyncio.AbstractEventLoop,
        deadline: float,
        seconds: float,  # the whole timeout, for messages
    ) -> Connection:
        target, where = self._endpoint, exchange.where
        url = safe_url(exchange.url)
        max_body = self.max_response_bytes
        connecting = asyncio.ensure_future(
            loop.create_connection(
                lambda: Connection(max_body),
                target.host,
                target.port,
                ssl=self._ssl,
                server_hostname=target.host if self._ssl else None,
            )
        )
        try:
            _, protocol = await self._wait(connecting, loop, deadline)
        except _Timeout:
            connecting.cancel()
            raise RequestTimeout(
                f"cannot connect to {where}: timed out after {seconds:g} s", url=url
            ) from None
        except socket.gaierror as exc:
            raise ConnectError(f"cannot connect to {where}: {exc.strerror}", url=url) from exc
        except OSError as exc:
            raise ConnectError(f"cannot connect to {where}: {reason(exc)}", url=url) from exc
        sock = protocol.transport.get_extra_info("socket") if protocol.transport else None
        if sock is not None:
            # Small requests: send them now rather than wait for an ACK (Nagle's algorithm).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return protocol

    def _release(self, connection: Connection, loop: asyncio.AbstractEventLoop) -> None:
        if connection.reusable and not self._closed:
            connection.idle_since = time.monotonic()
            self._idle.append(connection)
        else:
            connection.close_softly()
            self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    @staticmethod
    async def _wait(
        future: asyncio.Future[T], loop: asyncio.AbstractEventLoop, deadline: float
    ) -> T:
        """``await future``, or raise ``_Timeout`` at ``deadline`` (one timer, no extra task)."""
        if future.done():
            return future.result()
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise _Timeout
        expired = False

        def expire() -> None:
            nonlocal expired
            if not future.done():
                expired = True
                future.cancel()

        timer = loop.call_at(deadline, expire)
        try:
            return await future
        except asyncio.CancelledError:
            if expired:
                raise _Timeout from None
            raise
        finally:
            timer.cancel()


def _failed(exc: ConnectionFailed, exchange: Exchange[Any]) -> ConnectError:
    text = reason(exc.os_error) if exc.os_error is not None else exc.reason
    return ConnectError(
        f"connection to {exchange.where} failed: {text}", url=safe_url(exchange.url)
    )
