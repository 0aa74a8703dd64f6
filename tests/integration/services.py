"""Small services for the integration tests, served with ``serve tests.integration.services:X``,
and the client-side helpers the tests use to talk to them over loopback.

Each service exists to make one behaviour of the runtime observable from outside: slow methods
(async and plain) for deadlines, admission and drain; a ``password`` parameter for log
redaction; readiness checks the test can make fail, hang, block or slow; token checks that use
other strategies or raise. State a test flips (readiness) lives on the instance, so it is per
process and reset by the test that set it.

The helpers use the standard library (this module is also imported by the service processes;
prometheus_client's page parser is imported only when used): ``http.client`` for ordinary
requests, raw sockets where the bytes on the wire matter, and bounded polling loops instead of
sleeps.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from service_template import (
    BearerStrategy,
    CookieStrategy,
    MicroService,
    RPCError,
    private_api_method,
    public_method,
    readiness_check,
)
from service_template.client import ClientError

log = logging.getLogger("tests.integration.services")

# Upper bound on any sleep a test asks for: a plain method's thread cannot be cancelled and
# the interpreter joins pool threads at exit, so a runaway value would stall shutdown.
MAX_SLEEP = 5.0


class ProbeService(MicroService):
    """Methods for bad input, limits, deadlines and admission tests."""

    name = "probe"

    @public_method
    async def echo(self, value: Any) -> Any:
        """Return ``value`` unchanged."""
        return value

    @public_method
    async def sleep(self, seconds: float) -> float:
        """Sleep on the event loop (cancellable), then return ``seconds``."""
        await asyncio.sleep(min(seconds, MAX_SLEEP))
        return seconds

    @public_method
    def block(self, seconds: float) -> float:
        """Block a pool thread with ``time.sleep``, then return ``seconds``."""
        time.sleep(min(seconds, MAX_SLEEP))
        return seconds

    @public_method(timeout=0.3)
    async def short_deadline(self, seconds: float) -> float:
        """An async method whose own deadline (0.3 s, from the decorator) is short."""
        await asyncio.sleep(min(seconds, MAX_SLEEP))
        return seconds

    @public_method(timeout=0.3)
    def short_deadline_sync(self, seconds: float) -> float:
        """A plain method whose own deadline (0.3 s, from the decorator) is short."""
        time.sleep(min(seconds, MAX_SLEEP))
        return seconds

    @public_method
    async def env_deadline(self, seconds: float) -> float:
        """No decorator deadline: tests give it one through SERVICE_METHOD_TIMEOUTS."""
        await asyncio.sleep(min(seconds, MAX_SLEEP))
        return seconds

    @public_method(timeout=30)
    async def overridden_deadline(self, seconds: float) -> float:
        """A long decorator deadline that SERVICE_METHOD_TIMEOUTS overrides with a short one."""
        await asyncio.sleep(min(seconds, MAX_SLEEP))
        return seconds

    @public_method
    def explode(self, detail: str) -> None:
        """A server fault: raises an exception whose class and text must stay server-side."""
        raise ValueError(f"internal detail: {detail}")

    @public_method
    def type_error_inside(self, value: int) -> int:
        """Binds fine, then raises TypeError inside: an internal error, not invalid params."""
        return value + "x"  # type: ignore[operator, no-any-return]

    @public_method
    def unencodable(self) -> object:
        """Returns a value JSON cannot carry."""
        return object()

    @private_api_method
    async def secret(self, name: str) -> str:
        """A private method: needs a valid token."""
        return f"secret for {name}"

    @public_method
    async def blob(self, size: int) -> str:
        """A string of ``size`` bytes (capped at 64 MiB): big responses from small requests."""
        return "x" * min(size, 64 * 1024 * 1024)


class CookieBearerService(ProbeService):
    """Takes the token from a cookie or a bearer header only (not X-Api-Token)."""

    name = "cookie-bearer"
    validation_strategies = (CookieStrategy(), BearerStrategy())


class RaisingTokenCheckService(ProbeService):
    """Its token check raises for every token: private calls must fail closed."""

    name = "raising-check"

    def api_token_is_valid(self, api_token: str) -> bool:
        raise RuntimeError("token store unreachable")


class AsyncRaisingTokenCheckService(ProbeService):
    """Its ``async def`` token check raises for every token: private calls must fail closed."""

    name = "async-raising-check"

    async def api_token_is_valid(self, api_token: str) -> bool:  # type: ignore[override]
        raise RuntimeError("token store unreachable")


class ObservedService(MicroService):
    """Methods and readiness checks for health, metrics and log tests."""

    name = "observed"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # "pass"; "fail": backend returns false; "hang": backend awaits past any short
        # timeout; "block": blocking_backend holds a pool thread past any short timeout;
        # "slow": backend logs that it runs, takes 0.5 s, then passes.
        self.readiness_mode = "pass"

    @readiness_check
    async def backend(self) -> bool:
        """An async check: fails, hangs or is slow as the last ``set_readiness`` said."""
        if self.readiness_mode == "hang":
            await asyncio.sleep(MAX_SLEEP)
        elif self.readiness_mode == "slow":
            # The line tells a test the check is under way, so it need not guess with a sleep.
            log.info("slow readiness check running")
            await asyncio.sleep(0.5)
        return self.readiness_mode != "fail"

    @readiness_check
    def blocking_backend(self) -> bool:
        """A plain check (runs in the thread pool): blocks for 2 s in mode "block"."""
        if self.readiness_mode == "block":
            time.sleep(2.0)
        return True

    @public_method
    async def set_readiness(self, mode: str) -> str:
        """Switch the readiness checks to ``mode`` (pass, fail, hang, block or slow)."""
        if mode not in ("pass", "fail", "hang", "block", "slow"):
            raise RPCError(4000, "mode must be pass, fail, hang, block or slow")
        self.readiness_mode = mode
        return mode

    @public_method
    async def echo(self, value: Any) -> Any:
        """Return ``value`` unchanged."""
        return value

    @public_method
    async def sleep(self, seconds: float) -> float:
        """Sleep on the event loop, then return ``seconds``."""
        await asyncio.sleep(min(seconds, MAX_SLEEP))
        return seconds

    @public_method
    async def fail(self) -> None:
        """An application error with its own code."""
        raise RPCError(4001, "this method always fails")

    @public_method(errors=[RPCError(5007, "declared")])
    async def fail_with(self, code: int) -> None:
        """An application error with the code the caller chooses (any number of them); 5007 is
        the one it declares."""
        raise RPCError(code, "failed as asked")

    @public_method
    async def login(self, user: str, password: str) -> str:
        """Takes a password: the call log must show it as ``***``."""
        return f"welcome {user}" if password else "no password"

    @public_method
    def getpid(self) -> int:
        """The worker process that answered."""
        return os.getpid()

    @public_method
    async def call_peer(self, peer: str) -> str:
        """Call ``echo`` of ``peer`` (from ``SERVICE_PEERS``) as an idempotent call, so that the
        client metrics show its outcomes, retries and breaker; how the call ended."""
        try:
            await self.get_service(peer).idempotent.echo(1)
        except (ClientError, RPCError) as exc:
            return type(exc).__name__
        return "ok"


# -- client side ---------------------------------------------------------------------------------

JSON_HEADERS = {"Content-Type": "application/json"}
# What must never reach a client: a traceback, a source location or a Python exception class.
INTERNALS = re.compile(rb"Traceback|File \"|\b[A-Z][A-Za-z]*(Error|Exception)\b|\.py\b")


@dataclass
class Reply:
    """One HTTP response as the client saw it."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    """One request on a fresh connection (http.client), timed from send to full body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        started = time.monotonic()
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, response.headers, data, time.monotonic() - started)
    finally:
        conn.close()


