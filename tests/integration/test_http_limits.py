"""Limits over real HTTP: body size, batch length, slow bodies, idle connections, deadlines,
the concurrency limit and the thread pool. Limits are set small through the environment so
every test is fast; each test checks what the client sees, then that the service still
answers a normal call on a new connection."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from service_template.testing import wait_until
from tests.conftest import ServiceProcess, launch
from tests.integration.services import (
    BackgroundCall,
    Reply,
    api_head,
    assert_healthy,
    chunk,
    connect,
    exchange,
    metrics,
    post,
    read_response,
    request,
    result_of,
    rpc,
    sample,
    wait_closed,
)

pytestmark = pytest.mark.integration

MAX_BODY = 4096
MAX_BATCH = 5
BODY_TIMEOUT = 1.0
HEADER_TIMEOUT = 1.0
IDLE_TIMEOUT = 1.0
CALL_TIMEOUT = 1.5
METHOD_TIMEOUT = 0.4  # from SERVICE_METHOD_TIMEOUTS
DECORATOR_TIMEOUT = 0.3  # from @public_method(timeout=0.3) in services.py
MARGIN = 1.0  # scheduling slack on a loaded two-core CI machine
# Connection deadlines are checked by a sweeper twice a second (http/server.py).
SWEEP = 0.5

ENV = {
    "SERVICE_MAX_BODY_BYTES": str(MAX_BODY),
    "SERVICE_MAX_BATCH": str(MAX_BATCH),
    "SERVICE_BODY_TIMEOUT": str(BODY_TIMEOUT),
    "SERVICE_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
    "SERVICE_IDLE_TIMEOUT": str(IDLE_TIMEOUT),
    "SERVICE_CALL_TIMEOUT": str(CALL_TIMEOUT),
    "SERVICE_METHOD_TIMEOUTS": ",".join(
        f"{name}={METHOD_TIMEOUT}" for name in ("env_deadline", "overridden_deadline")
    ),
    "SERVICE_MAX_CONCURRENCY": "2",
}


@pytest.fixture(scope="module")
def probe() -> Iterator[ServiceProcess]:
    service = launch("tests.integration.services:ProbeService", env=ENV)
    try:
        yield service
    finally:
        service.stop_cleanly()


def _padded_call(size: int) -> bytes:
    """A valid echo call padded with whitespace to exactly ``size`` bytes."""
    body = b'{"jsonrpc":"2.0","method":"echo","params":["padded"],"id":1}'
    assert len(body) <= size
    return body + b" " * (size - len(body))


def _assert_too_large(reply: Reply) -> None:
    assert reply.status == 413
    assert reply.headers["Content-Type"] == "application/json"
    doc = reply.json()
    assert doc["error"]["code"] == -32600
    assert doc["error"]["data"] == {"limit_bytes": MAX_BODY}
    assert doc["id"] is None


# -- body size ------------------------------------------------------------------------------------


@pytest.mark.parametrize("announced", [MAX_BODY + 1, 100 * 1024 * 1024])
def test_announced_body_over_the_limit_gets_413_before_it_is_sent(probe, announced):
    with connect(probe.port) as sock:
        started = time.monotonic()
        sock.sendall(api_head(announced))  # headers only: the server must not wait for a body
        reply = read_response(sock, started=started)
    _assert_too_large(reply)
    assert reply.seconds < 1.0
    assert_healthy(probe.port)


def test_expect_continue_over_the_limit_gets_413_instead_of_100_continue(probe):
    with connect(probe.port) as sock:
        sock.sendall(api_head(MAX_BODY + 1, "Expect: 100-continue\r\n"))
        received, _ = wait_closed(sock, 2)
    assert received.startswith(b"HTTP/1.1 413 "), received
    assert b"100" not in received.partition(b"\r\n")[0]


def test_chunked_body_growing_past_the_limit_gets_413_while_it_streams(probe):
    piece = b" " * 1024
    with connect(probe.port) as sock:
        started = time.monotonic()
        sock.sendall(api_head(None, "Transfer-Encoding: chunked\r\n"))
        for _ in range(MAX_BODY // len(piece)):
            sock.sendall(chunk(piece))  # exactly at the limit so far
        # One more chunk's data, and never the end of the body: the answer cannot wait for it.
        sock.sendall(b"%x\r\n%s" % (len(piece), piece))
        reply = read_response(sock, started=started)
    _assert_too_large(reply)
    assert reply.seconds < 1.0
    assert_healthy(probe.port)


def test_body_exactly_at_the_limit_is_accepted(probe):
    reply = post(probe.port, _padded_call(MAX_BODY))
    assert reply.status == 200
    assert reply.json() == {"jsonrpc": "2.0", "result": "padded", "id": 1}


def test_chunked_body_exactly_at_the_limit_is_accepted(probe):
    body = _padded_call(MAX_BODY)
    with connect(probe.port) as sock:
        sock.sendall(api_head(None, "Transfer-Encoding: chunked\r\n"))
        for start in range(0, len(body), 1000):
            sock.sendall(chunk(body[start : start + 1000]))
        sock.sendall(b"0\r\n\r\n")
        reply = read_response(sock)
    assert reply.status == 200
    assert reply.json()["result"] == "padded"


def test_body_one_byte_over_the_limit_is_refused(probe):
    with connect(probe.port) as sock:
        sock.sendall(api_head(MAX_BODY + 1) + _padded_call(MAX_BODY + 1))
        _assert_too_large(read_response(sock))


# -- batch length ---------------------------------------------------------------------------------


def _batch(size: int) -> bytes:
    calls = [{"jsonrpc": "2.0", "method": "echo", "params": [i], "id": i} for i in range(size)]
    return json.dumps(calls).encode()


def test_batch_at_the_limit_is_answered_in_full(probe):
    doc = post(probe.port, _batch(MAX_BATCH)).json()
    assert sorted(item["result"] for item in doc) == list(range(MAX_BATCH))


def test_batch_longer_than_the_limit_gets_one_invalid_request_error(probe):
    reply = post(probe.port, _batch(MAX_BATCH + 1))
    assert reply.status == 200
    doc = reply.json()
    assert isinstance(doc, dict)  # one error for the whole batch, not one per member
    assert doc["error"]["code"] == -32600
    assert doc["id"] is None
    assert str(MAX_BATCH) in json.dumps(doc["error"].get("data"))
    assert_healthy(probe.port)


# -- slow bodies and idle connections ------------------------------------------------------------


def _assert_timed_out(received: bytes) -> None:
    """Closed with nothing, or with a 408 (never a 5xx, never a request dispatched)."""
    if received:
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 408 "), received
        assert json.loads(body)["error"]["code"] == -32600


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_slow_body_is_cut_off_after_the_body_timeout(probe, framing):
    # Two stalled bodies hold both admission slots (SERVICE_MAX_CONCURRENCY=2) until they are
    # cut off; a normal call afterwards proves the slots came back.
    socks = [connect(probe.port) for _ in range(2)]
    try:
        started = time.monotonic()
        for sock in socks:
            if framing == "chunked":
                sock.sendall(api_head(None, "Transfer-Encoding: chunked\r\n") + chunk(b'{"json'))
            else:
                sock.sendall(api_head(100) + b'{"jsonrpc"')
        for sock in socks:
            received, _ = wait_closed(sock, BODY_TIMEOUT + SWEEP + MARGIN + 1)
            _assert_timed_out(received)
            elapsed = time.monotonic() - started
            assert BODY_TIMEOUT * 0.8 < elapsed < BODY_TIMEOUT + SWEEP + MARGIN
    finally:
        for sock in socks:
            sock.close()
    assert_healthy(probe.port)
    assert sample(metrics(probe.port), "rpc_calls_in_flight") == 0


def test_slow_body_is_not_cut_off_before_the_body_timeout(probe):
    body = _padded_call(200)
    with connect(probe.port) as sock:
        sock.sendall(api_head(len(body)) + body[:100])
        # Half the timeout, measured without sleeping: wait for data that cannot come.
        sock.settimeout(BODY_TIMEOUT / 2)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        sock.settimeout(5)
        sock.sendall(body[100:])
        reply = read_response(sock)
    assert reply.json()["result"] == "padded"


def test_idle_keep_alive_connection_is_closed_after_the_idle_timeout(probe):
    body = _padded_call(100)
    with connect(probe.port) as sock:
        sock.sendall(api_head(len(body)) + body)
        reply = read_response(sock)
        assert reply.status == 200
        assert "close" not in reply.headers.get("Connection", "")  # kept alive
        received, seconds = wait_closed(sock, IDLE_TIMEOUT + SWEEP + MARGIN + 1)
    assert received == b""
    assert IDLE_TIMEOUT * 0.8 < seconds < IDLE_TIMEOUT + SWEEP + MARGIN


@pytest.mark.parametrize(
    "sent", [b"", b"POST /api HTTP/1.1\r\nHost: 127.0.0.1\r\n"], ids=["nothing", "half headers"]
)
def test_connection_that_never_completes_its_headers_is_closed(probe, sent):
    with connect(probe.port) as sock:
        sock.sendall(sent)
        received, seconds = wait_closed(sock, HEADER_TIMEOUT + SWEEP + MARGIN + 1)
    _assert_timed_out(received)
    assert HEADER_TIMEOUT * 0.8 < seconds < HEADER_TIMEOUT + SWEEP + MARGIN
    assert_healthy(probe.port)


# -- deadlines ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "deadline"),
    [
        ("sleep", CALL_TIMEOUT),  # async, service-wide SERVICE_CALL_TIMEOUT
        ("block", CALL_TIMEOUT),  # plain (thread pool), service-wide deadline
        ("short_deadline", DECORATOR_TIMEOUT),  # async, @public_method(timeout=...)
        ("short_deadline_sync", DECORATOR_TIMEOUT),  # plain, @public_method(timeout=...)
        ("env_deadline", METHOD_TIMEOUT),  # SERVICE_METHOD_TIMEOUTS
        ("overridden_deadline", METHOD_TIMEOUT),  # SERVICE_METHOD_TIMEOUTS beats the decorator
    ],
)
def test_call_past_its_deadline_gets_deadline_exceeded_promptly(probe, method, deadline):
    # Each method would run for 2.5 s: longer than any deadline here.
    reply = rpc(probe.port, method, [2.5], request_id="late")
    assert reply.status == 200
    doc = reply.json()
    assert doc["id"] == "late"
    assert "result" not in doc
    assert doc["error"]["code"] == -32002
    assert doc["error"]["data"] == {"timeout": deadline}
    assert deadline * 0.8 < reply.seconds < deadline + MARGIN
    assert_healthy(probe.port)


def test_call_within_its_deadline_returns_its_result(probe):
    assert result_of(probe.port, "short_deadline", [0.05]) == 0.05
    assert result_of(probe.port, "short_deadline_sync", [0.05]) == 0.05


# -- concurrency and the thread pool -------------------------------------------------------------


def _in_flight(port: int) -> float:
    return sample(metrics(port), "rpc_calls_in_flight")


def test_over_the_concurrency_limit_gets_503_quickly_then_recovers(probe):
    rejected_before = sample(metrics(probe.port), "rpc_http_rejected_total", status="503")
    # As long as the deadline (1.5 s) allows: both must be in flight at once, machine loaded.
    slow = [BackgroundCall(probe.port, "sleep", [1.4]) for _ in range(2)]
    for call in slow:
        call.start()
    wait_until(lambda: _in_flight(probe.port) == 2, 5, "two slow calls in flight")
    reply = rpc(probe.port, "echo", ["third"], request_id=3)
    assert reply.status == 503
    assert reply.seconds < 1.0
    assert int(reply.headers["Retry-After"]) >= 1
    doc = reply.json()
    assert doc["error"]["code"] == -32003
    assert doc["id"] is None
    assert "result" not in doc
    # The slow calls were not harmed, and once they are done calls are admitted again.
    assert [call.result() for call in slow] == [1.4, 1.4]
    assert_healthy(probe.port)
    after = metrics(probe.port)
    assert sample(after, "rpc_http_rejected_total", status="503") == rejected_before + 1


def test_plain_methods_do_not_block_the_event_loop(probe):
    blocking = BackgroundCall(probe.port, "block", [1.0])
    blocking.start()
    wait_until(lambda: _in_flight(probe.port) == 1, 5, "the blocking call in flight")
    for _ in range(3):
        live = request(probe.port, "GET", "/livez")
        assert live.status == 200
        assert live.seconds < 0.3
    echo = rpc(probe.port, "echo", ["meanwhile"])
    assert echo.json()["result"] == "meanwhile"
    assert echo.seconds < 0.3
    assert blocking.is_alive(), "the blocking call ended too early to prove anything"
    assert blocking.result() == 1.0


def test_get_route_refuses_an_announced_huge_body_at_once(probe):
    # Only /api reads bodies; the GET routes refuse a big one instead of buffering it.
    reply = exchange(
        probe.port,
        b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10000000\r\n\r\n",
        method="GET",
    )
    assert reply.status == 413
    assert reply.seconds < 1.0
    assert_healthy(probe.port)
