"""Graceful shutdown under load: SIGTERM/SIGINT in the middle of traffic loses nothing.

Sixteen client threads, each on its own keep-alive connection (``http.client``), send calls,
notifications and batches to ``drain_service.DrainService`` without pause. After about a second
of load a long call is started, the signal is sent, and every client keeps sending until the
server closes its connection or refuses a new one.

How each request is counted, as a client sees it:

- *not sent*: the connection was refused, or the server had already closed it before the
  request was written (checked on the socket just before each write). Such a request never
  reached the service, so it cannot have been lost.
- *answered*: the request was written and its response came back; it must be the right one.
- *lost*: the request was written and no response came back. There must be none.

After the process exits, the trace file the service writes (one line per executed call and
notification) shows that every notification answered with 204 really ran, exactly once.

The other tests pin down the edges of a drain: a call past the drain deadline is cut and the
process still exits 0 at once; a large response is not truncated; and requests that reach
idle keep-alive connections just as the drain ends are answered rather than dropped.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServiceProcess
from tests.integration.drain_service import EVENTS_ENV

pytestmark = pytest.mark.integration

TARGET = "tests.integration.drain_service:DrainService"
CLIENTS = 16
LOAD_SECONDS = 1.0
DRAIN_TIMEOUT = 10.0
HOLD_SECONDS = 1.5  # long enough to probe /readyz while it is still in flight
JSON_HEADERS = {"Content-Type": "application/json"}

Expected = dict[str, Any] | None  # the exact reply, or None for 204 (notifications only)


def call(method: str, token: str, *params: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": method, "params": [token, *params], "id": token}


def reply(result: str, token: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "result": result, "id": token}


def notification(token: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": "note", "params": [token]}


def peer_closed(sock: socket.socket) -> bool:
    """Whether the server has closed this idle keep-alive connection (FIN or RST arrived)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def read_events(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [(event, token) for event, _, token in (line.partition(" ") for line in lines)]


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"{what} did not happen within {timeout}s")


@dataclass
class Tally:
    """What one client saw."""

    answered: int = 0
    closing_answers: int = 0  # answers carrying "Connection: close" (sent during the drain)
    notes_answered: list[str] = field(default_factory=list)
    not_sent: int = 0
    refused: bool = False
    wrong: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)


class LoadClient(threading.Thread):
    """Sends requests on one keep-alive connection until the server refuses it a connection."""

    def __init__(self, index: int, port: int, deadline: float) -> None:
        super().__init__(name=f"load-{index}", daemon=True)
        self.index = index
        self.port = port
        self.deadline = deadline
        self.random = random.Random(index)
        self.tally = Tally()
        self.conn: http.client.HTTPConnection | None = None

    def run(self) -> None:
        try:
            for seq in itertools.count():
                if time.monotonic() > self.deadline or not self._connected():
                    return
                self._exchange(*self._request(f"c{self.index}-{seq}", seq))
        finally:
            if self.conn is not None:
                self.conn.close()

    def _connected(self) -> bool:
        """A usable connection, reconnecting when the server closed the last one."""
        conn = self.conn
        if conn is not None and conn.sock is not None and not peer_closed(conn.sock):
            return True
        if conn is not None and conn.sock is not None:
            # The server closed this connection before we wrote the next request on it.
            self.tally.not_sent += 1
            conn.close()
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            self.conn.connect()
        except ConnectionRefusedError:
            self.tally.not_sent += 1
            self.tally.refused = True
            return False
        return True

    def _request(self, token: str, seq: int) -> tuple[str, Any, Expected]:
        """The request body for step ``seq``: a slow call, a blocking call, a notification or a
        batch of all three, with the reply it must get."""
        slow_ms, blocking_ms = self.random.randint(50, 200), self.random.randint(10, 80)
        kind = seq % 4
        if kind == 0:
            return token, call("slow", token, slow_ms), reply(f"slow:{token}", token)
        if kind == 1:
            return token, call("blocking", token, blocking_ms), reply(f"blocking:{token}", token)
        if kind == 2:
            return token, notification(token), None
        a, b, n = f"{token}a", f"{token}b", f"{token}n"
        batch = [call("slow", a, slow_ms), call("blocking", b, blocking_ms), notification(n)]
        return token, batch, {"batch": [reply(f"slow:{a}", a), reply(f"blocking:{b}", b)]}

    def _exchange(self, token: str, body: Any, expected: Expected) -> None:
        conn = self.conn
        assert conn is not None
        try:
            conn.request("POST", "/api", json.dumps(body).encode(), JSON_HEADERS)
        except OSError:
            # The write itself failed: the server had closed the connection, nothing was sent.
            self.tally.not_sent += 1
            conn.close()
            return
        try:
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.tally.lost.append(f"{token}: {exc!r}")
            conn.close()
            return
        self.tally.answered += 1
        if response.getheader("Connection", "").lower() == "close":
            self.tally.closing_answers += 1
        problem = self._check(expected, response.status, raw)
        if problem:
            self.tally.wrong.append(f"{token}: {problem}")
        elif expected is None or isinstance(body, list):
            self.tally.notes_answered.append(token if expected is None else f"{token}n")

    @staticmethod
    def _check(expected: Expected, status: int, raw: bytes) -> str | None:
        if expected is None:
            return None if (status, raw) == (204, b"") else f"notification got {status} {raw!r}"
        if status != 200:
            return f"status {status} {raw!r}"
        got = json.loads(raw)
        if "batch" in expected:
            ok = isinstance(got, list) and sorted(got, key=lambda r: r.get("id", "")) == sorted(
                expected["batch"], key=lambda r: r["id"]
            )
        else:
            ok = got == expected
        return None if ok else f"got {got!r}"


