"""Hostile clients for the adversarial soak, run as their own process so that their CPU use
and locks never slow the legitimate client the soak measures.

    python -m tests.integration.attackers PORT SECONDS

runs every attack below at once against 127.0.0.1:PORT for SECONDS, then closes every socket
and prints one JSON object: how often each attack ran and what the server answered, so the
test can check that each attack really happened and that the server's bounds cut it off.

- slow readers: pipeline calls with large answers and never read them;
- slow senders: a request head or body a byte at a time; idle connections that send nothing;
- oversized headers and bodies, and large bodies to an unknown method;
- pipelined floods (read in full); connections abandoned mid-request, closed with a reset
  (SO_LINGER 0) or a plain close.

Every attacker loops until its deadline and paces itself where a tight loop would only
measure this process's own CPU; no attacker waits on the server without a timeout.
"""

from __future__ import annotations

import collections
import contextlib
import json
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable

from tests.integration.response_stream import ResponseStream

# The answer each slow reader's call is owed, in bytes: large, yet small enough to be
# answered on the event loop (bodies over 16 KiB are decoded in a thread, and their slow
# progress under load would hide whether the write timeout holds).
BIG_ECHO = 12 * 1024
SLOW_READER_PACE = 0.01
SLOW_SENDERS = 20
IDLE_CONNECTIONS = 150
TRICKLE_TICK = 0.25  # one byte per slow sender per tick
FLOOD_DEPTH = 100  # calls pipelined in one write by the flood
OVERSIZED_HEADER = 100 * 1024
OVERSIZED_BODY = 64 * 1024 * 1024  # announced; a few MiB of it are sent
UNKNOWN_METHOD_BODY = 900 * 1024  # under the default 1 MiB limit: it is read and decoded


