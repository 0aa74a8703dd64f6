"""What a client can make the admin port hold: connections (``ADMIN_MAX_CONNECTIONS``), a
slow header section (``header_timeout``) and unread answers (``write_timeout``), while the API
port keeps answering; and every hostile client of ``attackers.py`` at once against it."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest

from service_template.http.admin import ADMIN_MAX_CONNECTIONS
from service_template.testing import wait_until
from tests.conftest import REPO, ServiceProcess
from tests.integration.process_watch import ProcessWatch
from tests.integration.services import (
    connect,
    read_response,
    request,
    result_of,
    wait_closed,
)

pytestmark = pytest.mark.integration

OBSERVED = "tests.integration.services:ObservedService"
EXTRA = 8  # connections opened past the cap
# Long enough that no held connection times out during a test (a slow machine included).
HOLD = {"SERVICE_HEADER_TIMEOUT": "120", "SERVICE_IDLE_TIMEOUT": "120"}
LIVEZ = b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def admin_port_of(service: ServiceProcess) -> int:
    entry = service.wait_for_log(lambda e: e.get("msg") == "listening")
    return int(entry["admin_port"])  # type: ignore[call-overload]


@contextlib.contextmanager
def held(port: int) -> Iterator[list[socket.socket]]:
    """Sockets the test opens and the context closes, however it ends."""
    socks: list[socket.socket] = []
    try:
        yield socks
    finally:
        for sock in socks:
            sock.close()


def status_of(port: int, path: str) -> int | None:
    """The status of GET ``path`` on a fresh connection; None if it got no answer."""
    try:
        return request(port, "GET", path, timeout=5).status
    except (OSError, ValueError):  # http.client raises ValueError subclasses on a cut head
        return None


def answers(port: int, path: str) -> Callable[[], bool]:
    return lambda: status_of(port, path) == 200


def assert_refused(port: int) -> None:
    """A new connection gets the minimal 503 and is closed at once, before it sends anything."""
    with connect(port) as sock:
        received, seconds = wait_closed(sock, 10)
    assert received.startswith(b"HTTP/1.1 503 "), received
    assert b"Connection: close" in received
    assert seconds < 5, seconds


def hold_served(port: int, socks: list[socket.socket]) -> None:
    """Add to ``socks`` a connection that got 200 for /livez and stays open (keep-alive),
    polling while new connections are refused (the server may not have seen closes yet)."""

    def served() -> bool:
        sock = connect(port)
        try:
            sock.sendall(LIVEZ)
            if read_response(sock, "GET").status == 200:
                socks.append(sock)
                return True
        except OSError:
            pass
        sock.close()
        return False

    wait_until(served, 10, "a connection under the cap is served")


def test_connections_past_the_cap_get_503_and_close_while_the_api_port_answers(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(OBSERVED, env={"SERVICE_ADMIN_PORT": "0", **HOLD})
    admin = admin_port_of(service)
    with held(admin) as socks:
        # Connections that send nothing: each holds a slot until its header timeout.
        socks.extend(connect(admin) for _ in range(ADMIN_MAX_CONNECTIONS))
        # Accepted in the order they connected, so these are the ones past the cap.
        for _ in range(EXTRA):
            assert_refused(admin)
            assert result_of(service.port, "echo", ["x"]) == "x"
        assert status_of(service.port, "/readyz") == 200
        # The held ones are still served: one sends its request and gets its answer.
        socks[0].sendall(LIVEZ)
        assert read_response(socks[0], "GET").status == 200
        # A slot freed, the probes and /metrics answer again.
        for sock in socks[-3:]:
            sock.close()
        del socks[-3:]
        for path in ("/livez", "/readyz", "/metrics"):
            wait_until(answers(admin, path), 10, f"{path} answers")
        assert result_of(service.port, "echo", ["y"]) == "y"
    ProcessWatch(service).assert_no_errors_logged()
    service.stop_cleanly()


def test_a_slot_is_freed_when_its_client_disconnects(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(OBSERVED, env={"SERVICE_ADMIN_PORT": "0", **HOLD})
    admin = admin_port_of(service)
    for _ in range(2):  # twice: every slot of the first round came back
        with held(admin) as socks:
            for _ in range(ADMIN_MAX_CONNECTIONS):
                hold_served(admin, socks)
            assert_refused(admin)
            socks.pop().close()
            wait_until(lambda: status_of(admin, "/livez") == 200, 10, "the freed slot serves")
    service.stop_cleanly()


def test_a_header_section_sent_a_byte_at_a_time_is_cut_after_header_timeout(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(
        OBSERVED,
        env={
            "SERVICE_ADMIN_PORT": "0",
            "SERVICE_HEADER_TIMEOUT": "1",
            "SERVICE_IDLE_TIMEOUT": "60",
        },
    )
    admin = admin_port_of(service)
    with connect(admin) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /livez HTTP/1.1\r\n")
        closed = False
        while not closed and time.monotonic() - started < 30:
            # The slow client's pace, not a wait for the server: a byte every quarter second.
            readable, _, _ = select.select([sock], [], [], 0.25)
            if readable:
                try:
                    closed = sock.recv(4096) == b""
                except ConnectionResetError:
                    closed = True
            else:
                try:
                    sock.sendall(b"X")
                except OSError:
                    closed = True
        seconds = time.monotonic() - started
    assert closed, "the server kept a header section trickling in for 30 s"
    # header_timeout is 1 s; idle_timeout (60 s) would have held it far past this.
    assert seconds < 15, seconds
    assert status_of(admin, "/livez") == 200
    service.stop_cleanly()


def test_a_client_that_leaves_its_answers_unread_is_cut_after_write_timeout(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(
        OBSERVED, env={"SERVICE_ADMIN_PORT": "0", "SERVICE_WRITE_TIMEOUT": "2", **HOLD}
    )
    admin = admin_port_of(service)
    pages = 200  # far more /metrics pages than any socket buffers hold
    with held(admin) as socks:
        reader = socket.socket()
        socks.append(reader)
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: the window
        reader.settimeout(5)
        reader.connect(("127.0.0.1", admin))
        reader.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * pages)
        # The rest of the slots, held by connections that send nothing.
        socks.extend(connect(admin) for _ in range(ADMIN_MAX_CONNECTIONS - 1))
        assert_refused(admin)
        started = time.monotonic()
        wait_until(answers(admin, "/livez"), 20, "the unread connection's slot is freed")
        # write_timeout is 2 s, checked every second; header and idle timeouts are 120 s.
        assert time.monotonic() - started < 15
        received, _ = wait_closed(reader, 10)
        assert received.count(b"HTTP/1.1 200 ") < pages  # cut, not answered in full
    ProcessWatch(service).assert_no_errors_logged()
    service.stop_cleanly()


def test_every_attacker_at_once_against_the_admin_port_leaves_the_api_port_serving(
    start_service: Callable[..., ServiceProcess],
) -> None:
    timeout = "2"  # header, body, idle and write timeouts: they bite within the attack
    env = {"SERVICE_ADMIN_PORT": "0", "SERVICE_LOG_CALLS": "false"}
    for name in ("HEADER", "BODY", "IDLE", "WRITE"):
        env[f"SERVICE_{name}_TIMEOUT"] = timeout
    service = start_service("tests.integration.services:ProbeService", env=env)
    admin = admin_port_of(service)
    watch = ProcessWatch(service)
    assert status_of(admin, "/metrics") == 200  # anything made lazily is made before the count
    baseline = watch.open_fds()
    attackers = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.attackers", str(admin), "8"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    failures: list[str] = []
    calls = peak = 0
    try:
        while attackers.poll() is None:
            peak = max(peak, watch.open_fds())
            try:
                assert result_of(service.port, "echo", ["legit"]) == "legit"
                assert status_of(service.port, "/livez") == 200
                calls += 1
            except AssertionError as exc:  # any failure on the API port is a finding
                failures.append(repr(exc))
        out, _ = attackers.communicate(timeout=30)
    finally:
        if attackers.poll() is None:
            attackers.kill()
            attackers.communicate()
    summary = json.loads(out)
    assert not summary["errors"], summary["errors"]
    assert not failures, failures[:5]
    assert calls > 10
    # The attackers held far more connections than the cap (150 idle ones alone) ...
    assert summary["counts"]["idle.connections"] > ADMIN_MAX_CONNECTIONS
    assert any(name.endswith(".503") for name in summary["counts"]), summary["counts"]
    # ... and the process never held many more descriptors than the cap's (the legitimate
    # client's two connections and a little slack besides).
    assert peak <= baseline + ADMIN_MAX_CONNECTIONS + 8, (peak, baseline)
    watch.wait_fds_at_most(baseline, within=10)
    wait_until(answers(admin, "/livez"), 10, "the admin port answers after the attack")
    watch.assert_no_errors_logged()
    service.stop_cleanly()
