"""Whether tracing is on, read from the standard ``OTEL_*`` environment variables.

Standard library only: deciding costs no OpenTelemetry import, so a service that does not trace
never loads it. The rules, after the OpenTelemetry SDK's own environment specification:

- ``OTEL_SDK_DISABLED=true`` turns everything off, whatever else is set;
- ``OTEL_TRACES_EXPORTER``: ``none`` turns tracing off; ``otlp`` (or unset) exports over
  OTLP/HTTP with protobuf; ``console`` prints spans to stdout (for a developer); anything else is
  a start-up error;
- with ``OTEL_TRACES_EXPORTER`` unset, tracing is on only when an endpoint is set:
  ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (the full URL, ``.../v1/traces``) or
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the collector's base URL; ``/v1/traces`` is added). A service
  must not send spans to a default address nobody configured;
- ``OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL`` must be ``http/protobuf`` (or unset): the extra ships
  that exporter only, and a silent fallback would lose every span;
- ``OTEL_SERVICE_NAME`` (or ``service.name`` in ``OTEL_RESOURCE_ATTRIBUTES``) names the
  service in traces; by default it is the service's own name.

The endpoint is read from the mapping given (a test passes its own); the SDK reads the rest
from the process environment itself (``OTEL_TRACES_SAMPLER`` and its argument, the exporter's
headers, timeout and compression, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import StartupError
from ..version import distribution_name

EXTRA = "tracing"
"""The optional dependencies that install OpenTelemetry (the project's ``[tracing]`` extra)."""

_EXPORTERS = ("otlp", "console", "none")
_PROTOCOL = "http/protobuf"


@dataclass(frozen=True)
class TracingConfig:
    """Tracing is on: where spans go and what the service is called in them."""

    exporter: str  # "otlp" or "console"
    service_name: str | None  # None: OTEL_RESOURCE_ATTRIBUTES names it (service.name=...)
    reason: str  # the variable that turned it on, for messages
    endpoint: str | None = None  # the OTLP URL spans are posted to; None: the SDK's default


def from_environ(environ: Mapping[str, str], default_name: str) -> TracingConfig | None:
    """The tracing configuration ``environ`` asks for, or None when tracing is off.

    Raises ``StartupError`` for a setting this runtime cannot honour (an exporter or protocol
    it does not ship), naming the variable."""
    if _get(environ, "OTEL_SDK_DISABLED").lower() == "true":
        return None
    exporter = _get(environ, "OTEL_TRACES_EXPORTER").lower()
    if exporter:
        # A list is allowed by the specification; one exporter is what this runtime wires.
        if exporter not in _EXPORTERS:
            raise StartupError(
                f"OTEL_TRACES_EXPORTER={exporter!r} is not supported here: "
                f"use one of {', '.join(_EXPORTERS)}"
            )
        if exporter == "none":
            return None
        reason = f"OTEL_TRACES_EXPORTER={exporter}"
    else:
        endpoint = next(
            (
                name
                for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
                if _get(environ, name)
            ),
            None,
        )
        if endpoint is None:
            return None
        exporter, reason = "otlp", f"{endpoint} is set"
    if exporter == "otlp":
        for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            protocol = _get(environ, name)
            if protocol:
                if protocol != _PROTOCOL:
                    raise StartupError(
                        f"{name}={protocol!r} is not supported: spans are exported over "
                        f"OTLP/HTTP, set it to {_PROTOCOL} (or leave it unset)"
                    )
                break  # the traces-specific variable wins over the general one
    service_name: str | None = _get(environ, "OTEL_SERVICE_NAME")
    if not service_name and "service.name=" not in _get(environ, "OTEL_RESOURCE_ATTRIBUTES"):
        service_name = default_name
    return TracingConfig(exporter, service_name or None, reason, _endpoint(environ))


def _endpoint(environ: Mapping[str, str]) -> str | None:
    # The signal-specific URL is used as it is; the general one is a base (spec: add the path).
    full = _get(environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if full:
        return full
    base = _get(environ, "OTEL_EXPORTER_OTLP_ENDPOINT")
    return f"{base.rstrip('/')}/v1/traces" if base else None


def missing_packages(config: TracingConfig, error: ImportError) -> StartupError:
    """The one-line start-up error for tracing asked for without the packages installed."""
    # The project's own distribution: a renamed project is not installed as service-template.
    install = f"{distribution_name()}[{EXTRA}]" if distribution_name() else f".[{EXTRA}]"
    return StartupError(
        f"tracing is configured ({config.reason}) but OpenTelemetry is not installed "
        f"({error.name or 'opentelemetry'}): install the '{EXTRA}' extra, "
        f"pip install '{install}'"
    )


def _get(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip()
