"""OpenTelemetry tracing, optional and free when off.

On when the standard ``OTEL_*`` variables say so (``tracing.config``: an OTLP endpoint set,
``OTEL_SDK_DISABLED`` not ``true``); then every JSON-RPC call a service answers is a SERVER span
continuing the caller's W3C ``traceparent`` (``tracing.server``), every request a client sends is
a CLIENT span whose context goes along (``tracing.client``), every call log line carries
``trace_id`` and ``span_id``, and spans are exported over OTLP/HTTP in batches, flushed when the
service drains.

Off, nothing of OpenTelemetry is imported: this package's ``__init__`` and ``config`` use the
standard library only, and the clients look at one attribute (``client.tracehooks.SPANS``).
The packages come with the project's ``tracing`` extra (``pip install '.[tracing]'`` in a checkout);
tracing configured without them is a one-line start-up error naming it.

A program that uses the clients outside a service turns tracing on the same way::

    service_template.tracing.start("nightly-report")  # None unless OTEL_* say so
    ...  # calls made with RemoteClient / AsyncRemoteClient are CLIENT spans
    service_template.tracing.stop()  # export what is left
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .config import TracingConfig, from_environ, missing_packages

if TYPE_CHECKING:
    from .setup import Tracing

__all__ = ["Tracing", "TracingConfig", "start", "stop"]

_started: list[Tracing] = []  # this process's tracing, once started


def start(service_name: str, environ: Mapping[str, str] | None = None) -> Tracing | None:
    """This process's tracing, set up on first use from ``environ`` (the process environment by
    default); None when it is off. Later calls return the same object (one provider and one
    exporter per process), whatever name they give.

    Raises ``StartupError`` when tracing is configured but cannot run: a setting this runtime
    does not support, or the ``tracing`` extra not installed."""
    if _started:
        return _started[0]
    config = from_environ(os.environ if environ is None else environ, service_name)
    if config is None:
        return None
    try:
        from .setup import make_tracing
    except ImportError as exc:
        raise missing_packages(config, exc) from None
    tracing = make_tracing(config)
    _started.append(tracing)
    return tracing


def stop() -> None:
    """Stop this process's tracing (flush, shut down): for a program or a test that started it."""
    while _started:
        _started.pop().stop()
