"""Tracing's pure parts: when the OTEL_* variables turn it on, the attribute names, the call log
line with trace ids. The spans themselves: tests/integration/test_tracing.py."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from service_template.errors import StartupError
from service_template.logs import CallLog, LineWriter
from service_template.tracing import semconv
from service_template.tracing.config import TracingConfig, from_environ
from service_template.tracing.server import server_address

ENDPOINT = "http://collector:4318"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"OTEL_SERVICE_NAME": "x"}, None),  # a name alone sends nothing anywhere
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT},
            TracingConfig(
                "otlp", "svc", "OTEL_EXPORTER_OTLP_ENDPOINT is set", f"{ENDPOINT}/v1/traces"
            ),
        ),
        (
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{ENDPOINT}/custom", "OTEL_SERVICE_NAME": "n"},
            TracingConfig(
                "otlp", "n", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set", f"{ENDPOINT}/custom"
            ),
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_SDK_DISABLED": "TRUE"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_TRACES_EXPORTER": "none"}, None),
        (
            {"OTEL_TRACES_EXPORTER": "console"},
            TracingConfig("console", "svc", "OTEL_TRACES_EXPORTER=console", None),
        ),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_RESOURCE_ATTRIBUTES": "service.name=r"},
            TracingConfig(
                "otlp", None, "OTEL_EXPORTER_OTLP_ENDPOINT is set", f"{ENDPOINT}/v1/traces"
            ),
        ),
    ],
)
def test_tracing_is_on_only_when_the_otel_variables_say_so(
    environ: dict[str, str], expected: TracingConfig | None
) -> None:
    assert from_environ(environ, "svc") == expected


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER='zipkin' is not supported"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL='grpc' is not supported",
        ),
    ],
)
def test_a_setting_the_runtime_cannot_honour_stops_the_start(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(StartupError, match=message):
        from_environ(environ, "svc")


def test_the_traces_protocol_variable_wins_over_the_general_one() -> None:
    environ = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": ENDPOINT,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",  # for metrics, say
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
    }
    assert from_environ(environ, "svc") is not None


def test_attribute_names_are_those_of_the_installed_semantic_conventions() -> None:
    from opentelemetry.semconv._incubating.attributes import (
        error_attributes,
        jsonrpc_attributes,
        rpc_attributes,
        server_attributes,
    )
    from opentelemetry.semconv.schemas import Schemas

    assert semconv.RPC_SYSTEM_NAME == rpc_attributes.RPC_SYSTEM_NAME
    assert semconv.RPC_METHOD == rpc_attributes.RPC_METHOD
    assert semconv.RPC_RESPONSE_STATUS_CODE == rpc_attributes.RPC_RESPONSE_STATUS_CODE
    assert semconv.JSONRPC_REQUEST_ID == jsonrpc_attributes.JSONRPC_REQUEST_ID
    assert semconv.JSONRPC_PROTOCOL_VERSION == jsonrpc_attributes.JSONRPC_PROTOCOL_VERSION
    assert semconv.ERROR_TYPE == error_attributes.ERROR_TYPE
    assert semconv.SERVER_ADDRESS == server_attributes.SERVER_ADDRESS
    assert semconv.SERVER_PORT == server_attributes.SERVER_PORT
    assert max(s.value for s in Schemas if "1.44" in s.value) == semconv.SCHEMA_URL


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("gateway:8000", {"server.address": "gateway", "server.port": 8000}),
        ("example.com", {"server.address": "example.com"}),
        ("[::1]:8080", {"server.address": "::1", "server.port": 8080}),
        ("[::1]", {"server.address": "::1"}),
    ],
)
def test_server_address_comes_from_the_host_header(host: str, expected: dict[str, Any]) -> None:
    assert server_address(host) == expected


def call_line(log_format: str, ids: tuple[str, str] | None) -> bytes:
    out = io.BytesIO()
    log = CallLog(
        (), {"echo": ("text",)}, LineWriter(out), log_format=log_format, trace_ids=lambda: ids
    )
    log.enabled = True
    log("echo", 7, ["hi"], None, 0.001, http_request_id="req-1")
    return out.getvalue()


def test_a_json_call_line_carries_the_trace_and_span_ids() -> None:
    line = json.loads(call_line("json", ("a" * 32, "b" * 16)))
    assert (line["trace_id"], line["span_id"], line["request_id"]) == ("a" * 32, "b" * 16, "req-1")
    assert "trace_id" not in json.loads(call_line("json", None))


def test_a_text_call_line_carries_the_trace_and_span_ids() -> None:
    line = call_line("text", ("a" * 32, "b" * 16)).decode()
    assert f"trace={'a' * 32} span={'b' * 16}" in line
    assert "trace=" not in call_line("text", None).decode()
