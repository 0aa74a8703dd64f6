"""The server side: one SERVER span per JSON-RPC call, as a runtime hook (``hooks``).

The runtime puts this hook in front of the service's own, so the span covers the service's hooks,
authentication and the method. The span continues the caller's trace when the request carries a
W3C ``traceparent`` (and ``tracestate``; the propagators are the SDK's, ``OTEL_PROPAGATORS``),
else it starts one. It is the current span while the method runs: in an async method, and in a
plain one too (the pool thread runs in a copy of the call's context), so a span the method starts
and a call it makes with a client are its children.

Each member of a batch is a call with a span of its own, all of them children of the caller's
span. The HTTP request gets no span of its own: the caller's CLIENT span already stands for it,
and a second span per request would double the spans (and their cost) of the common single call.
Calls answered without running a method (an unknown name, an invalid request, a batch member
refused for lack of capacity) get no span; they are in the metrics and the call log.

The status is ERROR, with ``rpc.response.status_code`` and ``error.type`` set to the code, when the
call is answered with an error object: an ``RPCError`` the method (or a hook) raised, -32603 for
any other exception (its class goes in an ``exception`` event; its message and traceback stay in
the service's log, since a message may hold data that should not leave the service).
"""

from __future__ import annotations

import contextvars
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ..protocol.calls import CallInfo, Proceed
from ..protocol.errors import RPCError
from . import semconv

INTERNAL_ERROR = -32603

# The ids of the span of the call that just ended, for its call log line (written after the
# hook returns, in the same task): taken once, so no other line can borrow them.
_ENDED: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "service_template.tracing.ended", default=None
)


def take_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the call whose log line is being written, or None when
    it had no span (it never reached a method)."""
    ids = _ENDED.get()
    if ids is not None:
        _ENDED.set(None)
    return ids


class ServerSpans:
    """The hook: ``await spans(call, proceed)``."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self.tracer = tracer

    async def __call__(self, call: CallInfo, proceed: Proceed) -> Any:
        headers = call.headers
        parent = propagate.extract(headers) if "traceparent" in headers else None
        attributes: dict[str, Any] = {
            semconv.RPC_SYSTEM_NAME: semconv.SYSTEM,
            semconv.RPC_METHOD: call.method,
            semconv.JSONRPC_PROTOCOL_VERSION: semconv.VERSION,
        }
        if call.id is not None:
            attributes[semconv.JSONRPC_REQUEST_ID] = str(call.id)
        host = headers.get("host")
        if host:
            attributes.update(server_address(host))
        span = self.tracer.start_span(
            call.method, context=parent, kind=SpanKind.SERVER, attributes=attributes
        )
        try:
            with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                return await proceed()
        except RPCError as exc:
            failed(span, exc.code, exc.message)
            raise
        except Exception as exc:
            failed(span, INTERNAL_ERROR, "Internal error")
            span.add_event("exception", {"exception.type": _qualified(type(exc))})
            raise
        finally:
            span.end()
            context = span.get_span_context()
            _ENDED.set((format(context.trace_id, "032x"), format(context.span_id, "016x")))


def failed(span: trace.Span, code: int, message: str) -> None:
    """Mark ``span`` as a call answered with error ``code``."""
    span.set_attribute(semconv.RPC_RESPONSE_STATUS_CODE, str(code))
    span.set_attribute(semconv.ERROR_TYPE, str(code))
    span.set_status(Status(StatusCode.ERROR, message))


def server_address(host: str) -> dict[str, Any]:
    """``server.address`` and ``server.port`` from a ``Host`` header (``name[:port]``,
    ``[v6]:port``); nothing for a value that is not one."""
    name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not name:
        name, port = host, ""
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    found: dict[str, Any] = {semconv.SERVER_ADDRESS: name}
    if port.isdigit() and len(port) <= 5:
        found[semconv.SERVER_PORT] = int(port)
    return found


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"
