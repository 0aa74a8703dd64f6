"""The client side: a CLIENT span around each JSON-RPC request, its context sent along.

Installed into ``client.tracehooks`` when tracing starts, for both clients. Each request (each
attempt of a retried call) gets a span: named after the method for a single call or
notification; ``jsonrpc`` (the conventions' name when no one method applies) for a batch or a
raw body, whose members are each a SERVER span on the other side. The span's context goes out
in ``traceparent`` (and ``tracestate``, ``baggage``: the SDK's propagators). The caller's
``X-Request-Id`` and ``X-Timeout-Ms`` are sent as without tracing.

An error answer marks the span ERROR with the code (``rpc.response.status_code``,
``error.type``); no answer at all marks it ERROR with the exception's class as ``error.type``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ..client.exchange import Exchange
from ..client.urls import endpoint
from ..protocol.errors import RPCError
from . import semconv
from .server import failed

T = TypeVar("T")


class ClientSpans:
    """``client.tracehooks.ClientSpans`` on an OpenTelemetry tracer."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer
        self._servers: dict[str, dict[str, Any]] = {}  # url -> server.address, server.port

    def sync(self, exchange: Exchange[T], send: Callable[[Exchange[T]], T]) -> T:
        span, traced = self._start(exchange)
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                return send(traced)
        except BaseException as exc:
            _failed(span, exc)
            raise
        finally:
            span.end()

    async def aio(self, exchange: Exchange[T], send: Callable[[Exchange[T]], Awaitable[T]]) -> T:
        span, traced = self._start(exchange)
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                return await send(traced)
        except BaseException as exc:
            _failed(span, exc)
            raise
        finally:
            span.end()

    def _start(self, exchange: Exchange[T]) -> tuple[trace.Span, Exchange[T]]:
        method = exchange.rpc_method
        attributes: dict[str, Any] = {
            semconv.RPC_SYSTEM_NAME: semconv.SYSTEM,
            semconv.JSONRPC_PROTOCOL_VERSION: semconv.VERSION,
            **self._server(exchange.url),
        }
        if method is not None:
            attributes[semconv.RPC_METHOD] = method
        if exchange.rpc_id is not None:
            attributes[semconv.JSONRPC_REQUEST_ID] = str(exchange.rpc_id)
        span = self.tracer.start_span(
            method or semconv.SYSTEM, kind=SpanKind.CLIENT, attributes=attributes
        )
        carrier: dict[str, str] = {}
        propagate.inject(carrier, context=trace.set_span_in_context(span))
        traced = Exchange(
            exchange.method,
            exchange.url,
            exchange.body,
            exchange.finish,
            exchange.where,
            exchange.name,
            exchange.rpc_method,
            exchange.rpc_id,
            (*exchange.extra, *carrier.items()),
        )
        return span, traced

    def _server(self, url: str) -> dict[str, Any]:
        known = self._servers.get(url)
        if known is None:
            where = endpoint(url)
            known = {semconv.SERVER_ADDRESS: where.host, semconv.SERVER_PORT: where.port}
            if len(self._servers) < 1000:  # a process talks to a few peers; bounded regardless
                self._servers[url] = known
        return known


def _failed(span: trace.Span, exc: BaseException) -> None:
    if isinstance(exc, RPCError):
        failed(span, exc.code, exc.message)
        return
    cls = type(exc)
    span.set_attribute(semconv.ERROR_TYPE, f"{cls.__module__}.{cls.__qualname__}")
    span.set_status(Status(StatusCode.ERROR, cls.__name__))
