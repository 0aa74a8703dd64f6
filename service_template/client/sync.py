"""``RemoteClient``: the blocking JSON-RPC client."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from . import tracehooks
from .batches import Batch
from .breaker import DEFAULT_BREAKER, BreakerPolicy, PeerFailing
from .errors import ConnectError, ServerOverloaded
from .exchange import DEFAULT_TIMEOUT, ClientBase, Exchange, time_left
from .instruments import ClientMetrics, metered_sync
from .proxy import Namespace
from .replies import Health
from .retry import DEFAULT_RETRY, RetryPolicy

if TYPE_CHECKING:
    from .httpx_transport import HTTPXTransport, SyncSeam

T = TypeVar("T")
log = logging.getLogger("service_template.client")


class RemoteClient(ClientBase):
    """A blocking JSON-RPC client for one service endpoint (the ``.../api`` URL).

    ``peer`` names the service in error messages instead of its URL (see the package docstring).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        token_header: str = "X-Api-Token",  # noqa: S107 (a header name, not a secret)
        transport: SyncSeam | None = None,
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
            self._send = metered_sync(self._send, self._meter)  # type: ignore[method-assign,assignment]
        # httpx is imported when a blocking client is made, not when the package is.
        from .httpx_transport import HTTPXTransport

        self._transport: HTTPXTransport = HTTPXTransport(transport, self.timeout, self._headers)
        self.methods: Namespace[Any] = Namespace(lambda m, a, k: self._send(self._call(m, a, k)))
        # Calls declared idempotent by the caller: retried on connection errors and overload
        # (retry.py); ``retry=None`` turns retries off.
        self.idempotent: Namespace[Any] = Namespace(
            lambda m, a, k: self._send_idempotent(self._call(m, a, k))
        )
        self.notifications: Namespace[None] = Namespace(
            lambda m, a, k: self._send(self._notify(m, a, k))
        )

    def _send_idempotent(self, exchange: Exchange[T]) -> T:
        retrier = self._retrier
        if retrier is None:
            return self._send(exchange)
        retrier.budget.earn()
        retry = 0
        while True:
            try:
                return self._send(exchange)
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
                time.sleep(wait)

    def _send(self, exchange: Exchange[T]) -> T:
        spans = tracehooks.SPANS
        if spans is not None and exchange.body is not None:  # tracing is on: a CLIENT span
            return spans.sync(exchange, self._send_once)
        return self._send_once(exchange)

    def _send_once(self, exchange: Exchange[T]) -> T:
        timeout, budget = time_left(self.timeout, exchange)
        breaker = self._breaker
        if breaker is None:
            return self._transport.send(exchange, timeout, budget)
        breaker.before(exchange.where, exchange.url)
        try:
            result = self._transport.send(exchange, timeout, budget)
        except BaseException as exc:
            breaker.settle(exc)
            raise
        breaker.succeeded()
        return result

    def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` and return its result; raise its error as an ``RPCError``."""
        return self._send(self._call(method, args, kwargs))

    def notify(self, method: str, /, *args: Any, **kwargs: Any) -> None:
        """Send ``method`` as a notification: no id, no result."""
        self._send(self._notify(method, args, kwargs))

    def send_raw(self, body: bytes) -> Any:
        """POST ``body`` as it is and return the decoded answer (None when there is none)."""
        return self._send(self._raw(body))

    @property
    def name(self) -> str:
        """The service's name (``info.title`` of ``rpc.discover``), asked once and cached."""
        return self._name if self._name is not None else self._send(self._discover_name())

    def health(self, probe: str = "readyz") -> Health:
        """GET the service's ``/livez`` or ``/readyz`` (beside the ``/api`` URL)."""
        return self._send(self._health(probe))

    def batch(self) -> Batch:
        """A batch: calls made on it inside its ``with`` block go out as one request."""
        return Batch(self)

    def close(self) -> None:
        """Close the connection pool."""
        self._transport.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
