"""Tracing across real services: spans exported over OTLP/HTTP to a real receiver.

The services run as subprocesses (``python -m service_template serve``) with the standard
``OTEL_*`` variables pointing at ``tests/otlp_receiver.py``; the test process is the first client,
with tracing started the same way (``service_template.tracing.start``).
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service_template import RPCError, tracing
from service_template.client import RemoteClient
from service_template.version import distribution_name
from tests.conftest import REPO, ServiceProcess
from tests.integration.tracing_services import GATED, REFUSED
from tests.otlp_receiver import OTLPReceiver, Span

pytestmark = pytest.mark.integration

RELAY = "tests.integration.tracing_services:RelayService"
HELLO = "tests.integration.tracing_services:HelloEndService"
PROBE = "tests.integration.services:ProbeService"  # imports no OpenTelemetry itself


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as receiver:
        yield receiver


def otel_env(receiver: OTLPReceiver, **more: str) -> dict[str, str]:
    # A short export delay: spans arrive while the test waits (the receiver is polled).
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        **more,
    }


@pytest.fixture
def traced_client(receiver: OTLPReceiver) -> Iterator[None]:
    """Tracing on in this test process, as the first caller, exporting to ``receiver``."""
    started = tracing.start("test-client", otel_env(receiver))
    assert started is not None
    try:
        yield
    finally:
        tracing.stop()


def by_name(spans: list[Span], service: str, kind: str, name: str) -> Span:
    found = [s for s in spans if (s.service, s.kind, s.name) == (service, kind, name)]
    assert len(found) == 1, (service, kind, name, spans)
    return found[0]


def test_a_call_through_two_relays_is_one_trace_across_three_hops(
    start_service: Callable[..., ServiceProcess], receiver: OTLPReceiver, traced_client: None
) -> None:
    # client -> front.say_hello_async (async client) -> relay.say_hello (a plain method,
    # blocking client) -> hello
    hello = start_service(HELLO, env=otel_env(receiver))
    relay = start_service(RELAY, env=otel_env(receiver, SERVICE_PEERS=f"hello={hello.url}"))
    peers = f"hello={relay.url}"
    front = start_service(RELAY, env=otel_env(receiver, SERVICE_PEERS=peers, SERVICE_NAME="front"))

    with RemoteClient(front.url) as client:
        assert client.call("say_hello_async", "you") == "relayed: relayed: hello you"
    tracing.stop()  # the test's own span goes out now

    spans = receiver.wait_for(lambda spans: len(spans) >= 6)
    assert len({span.trace_id for span in spans}) == 1, spans
    first = by_name(spans, "test-client", "CLIENT", "say_hello_async")
    front_server = by_name(spans, "front", "SERVER", "say_hello_async")
    front_client = by_name(spans, "front", "CLIENT", "say_hello")
    relay_server = by_name(spans, "relay", "SERVER", "say_hello")
    relay_client = by_name(spans, "relay", "CLIENT", "say_hello")
    hello_server = by_name(spans, "hello", "SERVER", "say_hello")
    chain = [first, front_server, front_client, relay_server, relay_client, hello_server]
    assert first.parent_id == ""
    for parent, child in itertools.pairwise(chain):
        assert child.parent_id == parent.span_id, (parent, child)

    assert front_server.attributes == {
        "rpc.system.name": "jsonrpc",
        "rpc.method": "say_hello_async",
        "jsonrpc.protocol.version": "2.0",
        "jsonrpc.request.id": "1",
        "server.address": "127.0.0.1",
        "server.port": front.port,
    }
    assert front_client.attributes["server.port"] == relay.port
    assert front_client.attributes["server.address"] == "127.0.0.1"
    assert front_client.attributes["rpc.system.name"] == "jsonrpc"
    assert all(span.status == "UNSET" for span in chain)


def test_an_error_answer_marks_both_sides_of_the_call_error_with_its_code(
    start_service: Callable[..., ServiceProcess], receiver: OTLPReceiver, traced_client: None
) -> None:
    relay = start_service(RELAY, env=otel_env(receiver))
    with RemoteClient(relay.url) as client:
        with pytest.raises(RPCError) as refused:
            client.call("refuse")
        assert refused.value.code == REFUSED
        with pytest.raises(RPCError) as crashed:
            client.call("crash")
        assert crashed.value.code == -32603
    tracing.stop()

    spans = receiver.wait_for(lambda spans: len(spans) >= 4)
    for kind in ("SERVER", "CLIENT"):
        span = by_name(spans, "relay" if kind == "SERVER" else "test-client", kind, "refuse")
        assert span.status == "ERROR"
        assert span.status_message == "refused on purpose"
        assert span.attributes["rpc.response.status_code"] == str(REFUSED)
        assert span.attributes["error.type"] == str(REFUSED)
    crash = by_name(spans, "relay", "SERVER", "crash")
    assert (crash.status, crash.attributes["error.type"]) == ("ERROR", "-32603")
    assert crash.events == [("exception", {"exception.type": "builtins.ValueError"})]
    assert not any("secret" in repr(span) for span in spans)  # the message stays in the log


def test_the_call_span_covers_the_services_own_hooks(
    start_service: Callable[..., ServiceProcess], receiver: OTLPReceiver
) -> None:
    relay = start_service(RELAY, env=otel_env(receiver))
    with RemoteClient(relay.url) as client, pytest.raises(RPCError) as stopped:
        client.call("gated")
    assert stopped.value.code == GATED
    span = by_name(receiver.wait_for(lambda spans: len(spans) >= 1), "relay", "SERVER", "gated")
    # The hook ran inside the span, and its refusal is the span's outcome.
    assert stopped.value.data == {"trace_id": span.trace_id, "span_id": span.span_id}
    assert (span.status, span.attributes["error.type"]) == ("ERROR", str(GATED))


def test_plain_and_async_methods_run_inside_their_call_span(
    start_service: Callable[..., ServiceProcess], receiver: OTLPReceiver
) -> None:
    relay = start_service(RELAY, env=otel_env(receiver))
    with RemoteClient(relay.url) as client:
        seen = {name: client.call(name) for name in ("plain_span", "async_span")}
    spans = receiver.wait_for(lambda spans: len(spans) >= 2)
    for name, ids in seen.items():
        span = by_name(spans, "relay", "SERVER", name)
        assert ids == {"trace_id": span.trace_id, "span_id": span.span_id}
        assert span.parent_id == ""  # no traceparent came: the call started the trace


def test_each_batch_member_gets_its_own_span_under_the_batch_request(
    start_service: Callable[..., ServiceProcess], receiver: OTLPReceiver, traced_client: None
) -> None:
    relay = start_service(RELAY, env=otel_env(receiver))
    with RemoteClient(relay.url) as client, client.batch() as batch:
        plain = batch.call("plain_span")
        asynchronous = batch.call("async_span")
        batch.notify("async_span")
    tracing.stop()
    spans = receiver.wait_for(lambda spans: len(spans) >= 4)
    request = by_name(spans, "test-client", "CLIENT", "jsonrpc")
    members = [s for s in spans if s.service == "relay"]
    assert sorted(s.name for s in members) == ["async_span", "async_span", "plain_span"]
    assert {s.parent_id for s in members} == {request.span_id}
    assert len({s.span_id for s in members}) == 3
    assert {plain.result()["span_id"], asynchronous.result()["span_id"]} < {
        s.span_id for s in members
    }
    ids = sorted(s.attributes.get("jsonrpc.request.id", "notification") for s in members)
    assert ids == [str(plain.request_id), str(asynchronous.request_id), "notification"]


def test_call_log_lines_carry_the_trace_and_span_of_their_call(
    start_service: Callable[..., ServiceProcess], receiver: OTLPReceiver
) -> None:
    # The text format gets the same ids: tests/unit/test_tracing.py (the kit reads JSON logs).
    relay = start_service(RELAY, env=otel_env(receiver))
    with RemoteClient(relay.url) as client:
        client.call("async_span")
        client.call("plain_span")
        with pytest.raises(RPCError):
            client.call("no_such_method")  # never reaches a method: no span, no ids
    spans = receiver.wait_for(lambda spans: len(spans) >= 2)
    for name in ("async_span", "plain_span"):
        span = by_name(spans, "relay", "SERVER", name)
        line = relay.wait_for_log(lambda e, n=name: e.get("msg") == "call" and e["method"] == n)
        assert (line["trace_id"], line["span_id"]) == (span.trace_id, span.span_id)
    unknown = relay.wait_for_log(lambda e: e.get("method") == "__unknown__")
    assert "trace_id" not in unknown and "span_id" not in unknown


def test_spans_of_the_last_calls_are_flushed_when_the_service_drains_on_sigterm(
    start_service: Callable[..., ServiceProcess], receiver: OTLPReceiver
) -> None:
    # A minute between exports: only the flush at shutdown can send these spans in time.
    relay = start_service(RELAY, env=otel_env(receiver, OTEL_BSP_SCHEDULE_DELAY="60000"))
    with RemoteClient(relay.url) as client:
        for _ in range(3):
            client.call("async_span")
    assert receiver.requests == 0
    relay.stop_cleanly()
    spans = receiver.wait_for(lambda spans: len(spans) >= 3, timeout=5)
    assert [s.name for s in spans] == ["async_span"] * 3


def test_the_sampler_the_otel_variables_name_is_honoured(
    start_service: Callable[..., ServiceProcess], receiver: OTLPReceiver
) -> None:
    sampled = start_service(RELAY, env=otel_env(receiver, OTEL_SERVICE_NAME="sampled"))
    dropped = start_service(
        RELAY, env=otel_env(receiver, OTEL_SERVICE_NAME="dropped", OTEL_TRACES_SAMPLER="always_off")
    )
    for relay in (sampled, dropped):
        with RemoteClient(relay.url) as client:
            assert client.call("async_span")["trace_id"]
        relay.stop_cleanly()  # everything ended is flushed by now
    assert {span.service for span in receiver.spans} == {"sampled"}


def test_a_collector_that_is_down_holds_the_drain_for_seconds_not_longer(
    start_service: Callable[..., ServiceProcess],
) -> None:
    with socket.socket() as sock:  # a port nobody listens on: every export is refused
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    # A generous export timeout, as for a far collector: retried for 40 s if nothing bounds it.
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": dead, "OTEL_EXPORTER_OTLP_TIMEOUT": "40"}
    relay = start_service(RELAY, env=env)
    with RemoteClient(relay.url) as client:
        client.call("async_span")
    started = time.monotonic()
    relay.stop_cleanly(timeout=30)
    # The flush and the exit's shutdown wait 5 s each at most.
    assert time.monotonic() - started < 15


OFF_PROBE = textwrap.dedent(
    """
    import asyncio, json, sys
    from service_template import MicroService, RPCError, public_method, runner
    from service_template.client import AsyncRemoteClient, RemoteClient

    class Probe(MicroService):
        name = "probe"

        @public_method
        def plain(self) -> int:
            return 1

        @public_method
        async def fails(self) -> None:
            raise RPCError(-32050, "no")

    async def main() -> None:
        async with runner.running(Probe()) as url:
            async with AsyncRemoteClient(url) as client:
                assert await client.call("plain") == 1
                try:
                    await client.call("fails")
                except RPCError:
                    pass
            with RemoteClient(url) as blocking:
                assert await asyncio.to_thread(blocking.call, "plain") == 1

    asyncio.run(main())
    print(json.dumps(sorted(m for m in sys.modules if m.startswith("opentelemetry"))))
    """
)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "{endpoint}"},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "{endpoint}"},
    ],
    ids=["unset", "sdk-disabled", "exporter-none"],
)
def test_with_tracing_off_nothing_of_opentelemetry_is_loaded_or_sent(
    receiver: OTLPReceiver, env: dict[str, str]
) -> None:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SERVICE_"))}
    full.update({k: v.format(endpoint=receiver.endpoint) for k, v in env.items()})
    full["SERVICE_PORT"] = "0"
    done = subprocess.run(
        [sys.executable, "-c", OFF_PROBE],
        cwd=REPO,
        env=full,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
    assert receiver.requests == 0


def test_tracing_configured_without_the_packages_is_a_one_line_error(tmp_path: Path) -> None:
    # A package that shadows OpenTelemetry and fails to import as an absent one does.
    shadow = tmp_path / "opentelemetry"
    shadow.mkdir()
    (shadow / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'opentelemetry'\", name='opentelemetry')\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SERVICE_"))}
    env.update(PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO}", OTEL_EXPORTER_OTLP_ENDPOINT="http://x")
    done = subprocess.run(
        [sys.executable, "-m", "service_template", "serve", PROBE, "--port", "0"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        "error: tracing is configured (OTEL_EXPORTER_OTLP_ENDPOINT is set) but OpenTelemetry "
        "is not installed (opentelemetry): install the 'tracing' extra, "
        f"pip install '{distribution_name()}[tracing]'"  # the project's own name
    ]
