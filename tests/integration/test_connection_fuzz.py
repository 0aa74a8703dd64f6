"""The connection layer under a fuzzer: arbitrary request streams, split at arbitrary points.

Each example opens one connection to a real server process, writes a generated stream (see
fuzz_streams.py and fuzz_scripts.py) in pieces from a second thread while this one reads, and
checks what a client can see:

- every complete request before the first broken one is answered exactly once, in order (by
  ``X-Request-Id``), with the right answer, and every answer carries ``Date``;
- no ``100 Continue`` except for the request that asked for it over HTTP/1.1;
- a client's mistake gets a 4xx (505 for an unsupported version), never another 5xx, and a
  broken stream ends with the server closing the connection;

and after every example, on the server's side: ``/livez`` answers within the probe timeout, no
exception reached the log, no call is left in flight and RSS stays under ``RSS_LIMIT_MIB``;
after the last one, every connection is gone (descriptors back to their baseline) and the
server stops cleanly on SIGTERM.

The test runs once per way a stream can end (``ENDINGS``: each kind of broken request, cut
short, complete), so even a short budget covers each. The budget, shared among them, is a
hypothesis profile: ``fuzz-ci`` (the default, 150 examples, well under a minute) or
``fuzz-long`` (5000), chosen with ``ST_FUZZ_PROFILE``; ``ST_FUZZ_EXAMPLES=N`` overrides the
number of either (see README, Tests).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from service_template.testing import wait_until
from tests.conftest import ServiceProcess, launch
from tests.integration.fuzz_scripts import ENDINGS, scripts
from tests.integration.fuzz_streams import MAX_BODY, Script, Step, Tail
from tests.integration.process_watch import ProcessWatch
from tests.integration.response_stream import ResponseStream
from tests.integration.services import connect, metrics, request, sample

pytestmark = pytest.mark.integration

ANSWER_TIMEOUT = 5.0  # generous: the machine is shared
PROBE_TIMEOUT = 3.0  # the liveness probe's timeout in the shipped manifests
RSS_LIMIT_MIB = 150  # the service starts near 40 MiB; nothing here should hold much more
# Header, body, idle and drain timeouts of the fuzzed server: a stream cut short holds its
# connection this long before the server gives up on it.
SETTLE = 2.0

_common = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow],
    "database": None,
    "print_blob": True,  # a failure in CI prints the @reproduce_failure line that replays it
}
settings.register_profile("fuzz-ci", max_examples=150, **_common)
settings.register_profile("fuzz-long", max_examples=5000, **_common)
FUZZ_SETTINGS = settings.get_profile(os.environ.get("ST_FUZZ_PROFILE", "fuzz-ci"))
if os.environ.get("ST_FUZZ_EXAMPLES"):
    FUZZ_SETTINGS = settings(FUZZ_SETTINGS, max_examples=int(os.environ["ST_FUZZ_EXAMPLES"]))

ENV = {
    "SERVICE_MAX_BODY_BYTES": str(MAX_BODY),
    "SERVICE_MAX_BATCH": "5",
    "SERVICE_HEADER_TIMEOUT": str(SETTLE),
    "SERVICE_BODY_TIMEOUT": str(SETTLE),
    "SERVICE_IDLE_TIMEOUT": str(SETTLE),
    "SERVICE_DRAIN_TIMEOUT": str(SETTLE),
    "SERVICE_LOG_CALLS": "false",  # keep the log to what matters: warnings and errors
}


class Target:
    """The fuzzed server (a short repr: hypothesis prints it with every failing example)."""

    def __init__(self, service: ServiceProcess) -> None:
        self.service = service
        self.port = service.port
        self.watch = ProcessWatch(service)

    def __repr__(self) -> str:
        return f"<ProbeService on port {self.port}>"


@pytest.fixture(scope="module")
def server() -> Iterator[Target]:
    service = launch("tests.integration.services:ProbeService", env=ENV)
    target = Target(service)
    request(service.port, "GET", "/metrics")  # anything made lazily is made before the baseline
    baseline_fds = target.watch.open_fds()
    try:
        yield target
        # After the last example every connection ends (answered, timed out or closed by the
        # client): a descriptor still open is a connection the server lost track of.
        try:
            target.watch.wait_fds_at_most(baseline_fds, within=4 * SETTLE)
        except AssertionError as exc:
            raise AssertionError(f"after the fuzz, connections never closed: {exc}") from None
    finally:
        service.stop_cleanly()


class _Sender(threading.Thread):
    """Writes the pieces of a script, pausing briefly where it says (so reads split there)."""

    def __init__(self, sock: socket.socket, script: Script) -> None:
        super().__init__(daemon=True)
        self.sock, self.script = sock, script

    def run(self) -> None:
        try:
            for piece, pause in zip(self.script.pieces, self.script.pauses, strict=True):
                self.sock.sendall(piece)
                if pause:
                    time.sleep(0.002)  # shapes the input into separate reads; waits for nothing
        except OSError:
            pass  # the server refused and closed: the reader checks how


def _check_answer(stream: ResponseStream, step: Step) -> bool:
    """Read and check the answer to ``step``; False when the server ends the connection."""
    interim, response = stream.final(ANSWER_TIMEOUT)
    assert response is not None, f"closed without answering {step.label}"
    for early in interim:
        # RFC 9110 10.1.1: 100 only to an HTTP/1.1 request that asked, never ahead of the
        # answers to earlier requests (it would be read as theirs).
        assert early.status == 100 and step.allow_continue, (
            f"interim {early.status} before the answer to {step.label}"
        )
    assert len(interim) <= 1, f"{len(interim)} interim responses to {step.label}"
    assert response.header("x-request-id") == step.request_id, (
        f"answer to {response.header('x-request-id')} where {step.label} "
        f"({step.request_id}) was next"
    )
    assert response.status in step.statuses, (step.label, response.status, response.body[:300])
    assert response.header("date"), f"no Date on the answer to {step.label}"
    if step.check is not None:
        step.check(response)
    if response.closes:
        assert step.may_close or step.must_close, f"closed the connection after {step.label}"
        assert stream.closed(ANSWER_TIMEOUT) == b"", "bytes after a Connection: close answer"
        return False
    assert not step.must_close, f"no Connection: close on the answer to {step.label}"
    return True


def _check_broken(stream: ResponseStream, tail: Tail) -> None:
    """A broken request: one client-error answer (or a reset, where allowed), then a close."""
    try:
        interim, response = stream.final(ANSWER_TIMEOUT)
    except ConnectionResetError:
        assert tail.reset_ok, f"reset instead of an answer to {tail.label}"
        return
    except TimeoutError:
        raise AssertionError(f"no answer to {tail.label} within {ANSWER_TIMEOUT}s") from None
    assert not interim, f"interim answer to {tail.label}"
    assert response is not None, f"closed without answering {tail.label}"
    assert response.status in tail.statuses, (tail.label, response.status, response.body[:300])
    if tail.must_close:
        try:
            rest = stream.closed(ANSWER_TIMEOUT)
        except TimeoutError:
            raise AssertionError(f"connection left open after {tail.label}") from None
        assert rest == b"", f"bytes after the answer to {tail.label}: {rest[:200]!r}"


LAST = Step(
    b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: fuzz-last\r\n\r\n",
    "fuzz-last",
    frozenset({200}),
    label="the last request",
)


def _in_flight(port: int) -> float:
    return sample(metrics(port), "rpc_calls_in_flight")


def _run(port: int, script: Script) -> None:
    with connect(port, timeout=ANSWER_TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sender = _Sender(sock, script)
        sender.start()
        stream = ResponseStream(sock)
        try:
            open_ = all(_check_answer(stream, step) for step in script.steps)
            if open_ and script.tail is not None and script.tail.statuses:
                _check_broken(stream, script.tail)
            elif open_ and script.tail is None:
                # One more request after everything: its answer must be the very next one (no
                # answer was sent twice) and proves the connection is still usable.
                sender.join(ANSWER_TIMEOUT)
                sock.sendall(LAST.data)
                _check_answer(stream, LAST)
        finally:
            sender.join(ANSWER_TIMEOUT)


@pytest.mark.parametrize("ending", ENDINGS)
@settings(FUZZ_SETTINGS, max_examples=max(FUZZ_SETTINGS.max_examples // len(ENDINGS), 1))
@given(data=st.data())
def test_every_stream_is_answered_in_order_and_the_server_stays_healthy(server, ending, data):
    script = data.draw(scripts(ending), label="script")
    # Shown by --hypothesis-show-statistics: what the examples covered.
    event(f"first request: {script.steps[0].label if script.steps else 'none'}")
    event(f"requests before the tail: {len(script.steps)}")
    event(f"writes: {min(len(script.pieces), 5)}{'+' if len(script.pieces) > 5 else ''}")
    try:
        _run(server.port, script)
    except AssertionError as exc:
        raise AssertionError(f"{script.describe()}: {exc}") from exc
    live = request(server.port, "GET", "/livez", timeout=PROBE_TIMEOUT)
    assert live.status == 200, live.status
    server.watch.assert_no_errors_logged()
    # Every call was answered or its connection closed: none may still count as in flight.
    wait_until(lambda: _in_flight(server.port) == 0, ANSWER_TIMEOUT, "no call in flight")
    assert server.watch.rss_mib() < RSS_LIMIT_MIB