class Tally:
    """Counters shared by the attacker threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: collections.Counter[str] = collections.Counter()
        self.longest: dict[str, float] = {}

    def add(self, name: str, count: int = 1) -> None:
        with self.lock:
            self.counts[name] += count

    def held(self, name: str, seconds: float) -> None:
        with self.lock:
            self.longest[name] = max(self.longest.get(name, 0.0), round(seconds, 2))


def post(body: bytes, extra: str = "") -> bytes:
    head = (
        "POST /api HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + body


def call(method: str, params: object) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).encode()


def _connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:  # before connect, so the window is small from the start
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(3)
    sock.connect(("127.0.0.1", port))
    return sock


def _open(port: int, tally: Tally, name: str) -> socket.socket | None:
    """A new connection, or None (counted) when the server does not take it."""
    try:
        return _connect(port)
    except OSError:
        tally.add(f"{name}.connect_failed")
        time.sleep(0.05)
        return None


def _status(sock: socket.socket) -> str:
    """The status code of the answer on ``sock``, or what happened instead."""
    try:
        response = ResponseStream(sock).next(5)
    except (ConnectionResetError, BrokenPipeError):
        return "reset"
    except TimeoutError:
        return "no answer"
    except AssertionError:
        return "closed early"
    return "closed" if response is None else str(response.status)


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# -- the attacks: each runs until ``until`` ---------------------------------------------------


def slow_reader(port: int, until: float, tally: Tally) -> None:
    """Pipelines calls with large answers, one every ``SLOW_READER_PACE`` seconds, and reads
    none; counts how long the server keeps such a connection open.

    Paced, so the server is never short of requests to answer and its unsent output grows
    past any buffer; a burst would instead be refused by a bound on queued requests.
    """
    request = post(call("echo", ["x" * BIG_ECHO]))
    while time.monotonic() < until:
        try:
            sock = _connect(port, rcvbuf=4096)
        except OSError:
            tally.add("slow_reader.connect_failed")
            time.sleep(0.05)
            continue
        sock.settimeout(0.5)
        pending, opened = b"", time.monotonic()
        tally.add("slow_reader.connections")
        try:
            while time.monotonic() < until:
                pending = pending or request
                with contextlib.suppress(TimeoutError):  # the server stopped reading: pushback
                    pending = pending[sock.send(pending) :]
                if not pending:
                    time.sleep(SLOW_READER_PACE)
        except OSError:
            tally.add("slow_reader.cut_by_server")
        finally:
            # Held until cut off, or until the end (a connection the server never cuts off
            # shows here as one held for the whole soak).
            tally.held("slow_reader.held_seconds", time.monotonic() - opened)
            sock.close()


def trickle(
    port: int, until: float, tally: Tally, count: int, name: str, prefix: bytes, payload: bytes
) -> None:
    """``count`` connections that send ``prefix`` at once, then ``payload`` one byte per tick
    (nothing more if it is empty); each one the server closes or answers is replaced."""
    socks: dict[socket.socket, tuple[int, float]] = {}  # socket -> (bytes sent, opened at)

    def open_one() -> None:
        sock = _open(port, tally, name)
        if sock is None:
            return
        try:
            sock.sendall(prefix)
        except OSError:
            tally.add(f"{name}.cut_early")
        sock.setblocking(False)
        socks[sock] = (0, time.monotonic())
        tally.add(f"{name}.connections")

    for _ in range(count):
        open_one()
    while time.monotonic() < until:
        readable, _, _ = select.select(list(socks), [], [], TRICKLE_TICK)
        for sock in readable:  # an answer (408, 431...) or a close: the server cut it off
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            tally.add(f"{name}.cut_by_server" + (".answered" if data else ""))
            tally.held(f"{name}.held_seconds", time.monotonic() - socks.pop(sock)[1])
            sock.close()
            open_one()
        for sock, (sent, opened) in list(socks.items()):
            if sent < len(payload):
                try:
                    sock.send(payload[sent : sent + 1])
                    socks[sock] = (sent + 1, opened)
                except OSError:
                    pass  # closed: select reports it on the next tick
    for sock, (_, opened) in socks.items():
        tally.held(f"{name}.held_seconds", time.monotonic() - opened)
        sock.close()


def oversized_header(port: int, until: float, tally: Tally) -> None:
    pad = b"X-Pad: " + b"a" * OVERSIZED_HEADER + b"\r\n"
    request = b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n" + pad + b"\r\n"
    while time.monotonic() < until:
        if (sock := _open(port, tally, "oversized_header")) is None:
            continue
        with sock:
            # Refused before it was all sent: the answer may still be readable.
            with contextlib.suppress(OSError):
                sock.sendall(request)
            tally.add("oversized_header." + _status(sock))
        time.sleep(0.05)


def oversized_body(port: int, until: float, tally: Tally) -> None:
    head = post(b"", "")[: -len("Content-Length: 0\r\n\r\n")]
    head += b"Content-Length: %d\r\n\r\n" % OVERSIZED_BODY
    piece = b" " * 65536
    while time.monotonic() < until:
        if (sock := _open(port, tally, "oversized_body")) is None:
            continue
        with sock:
            try:
                sock.sendall(head)
                for _ in range(32):  # 2 MiB, well past any limit
                    sock.sendall(piece)
            except OSError:
                pass
            tally.add("oversized_body." + _status(sock))
        time.sleep(0.05)


def unknown_method_body(port: int, until: float, tally: Tally) -> None:
    """Large bodies, under the limit, calling a method that does not exist: all decoded.

    Many small objects, not in compact form: the slowest body for a strict JSON decoder that
    checks every object for duplicate keys (about 0.4 s of CPU for 900 KiB, measured here),
    and fewer than 50,000 of them, so a cap on their number does not refuse it unread.
    """
    params: list[dict[str, int]] = []
    size = 60
    while size < UNKNOWN_METHOD_BODY:
        params.append({"key": len(params), "value": len(params)})
        size += len(json.dumps(params[-1])) + 2
    body = json.dumps({"jsonrpc": "2.0", "method": "nope", "params": params, "id": 1})
    request = post(body.encode())
    while time.monotonic() < until:
        if (sock := _open(port, tally, "unknown_method_body")) is None:
            continue
        with sock:
            with contextlib.suppress(OSError):
                sock.sendall(request)
            tally.add("unknown_method_body." + _status(sock))


def flood(port: int, until: float, tally: Tally) -> None:
    """Pipelines many small calls in one write and reads every answer."""
    burst = post(call("echo", ["flood"])) * FLOOD_DEPTH
    while time.monotonic() < until:
        if (sock := _open(port, tally, "flood")) is None:
            continue
        with sock:
            stream = ResponseStream(sock)
            sock.sendall(burst)
            try:
                for _ in range(FLOOD_DEPTH):
                    response = stream.next(10)
                    tally.add("flood." + ("closed" if response is None else str(response.status)))
                    if response is None:
                        break
            except (OSError, AssertionError) as exc:
                tally.add(f"flood.{type(exc).__name__}")


def resets(port: int, until: float, tally: Tally) -> None:
    """Connections abandoned before, during and after sending a request: closed with a reset
    (SO_LINGER 0) or, every other time, with a plain close (a FIN mid-request)."""
    request = post(call("echo", ["reset"]))
    cut = 0
    while time.monotonic() < until:
        if (sock := _open(port, tally, "resets")) is None:
            continue
        try:
            sock.sendall(request[: cut % (len(request) + 1)])
        finally:
            if cut % 2:
                _reset(sock)
            else:
                sock.close()
        tally.add("resets" if cut % 2 else "abandoned")
        cut += 37
        time.sleep(0.01)


def attacks(port: int, until: float, tally: Tally) -> list[Callable[[], None]]:
    slow_head = b"POST /api HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 1000
    body = call("echo", ["slow"])
    head = post(body)[: -len(body)]
    half = SLOW_SENDERS // 2
    return [
        *(lambda: slow_reader(port, until, tally) for _ in range(4)),
        lambda: trickle(port, until, tally, half, "slow_header", b"", slow_head),
        lambda: trickle(port, until, tally, half, "slow_body", head, body),
        lambda: trickle(port, until, tally, IDLE_CONNECTIONS, "idle", b"", b""),
        lambda: oversized_header(port, until, tally),
        lambda: oversized_body(port, until, tally),
        *(lambda: unknown_method_body(port, until, tally) for _ in range(3)),
        lambda: flood(port, until, tally),
        lambda: resets(port, until, tally),
    ]


def run(port: int, seconds: float) -> dict[str, object]:
    tally = Tally()
    until = time.monotonic() + seconds
    errors: list[str] = []

    def guard(attack: Callable[[], None]) -> None:
        try:
            attack()
        except Exception as exc:  # an attacker's own failure is reported, not hidden
            errors.append(repr(exc))

    threads = [threading.Thread(target=guard, args=(a,)) for a in attacks(port, until, tally)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"counts": dict(tally.counts), "longest": tally.longest, "errors": errors}


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]), float(sys.argv[2]))), flush=True)
