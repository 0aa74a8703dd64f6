"""Exchanges carried by httpx: the blocking client's transport, and the seam for a test's
``httpx.MockTransport``. httpx's exceptions become the client's own here, and nowhere else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import httpx

from service_template.protocol.deadline import HEADER

from .errors import ConnectError, RequestTimeout, TransportError, reason
from .exchange import Exchange, current_request_id
from .urls import safe_url

T = TypeVar("T")
# What a caller may pass as ``transport=`` (a test's ``httpx.MockTransport``, say).
SyncSeam = httpx.BaseTransport
AsyncSeam = httpx.AsyncBaseTransport


def translate(exc: httpx.TransportError, exchange: Exchange[Any], timeout: float) -> TransportError:
    """The client's exception for an httpx failure (raise it ``from exc``)."""
    url, where = safe_url(exchange.url), exchange.where
    if isinstance(exc, httpx.ConnectTimeout):
        return RequestTimeout(f"cannot connect to {where}: timed out after {timeout:g} s", url=url)
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(f"no answer from {where} within {timeout:g} s", url=url)
    if isinstance(exc, httpx.ConnectError):
        return ConnectError(f"cannot connect to {where}: {reason(exc)}", url=url)
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return ConnectError(f"connection to {where} failed: {reason(exc)}", url=url)
    return TransportError(f"request to {where} failed: {reason(exc)}", url=url)


def _headers(
    exchange: Exchange[Any], budget: str | None, pass_request_id: bool
) -> dict[str, str] | None:
    if budget is None and not exchange.extra:
        return exchange.headers
    headers = {**(exchange.headers or {}), **dict(exchange.extra)}  # tracing's traceparent
    if budget is None:
        return headers
    # A call made from inside one: its deadline and its request id.
    headers[HEADER] = budget
    request_id = current_request_id() if pass_request_id else None
    if request_id is not None:
        headers["X-Request-Id"] = request_id
    return headers


class HTTPXTransport:
    """A blocking connection pool (keep-alive), one timeout applied to every phase."""

    def __init__(
        self, transport: httpx.BaseTransport | None, timeout: float, headers: Mapping[str, str]
    ) -> None:
        self.timeout = timeout
        self._pass_request_id = all(name.lower() != "x-request-id" for name in headers)
        self._http = httpx.Client(transport=transport, timeout=timeout, headers=dict(headers))

    def send(self, exchange: Exchange[T], limit: float, budget: str | None) -> T:
        """Send ``exchange`` within ``limit`` seconds, with ``budget`` as ``X-Timeout-Ms``."""
        timeout = limit
        try:
            response = self._http.request(
                exchange.method,
                exchange.url,
                content=exchange.body,
                headers=_headers(exchange, budget, self._pass_request_id),
                timeout=timeout,
            )
        except httpx.TransportError as exc:
            raise translate(exc, exchange, timeout) from exc
        return exchange.finish(response)

    def close(self) -> None:
        self._http.close()


class AsyncHTTPXTransport:
    """The asyncio twin of ``HTTPXTransport``."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None,
        timeout: float,
        headers: Mapping[str, str],
    ) -> None:
        self.timeout = timeout
        self._pass_request_id = all(name.lower() != "x-request-id" for name in headers)
        self._http = httpx.AsyncClient(transport=transport, timeout=timeout, headers=dict(headers))

    async def send(self, exchange: Exchange[T], limit: float, budget: str | None) -> T:
        """Send ``exchange`` within ``limit`` seconds, with ``budget`` as ``X-Timeout-Ms``."""
        timeout = limit
        try:
            response = await self._http.request(
                exchange.method,
                exchange.url,
                content=exchange.body,
                headers=_headers(exchange, budget, self._pass_request_id),
                timeout=timeout,
            )
        except httpx.TransportError as exc:
            raise translate(exc, exchange, timeout) from exc
        return exchange.finish(response)

    async def aclose(self) -> None:
        await self._http.aclose()
