"""The OpenTelemetry SDK wired for a process: provider, sampler, batch export, flush.

Imported only once tracing is configured (``tracing.start``). The provider becomes the global
one when none is set yet, so spans a method starts with the OpenTelemetry API
(``trace.get_tracer(__name__)``) land in the same trace and go out the same way; if the process
set up its own SDK provider before, that one is used and left to its owner.
"""

from __future__ import annotations

import logging

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from ..client import tracehooks
from ..version import project_version
from . import semconv
from .client import ClientSpans
from .config import TracingConfig
from .server import ServerSpans, take_ids

log = logging.getLogger("service_template.tracing")
INSTRUMENTATION = "service_template"


class Tracing:
    """Tracing for this process: the server hook, the client spans, the log's ids."""

    def __init__(self, provider: TracerProvider, owned: bool, config: TracingConfig) -> None:
        self.provider = provider
        self.owned = owned
        self.config = config
        tracer = provider.get_tracer(INSTRUMENTATION, project_version(), semconv.SCHEMA_URL)
        self.hook = ServerSpans(tracer)
        """The runtime hook: one SERVER span per call (``tracing.server``)."""
        self.client_spans = ClientSpans(tracer)
        self.call_ids = take_ids
        """(trace id, span id) for the call log line being written (``logs.CallLog``)."""

    def flush(self, timeout: float = 5.0) -> bool:
        """Export every span ended so far, waiting at most ``timeout`` seconds; False if
        that was not enough (the exporter's endpoint is slow or down)."""
        return bool(self.provider.force_flush(int(timeout * 1000)))

    def stop(self) -> None:
        """Flush, stop the clients' spans, and shut the provider down if it is ours."""
        tracehooks.install(None)
        self.flush()
        if self.owned:
            self.provider.shutdown()


def make_tracing(config: TracingConfig) -> Tracing:
    """Set up the SDK as ``config`` says and install the clients' spans."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider) and not getattr(current, "_service_template", False):
        provider, owned = current, False  # the process's own: its owner exports and flushes
    else:
        attributes = {SERVICE_NAME: config.service_name} if config.service_name else {}
        # The sampler comes from OTEL_TRACES_SAMPLER(_ARG); parent-based always-on by default.
        provider = TracerProvider(resource=Resource.create(attributes))
        provider.add_span_processor(BatchSpanProcessor(_exporter(config)))
        provider._service_template = True  # type: ignore[attr-defined]
        owned = True
        if not isinstance(current, TracerProvider):
            trace.set_tracer_provider(provider)
    tracing = Tracing(provider, owned, config)
    tracehooks.install(tracing.client_spans)
    log.info(
        "tracing on",
        extra={"fields": {"reason": config.reason, "service_name": config.service_name}},
    )
    return tracing


def _exporter(config: TracingConfig) -> SpanExporter:
    if config.exporter == "console":
        return ConsoleSpanExporter()
    # Headers, timeout and compression from the OTEL_EXPORTER_OTLP_* variables.
    return OTLPSpanExporter(endpoint=config.endpoint)
