"""The OpenTelemetry SDK wired for a process: provider, sampler, batch export, flush.

Imported only once tracing is configured (``tracing.start``). The provider becomes the global
one when none is set yet, so spans a method starts with the OpenTelemetry API
(``trace.get_tracer(__name__)``) land in the same trace and go out the same way; if the process
set up its own SDK provider before, that one is used and left to its owner.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable

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
FLUSH_TIMEOUT = 5.0
"""Seconds a drain waits for the last spans to be exported."""


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

    def flush(self, timeout: float = FLUSH_TIMEOUT) -> bool:
        """Export every span ended so far, waiting at most ``timeout`` seconds; False if
        that was not enough (the collector is slow or down: the export goes on in the
        background, and the process may exit without it)."""
        # The SDK's force_flush ignores its timeout and exports in the calling thread, retrying
        # for up to OTEL_EXPORTER_OTLP_TIMEOUT (10 s): a drain must not wait on a dead collector.
        return _bounded(self.provider.force_flush, timeout)

    def stop(self) -> None:
        """Flush, stop the clients' spans, and shut the provider down if it is ours."""
        tracehooks.install(None)
        self.flush()
        if self.owned:
            _bounded(self.provider.shutdown, FLUSH_TIMEOUT)


def make_tracing(config: TracingConfig) -> Tracing:
    """Set up the SDK as ``config`` says and install the clients' spans."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider) and not getattr(current, "_service_template", False):
        provider, owned = current, False  # the process's own: its owner exports and flushes
    else:
        attributes = {SERVICE_NAME: config.service_name} if config.service_name else {}
        # The sampler comes from OTEL_TRACES_SAMPLER(_ARG); parent-based always-on by default.
        # Shut down at exit within a bound of ours, not the SDK's (up to 30 s, past a
        # container's grace period, when the collector is down).
        provider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
        atexit.register(_bounded, provider.shutdown, FLUSH_TIMEOUT)
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


def _bounded(work: Callable[[], object], timeout: float) -> bool:
    """Run ``work`` in a daemon thread; whether it finished within ``timeout`` seconds."""
    done = threading.Event()

    def run() -> None:
        try:
            work()
        finally:
            done.set()

    threading.Thread(target=run, name="tracing-flush", daemon=True).start()
    return done.wait(timeout)


def _exporter(config: TracingConfig) -> SpanExporter:
    if config.exporter == "console":
        return ConsoleSpanExporter()
    # Headers, timeout and compression from the OTEL_EXPORTER_OTLP_* variables.
    return OTLPSpanExporter(endpoint=config.endpoint)
