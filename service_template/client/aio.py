"""``AsyncRemoteClient``: the asyncio twin of ``RemoteClient``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from . import tracehooks
from .batches import AsyncBatch
from .breaker import DEFAULT_BREAKER, BreakerPolicy, PeerFailing
from .errors import ConnectError, ServerOverloaded
from .exchange import DEFAULT_TIMEOUT, ClientBase, Exchange, time_left
from .instruments import ClientMetrics, metered_async
from .pool import AsyncPoolTransport
from .proxy import Namespace
from .replies import Health
from .retry import DEFAULT_RETRY, RetryPolicy

if TYPE_CHECKING:
    from .httpx_transport import AsyncHTTPXTransport, AsyncSeam

T = TypeVar("T")
log = logging.getLogger("service_template.client")


class AsyncRemoteClient(ClientBase):
    """The asyncio twin of ``RemoteClient``: the same API, awaited (``peer`` as there)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        token_header: str = "X-Api-Token",  # noqa: S107 (a header name, not a secret)
        transport: AsyncSeam | None = None,
        headers: Mapping[str, str] | None = None,
        peer: str | None = None,
        retry: RetryPolicy | None = DEFAULT_RETRY,
        breaker: BreakerPolicy | None = DEFAULT_BREAKER,
        metrics: ClientMetrics | None = None,
    ) -> None:
        super().__init__(
            url,
            token,
            timeout,
            token_header,
            headers,
            peer=peer,
            retry=retry,
            breaker=breaker,
            metrics=metrics,
        )
        if self._meter is not None:  # a service's client: every attempt reported (instruments.py)
            self._send = metered_async(self._send, self._meter)  # type: ignore[method-assign,assignment]
        # A test's httpx transport goes through httpx; otherwise the pool on asyncio and
        # httptools (pool.py: chosen by measurement, bench/client_cost.py).
        self._transport: AsyncPoolTransport | AsyncHTTPXTransport
        if transport is None:
            self._transport = AsyncPoolTransport(self.url, self.timeout, self._headers)
        else:
            from .httpx_transport import AsyncHTTPXTransport

            self._transport = AsyncHTTPXTransport(transport, self.timeout, self._headers)
        self.methods: Namespace[Awaitable[Any]] = Namespace(
            lambda m, a, k: self._send(self._call(m, a, k))
        )
        # Calls declared idempotent by the caller: retried on connection errors and overload
        # (retry.py); ``retry=None`` turns retries off.
        self.idempotent: Namespace[Awaitable[Any]] = Namespace(
            lambda m, a, k: self._send_idempotent(self._call(m, a, k))
        )
        self.notifications: Namespace[Awaitable[None]] = Namespace(
            lambda m, a, k: self._send(self._notify(m, a, k))
        )

    async def _send_idempotent(self, exchange: Exchange[T]) -> T:
        retrier = self._retrier
        if retrier is None:
            return await self._send(exchange)
        retrier.budget.earn()
        retry = 0
        while True:
            try:
                return await self._send(exchange)
            except PeerFailing:
                raise  # failing fast is the point: no waiting and trying again
            except (ConnectError, ServerOverloaded) as exc:
                retry += 1
                wait = retrier.next_wait(retry, getattr(exc, "retry_after", None), exchange.name)
                if wait is None:
                    raise
                log.info(
                    "retrying a call to %s in %.3f s (retry %d): %s", self.where, wait, retry, exc
                )
                await asyncio.sleep(wait)

    async def _send(self, exchange: Exchange[T]) -> T:
        spans = tracehooks.SPANS
        if spans is not None and exchange.body is not None:  # tracing is on: a CLIENT span
            return await spans.aio(exchange, self._send_once)
        return await self._send_once(exchange)

    async def _send_once(self, exchange: Exchange[T]) -> T:
        timeout, budget = time_left(self.timeout, exchange)
        breaker = self._breaker
        if breaker is None:
            return await self._transport.send(exchange, timeout, budget)
        breaker.before(exchange.where, exchange.url)
        try:
            result = await self._transport.send(exchange, timeout, budget)
        except BaseException as exc:
            breaker.settle(exc)
            raise
        breaker.succeeded()
        return result

    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` and return its result; raise its error as an ``RPCError``."""
        return await self._send(self._call(method, args, kwargs))

    async def notify(self, method: str, /, *args: Any, **kwargs: Any) -> None:
        """Send ``method`` as a notification: no id, no result."""
        await self._send(self._notify(method, args, kwargs))

    async def send_raw(self, body: bytes) -> Any:
        """POST ``body`` as it is and return the decoded answer (None when there is none)."""
        return await self._send(self._raw(body))

    async def get_name(self) -> str:
        """The service's name (``info.title`` of ``rpc.discover``), asked once and cached."""
        return self._name if self._name is not None else await self._send(self._discover_name())

    async def health(self, probe: str = "readyz") -> Health:
        """GET the service's ``/livez`` or ``/readyz`` (beside the ``/api`` URL)."""
        return await self._send(self._health(probe))

    def batch(self) -> AsyncBatch:
        """A batch: calls made on it inside its ``async with`` block go out as one request."""
        return AsyncBatch(self)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncRemoteClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