def post(port: int, body: bytes, headers: dict[str, str] | None = None, **kw: Any) -> Reply:
    """POST raw bytes to /api as application/json (unless ``headers`` say otherwise)."""
    return request(port, "POST", "/api", body, {**JSON_HEADERS, **(headers or {})}, **kw)


def rpc(
    port: int,
    method: str,
    params: list[Any] | dict[str, Any] | None = None,
    *,
    request_id: Any = 1,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    """A JSON-RPC call (``params`` omitted when None) on a fresh connection."""
    call: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        call["params"] = params
    return post(port, json.dumps(call).encode(), headers, timeout=timeout)


def result_of(port: int, method: str, params: list[Any] | dict[str, Any] | None = None) -> Any:
    """The result of a call that must succeed."""
    reply = rpc(port, method, params)
    assert reply.status == 200, (reply.status, reply.body)
    doc = reply.json()
    assert "result" in doc, doc
    return doc["result"]


class BackgroundCall(threading.Thread):
    """A JSON-RPC call running in a thread; ``result()`` waits for it (bounded)."""

    def __init__(self, port: int, method: str, params: list[Any]) -> None:
        super().__init__(daemon=True)
        self.call = (port, method, params)
        self.reply: Reply | None = None

    def run(self) -> None:
        port, method, params = self.call
        self.reply = rpc(port, method, params, timeout=30)

    def result(self, limit: float = 15.0) -> Any:
        self.join(limit)
        assert self.reply is not None, f"{self.call[1]} did not return within {limit}s"
        assert self.reply.status == 200, (self.reply.status, self.reply.body)
        doc = self.reply.json()
        assert "result" in doc, doc
        return doc["result"]


def assert_healthy(port: int) -> None:
    """The service still answers a normal call on a new connection ("loses nothing")."""
    assert result_of(port, "echo", ["still here"]) == "still here"


def connect(port: int, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def exchange(port: int, data: bytes, method: str = "POST", timeout: float = 5.0) -> Reply:
    """Send ``data`` as is on a new connection and read one response."""
    with connect(port, timeout) as sock:
        started = time.monotonic()
        sock.sendall(data)
        return read_response(sock, method, started)


def read_response(sock: socket.socket, method: str = "POST", started: float = 0.0) -> Reply:
    """Read one HTTP response from ``sock`` (raises if the server closes without one)."""
    response = http.client.HTTPResponse(sock, method=method)
    try:
        response.begin()
        data = response.read()
    finally:
        response.close()  # its file object holds the socket open until closed
    return Reply(response.status, response.headers, data, time.monotonic() - started)


def api_head(length: int | None, extra: str = "") -> bytes:
    """The request line and headers of a POST to /api (``length`` None: no Content-Length)."""
    lines = ["POST /api HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode("latin-1")


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def wait_closed(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Read until the server closes ``sock``; (what arrived, seconds it took).

    Fails if the connection is still open after ``limit`` seconds.
    """
    started = time.monotonic()
    received = b""
    sock.settimeout(limit)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            received += data
    except TimeoutError:
        raise AssertionError(f"server kept the connection open for {limit}s") from None
    except ConnectionResetError:
        pass  # closed with a reset: closed all the same
    return received, time.monotonic() - started


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(page: str) -> Samples:
    """Every sample of a Prometheus text page, keyed by (name, labels)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: Samples = {}
    for family in text_string_to_metric_families(page):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def metrics(port: int) -> Samples:
    reply = request(port, "GET", "/metrics")
    assert reply.status == 200, reply.status
    return parse_metrics(reply.body.decode())


def sample(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
