"""A real OTLP/HTTP trace receiver for tests: ``POST /v1/traces`` with protobuf bodies.

What a collector would get, decoded with the OpenTelemetry protocol package
(``ExportTraceServiceRequest``) and kept as plain ``Span`` records that tests can assert on::

    with OTLPReceiver() as receiver:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        ...  # start services with env, call them
        spans = receiver.wait_for(lambda spans: len(spans) >= 3)

It lives with the tests, not in ``service_template.testing``: it needs the ``tracing`` extra
(the dev environment has it), and a generated project gets the tests directory too.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.proto.trace.v1.trace_pb2 import Status

KINDS = {value: name.removeprefix("SPAN_KIND_") for name, value in ProtoSpan.SpanKind.items()}
STATUSES = {value: name.removeprefix("STATUS_CODE_") for name, value in Status.StatusCode.items()}


@dataclass(frozen=True)
class Span:
    """One received span; ids in lower-case hex, ``parent_id`` "" for a root span."""

    service: str
    name: str
    kind: str  # "SERVER", "CLIENT", "INTERNAL", ...
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status: str  # "UNSET", "OK" or "ERROR"
    status_message: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


class OTLPReceiver:
    """An OTLP/HTTP receiver on a free port of 127.0.0.1, in a thread, until ``close()``."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.requests = 0  # export requests received
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                request = ExportTraceServiceRequest()
                try:
                    request.ParseFromString(body)
                except Exception:  # a body that is not the message: what a collector says
                    self.send_error(400, "not an ExportTraceServiceRequest")
                    return
                receiver._add(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest shows what matters

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        """The base URL for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the exporter adds /v1/traces)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _add(self, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        Span(
                            service=str(resource.get("service.name", "")),
                            name=span.name,
                            kind=KINDS[span.kind],
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            attributes=_attributes(span.attributes),
                            status=STATUSES[span.status.code],
                            status_message=span.status.message,
                            events=[(e.name, _attributes(e.attributes)) for e in span.events],
                        )
                    )
        with self._changed:
            self.requests += 1
            self.spans.extend(received)
            self._changed.notify_all()

    def wait_for(
        self, predicate: Callable[[list[Span]], bool], timeout: float = 20.0
    ) -> list[Span]:
        """Every span received, once ``predicate`` holds for them; AssertionError (listing
        what came) after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(list(self.spans)):
                left = deadline - time.monotonic()
                if left <= 0:
                    shown = "\n".join(f"  {s.service} {s.kind} {s.name}" for s in self.spans)
                    raise AssertionError(f"spans not as expected within {timeout}s:\n{shown}")
                self._changed.wait(left)
            return list(self.spans)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OTLPReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None