class HoldCall(threading.Thread):
    """One long call on its own connection; remembers when and what it got back."""

    def __init__(self, port: int, method: str, token: str, *params: Any) -> None:
        super().__init__(name=f"hold-{token}", daemon=True)
        self.port, self.method, self.token, self.params = port, method, token, params
        self.answered = threading.Event()
        self.status: int | None = None
        self.body: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            body = json.dumps(call(self.method, self.token, *self.params)).encode()
            conn.request("POST", "/api", body, JSON_HEADERS)
            response = conn.getresponse()
            self.status, self.body = response.status, json.loads(response.read())
        except (OSError, http.client.HTTPException) as exc:
            self.error = exc
        finally:
            conn.close()
            self.answered.set()


def start_hold(service: ServiceProcess, events: Path, method: str, seconds: float) -> HoldCall:
    """Start a long call and wait until the service is running it."""
    hold = HoldCall(service.port, method, f"{method}-1", seconds)
    hold.start()
    wait_for(lambda: ("start", hold.token) in read_events(events), 10, f"{method} starting")
    return hold


def get_readyz(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/readyz")
    response = conn.getresponse()
    doc = json.loads(response.read())
    assert response.getheader("Content-Type") == "application/health+json"
    assert (response.status == 503) == (doc["status"] == "fail")
    return response.status


def log_messages(service: ServiceProcess) -> list[str]:
    return [str(entry.get("msg")) for entry in service.logs()]


def exit_status(service: ServiceProcess, within: float, since: float) -> tuple[int, float]:
    """Wait for the process to exit; its status and the seconds from ``since`` to its exit."""
    try:
        code = service.proc.wait(max(0.0, since + within - time.monotonic()))
    except subprocess.TimeoutExpired:
        service.proc.kill()
        service.proc.wait()
        service.close_pipe()
        raise AssertionError(f"still running {within}s after the signal") from None
    took = time.monotonic() - since
    service.close_pipe()
    return code, took


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_under_load_drains_every_accepted_call_and_exits_0(
    start_service: Callable[..., ServiceProcess], tmp_path: Path, signum: signal.Signals
) -> None:
    events = tmp_path / "events.txt"
    env = {
        EVENTS_ENV: str(events),
        "SERVICE_DRAIN_TIMEOUT": str(DRAIN_TIMEOUT),
        "SERVICE_LOG_CALLS": "0",
    }
    service = start_service(TARGET, env=env)
    probe = http.client.HTTPConnection("127.0.0.1", service.port, timeout=5)
    assert get_readyz(probe) == 200

    deadline = time.monotonic() + LOAD_SECONDS + DRAIN_TIMEOUT + 15
    clients = [LoadClient(i, service.port, deadline) for i in range(CLIENTS)]
    for client in clients:
        client.start()
    began = time.monotonic()
    wait_for(
        lambda: (
            time.monotonic() - began >= LOAD_SECONDS
            and all(client.tally.answered >= 2 for client in clients)
        ),
        LOAD_SECONDS + 10,
        "a second of load with every client answered",
    )
    # A long call in flight when the signal arrives, to see /readyz fail while it runs.
    hold = start_hold(service, events, "hold", HOLD_SECONDS)

    service.proc.send_signal(signum)
    signalled = time.monotonic()
    statuses: list[int] = []
    while time.monotonic() - signalled < HOLD_SECONDS and (not statuses or statuses[-1] != 503):
        statuses.append(get_readyz(probe))
    not_ready_after = time.monotonic() - signalled
    hold_in_flight = not hold.answered.is_set()
    probe.close()

    code, took = exit_status(service, DRAIN_TIMEOUT + 5, signalled)
    for thread in [*clients, hold]:
        thread.join(timeout=5)
        assert not thread.is_alive(), f"{thread.name} still running"
    tallies = [client.tally for client in clients]
    executed = read_events(events)

    assert statuses[-1] == 503, f"/readyz answered {statuses} after the signal"
    assert set(statuses) <= {200, 503}
    assert not_ready_after < 1.0
    assert hold_in_flight, "the long call had already finished when /readyz turned 503"
    assert hold.error is None, f"the in-flight call got no answer: {hold.error!r}"
    assert (hold.status, hold.body) == (200, reply("hold:hold-1", "hold-1"))

    lost = [item for tally in tallies for item in tally.lost]
    wrong = [item for tally in tallies for item in tally.wrong]
    ran = {token for _, token in executed}

    def ran_any(token: str) -> bool:  # a batch's members carry suffixes a, b, n
        return any(token + suffix in ran for suffix in ("", "a", "b", "n"))

    assert lost == [], f"{len(lost)} requests written but never answered: " + ", ".join(
        f"{item} (ran: {ran_any(item.partition(':')[0])})" for item in lost[:10]
    )
    assert wrong == [], f"{len(wrong)} wrong answers: {wrong[:10]}"
    assert all(tally.refused for tally in tallies), "a client stopped before being refused"
    answered = sum(tally.answered for tally in tallies)
    assert answered >= CLIENTS * 3, f"only {answered} requests answered: not much of a load"
    # Requests answered with "Connection: close" were in flight (or arrived) during the drain.
    assert sum(tally.closing_answers for tally in tallies) >= 1

    notes_answered = sorted(note for tally in tallies for note in tally.notes_answered)
    notes_run = sorted(token for event, token in executed if event == "note")
    assert notes_run == notes_answered  # each accepted notification ran, exactly once

    assert (code, took < DRAIN_TIMEOUT) == (0, True), f"exit {code} after {took:.1f}s"
    messages = log_messages(service)
    assert "draining" in messages
    assert "stopped" in messages
    assert messages.index("draining") < messages.index("stopped")


@pytest.mark.parametrize("method", ["hold", "hold_blocking"])
def test_a_call_past_the_drain_deadline_is_cut_and_the_process_still_exits_0(
    start_service: Callable[..., ServiceProcess], tmp_path: Path, method: str
) -> None:
    events = tmp_path / "events.txt"
    drain_timeout = 1.0
    env = {
        EVENTS_ENV: str(events),
        "SERVICE_DRAIN_TIMEOUT": str(drain_timeout),
        "SERVICE_CALL_TIMEOUT": "60",
    }
    service = start_service(TARGET, env=env)
    hold = start_hold(service, events, method, 10.0)

    service.proc.send_signal(signal.SIGTERM)
    code, took = exit_status(service, drain_timeout + 5, time.monotonic())

    assert code == 0
    assert took < drain_timeout + 2.0, f"exit took {took:.1f}s"
    hold.join(timeout=5)
    assert hold.answered.is_set()
    assert isinstance(hold.error, http.client.RemoteDisconnected | ConnectionError)
    assert ("call", hold.token) not in read_events(events)
    messages = log_messages(service)
    assert any(message.startswith("drain deadline passed") for message in messages)
    assert messages.index("draining") < messages.index("stopped")


SWARM = 100  # idle keep-alive connections, written on all at once as the drain ends


def test_requests_sent_as_the_drain_closes_connections_are_answered_never_cut(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """Keep-alive clients that write just as the last in-flight call ends: a request the
    service has begun to run is always answered, never cut off with its connection.

    This is the keep-alive race on purpose. A request written on an idle connection at the
    moment the drain closes it can go unanswered without being lost: the server decided to
    close before it arrived (the FIN may trail that decision by a loop turn) and never read it,
    so it never ran. A request the server did read keeps its connection open until answered,
    so "written, started, unanswered" is the one outcome that means a lost call.
    """
    events = tmp_path / "events.txt"
    env = {EVENTS_ENV: str(events), "SERVICE_LOG_CALLS": "0", "SERVICE_DRAIN_TIMEOUT": "10"}
    service = start_service(TARGET, env=env)
    swarm = []
    for index in range(SWARM):
        conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=10)
        conn.request(
            "POST", "/api", json.dumps(call("slow", f"w{index}", 0)).encode(), JSON_HEADERS
        )
        assert conn.getresponse().read()
        swarm.append(conn)
    try:
        hold = start_hold(service, events, "hold", 0.3)

        service.proc.send_signal(signal.SIGTERM)
        assert hold.answered.wait(10)
        # The drain ends once the long call is done: write on every connection still open now.
        sent: list[tuple[str, http.client.HTTPConnection]] = []
        for index, conn in enumerate(swarm):
            assert conn.sock is not None
            if peer_closed(conn.sock):
                continue  # closed before this request was written: not sent
            token = f"b{index}"
            try:
                conn.request(
                    "POST", "/api", json.dumps(call("hold", token, 0.1)).encode(), JSON_HEADERS
                )
            except OSError:
                continue  # the write itself failed: not sent
            sent.append((token, conn))
        answers: dict[str, tuple[int, Any]] = {}
        unanswered = []
        for token, conn in sent:
            try:
                response = conn.getresponse()
                answers[token] = (response.status, json.loads(response.read()))
            except (OSError, http.client.HTTPException):
                unanswered.append(token)
    finally:
        for conn in swarm:
            conn.close()
    code, _ = exit_status(service, 15, time.monotonic())

    started = {token for event, token in read_events(events) if event == "start"}
    cut = [token for token in unanswered if token in started]
    assert cut == [], (
        f"{len(cut)} of {len(sent)} requests written on open connections were started by the "
        f"service and then cut off without an answer: {cut[:10]}"
    )
    for token, (status, body) in answers.items():
        if status == 503:  # refused with a retryable error: it must not have run
            assert token not in started
        else:
            assert (status, body) == (200, reply(f"hold:{token}", token))
    assert code == 0


def test_a_large_response_in_flight_at_the_signal_arrives_whole(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    events = tmp_path / "events.txt"
    size = 32 * 1024 * 1024  # far more than a socket buffer holds: sent over many loop turns
    # Above the default max_response_bytes (4 MiB): allow it, this test is about the drain.
    env = {
        EVENTS_ENV: str(events),
        "SERVICE_LOG_CALLS": "0",
        "SERVICE_MAX_RESPONSE_BYTES": "64000000",
    }
    service = start_service(TARGET, env=env)
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    try:
        conn.request(
            "POST", "/api", json.dumps(call("big", "big-1", size, 0.3)).encode(), JSON_HEADERS
        )
        wait_for(lambda: ("start", "big-1") in read_events(events), 10, "big starting")
        service.proc.send_signal(signal.SIGTERM)
        response = conn.getresponse()
        try:
            raw = response.read()
        except http.client.IncompleteRead as exc:
            pytest.fail(f"response cut off after {len(exc.partial)} of {size} bytes")
    finally:
        conn.close()
    assert response.status == 200
    assert json.loads(raw) == reply("x" * size, "big-1")
    assert exit_status(service, 15, time.monotonic())[0] == 0


def test_requests_waiting_unread_when_the_drain_ends_are_answered(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    """Requests that reached the server while its event loop was busy, before the last call in
    flight ended, are answered: the drain must not close a connection with a request waiting."""
    events = tmp_path / "events.txt"
    env = {EVENTS_ENV: str(events), "SERVICE_LOG_CALLS": "0", "SERVICE_DRAIN_TIMEOUT": "10"}
    service = start_service(TARGET, env=env)
    conns = [http.client.HTTPConnection("127.0.0.1", service.port, timeout=10) for _ in range(21)]
    try:
        probe, *swarm = conns
        for index, conn in enumerate(swarm):
            body = json.dumps(call("slow", f"w{index}", 0)).encode()
            conn.request("POST", "/api", body, JSON_HEADERS)
            assert conn.getresponse().read()
        assert get_readyz(probe) == 200
        # Waits 1 s (the drain starts meanwhile), then blocks the event loop for 0.8 s.
        stall = HoldCall(service.port, "stall", "stall-1", 1.0, 0.8)
        stall.start()
        wait_for(lambda: ("start", "stall-1") in read_events(events), 10, "stall starting")

        service.proc.send_signal(signal.SIGTERM)
        wait_for(lambda: get_readyz(probe) == 503, 5, "/readyz failing")
        probe.close()
        assert ("blocking", "stall-1") not in read_events(events), "the drain started too late"
        wait_for(lambda: ("blocking", "stall-1") in read_events(events), 10, "stall blocking")
        # The loop is blocked: nothing can be closed now, and these requests wait unread.
        for index, conn in enumerate(swarm):
            assert conn.sock is not None
            assert not peer_closed(conn.sock)
            body = json.dumps(call("slow", f"b{index}", 0)).encode()
            conn.request("POST", "/api", body, JSON_HEADERS)
        answers: dict[str, Any] = {}
        for index, conn in enumerate(swarm):
            token = f"b{index}"
            try:
                response = conn.getresponse()
                answers[token] = (response.status, json.loads(response.read()))
            except (OSError, http.client.HTTPException) as exc:
                answers[token] = repr(exc)
    finally:
        for conn in conns:
            conn.close()
    stall.join(timeout=10)
    code, _ = exit_status(service, 15, time.monotonic())

    assert (stall.status, stall.body) == (200, reply("stall:stall-1", "stall-1"))
    lost = {token: answer for token, answer in answers.items() if not isinstance(answer, tuple)}
    assert lost == {}, f"{len(lost)} of {len(swarm)} requests waiting to be read were dropped"
    for token, answer in answers.items():
        assert answer == (200, reply(f"slow:{token}", token))
    assert code == 0
