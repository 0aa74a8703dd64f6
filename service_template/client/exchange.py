"""One HTTP exchange to make, and the settings and request building both clients share."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from service_template.protocol import deadline
from service_template.protocol.calls import CURRENT

from . import replies
from .breaker import Breaker, BreakerPolicy
from .errors import RequestTimeout
from .instruments import ClientMetrics, PeerMeter, peer_label
from .retry import Retrier, RetryPolicy, RetryStats
from .urls import check_url, probe_url, safe_url

T = TypeVar("T")
DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Exchange(Generic[T]):
    """One HTTP request to make and how to turn its response into a value."""

    method: str
    url: str
    body: bytes | None
    finish: Callable[[replies.Reply], T]
    where: str  # how messages name the service: its URL without credentials, or its peer name
    name: str = ""  # the ``method`` label of client metrics: the RPC method, or what it is
    rpc_method: str | None = None  # the JSON-RPC method of a single call (None: a batch, raw)
    rpc_id: int | None = None  # that call's id (None: a notification)
    extra: tuple[tuple[str, str], ...] = ()  # headers added per request (tracing's traceparent)

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Content-Type": "application/json"} if self.body is not None else None


class ClientBase:
    """Settings and request building shared by the blocking and the async client."""

    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float,
        token_header: str,
        headers: Mapping[str, str] | None,
        *,
        peer: str | None,
        retry: RetryPolicy | None = None,
        breaker: BreakerPolicy | None = None,
        metrics: ClientMetrics | None = None,
    ) -> None:
        if not (isinstance(timeout, int | float) and 0 < timeout < math.inf):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.url = check_url(url)
        self.peer = peer
        self.where = f"service {peer!r}" if peer else safe_url(self.url)
        self.timeout = float(timeout)
        self._ids = itertools.count(1)
        self._name: str | None = None
        self._headers = {"Accept": "application/json", **(headers or {})}
        if token is not None:
            self._headers[token_header] = token
        # Reported to a service's /metrics when it made this client (instruments.py).
        self._meter: PeerMeter | None = (
            metrics.for_peer(peer_label(self.url, peer)) if metrics is not None else None
        )
        self._retrier = Retrier(retry, self._meter) if retry is not None else None
        self._breaker = Breaker(breaker, self._meter) if breaker is not None else None

    @property
    def retry_stats(self) -> RetryStats:
        """What retries of idempotent calls did so far (all zero when retries are off)."""
        return self._retrier.stats if self._retrier is not None else RetryStats()

    def __repr__(self) -> str:  # never shows the token, nor a password in the URL
        return f"{type(self).__name__}({safe_url(self.url)!r})"

    def _rpc(
        self,
        body: bytes,
        finish: Callable[[Any, float | None], T],
        name: str = "__raw__",
        rpc_method: str | None = None,
        rpc_id: int | None = None,
    ) -> Exchange[T]:
        url, where = self.url, self.where
        return Exchange(
            "POST",
            url,
            body,
            lambda response: finish(*replies.read_body(response, url, where)),
            where,
            name,
            rpc_method,
            rpc_id,
        )

    def _call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Exchange[Any]:
        request_id = next(self._ids)
        body = replies.encode_request(method, args, kwargs, request_id)
        where = self.where
        return self._rpc(
            body,
            lambda p, retry: replies.call_reply(p, request_id, where, retry),
            method,
            method,
            request_id,
        )

    def _notify(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Exchange[None]:
        body = replies.encode_request(method, args, kwargs, None)
        where = self.where
        return self._rpc(
            body, lambda p, retry: replies.notification_reply(p, where, retry), method, method
        )

    def _raw(self, body: bytes) -> Exchange[Any]:
        return self._rpc(body, lambda payload, _retry: payload)

    def _discover_name(self) -> Exchange[str]:
        call = self._call("rpc.discover", (), {})

        def finish(response: replies.Reply) -> str:
            self._name = replies.service_name(call.finish(response), self.where)
            return self._name

        return Exchange(
            call.method,
            call.url,
            call.body,
            finish,
            call.where,
            call.name,
            call.rpc_method,
            call.rpc_id,
        )

    def _health(self, probe: str) -> Exchange[replies.Health]:
        url = probe_url(self.url, probe)
        where = self.where if self.peer else safe_url(url)
        return Exchange(
            "GET", url, None, lambda response: replies.health(probe, response), where, "__health__"
        )


def time_left(timeout: float, exchange: Exchange[Any]) -> tuple[float, str | None]:
    """The timeout for one exchange and the ``X-Timeout-Ms`` value to send with it.

    Outside a call: the client's own timeout and no header. Inside one (a method calling
    another service): no longer than what remains of that call's deadline, which the callee
    learns from the header; ``RequestTimeout`` at once, with nothing sent, when nothing remains.
    """
    left = deadline.remaining()
    if left is None:
        return timeout, None
    if left <= 0:
        raise RequestTimeout(
            f"no time left to call {exchange.where}: the current call's deadline has passed",
            url=safe_url(exchange.url),
        )
    wait = min(timeout, left)
    return wait, deadline.header_value(wait)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")  # what a server accepts as X-Request-Id


def current_request_id() -> str | None:
    """The request id of the call being served (None outside one), so that a call made from
    inside it carries the same ``X-Request-Id`` and its log lines can be found across hops."""
    call = CURRENT.get(None)
    if call is None:
        return None
    request_id = call[2].request_id if type(call) is tuple else call.request_id  # type: ignore[union-attr]
    return request_id if isinstance(request_id, str) and _REQUEST_ID.fullmatch(request_id) else None
