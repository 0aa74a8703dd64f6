"""Plain helpers for the container tier: HTTP to a container, bounded polling, a call load.

Only the standard library talks HTTP here (``http.client``, one connection per request), so a
test sees exactly what happened on the wire: a refused connection, a connection closed without
an answer, or a status and a body. Every wait is a bounded poll; nothing sleeps to wait for a
server.
"""

from __future__ import annotations

import http.client
import itertools
import json
import re
import select
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
# Not a secret: it exists only inside the containers and stacks these tests create.
TOKEN = "container-tier-token-5b0c7e"
JSON_HEADERS = {"Content-Type": "application/json"}

T = TypeVar("T")

# Facts worth reading in the session summary (image size, timings); conftest prints them.
FACTS: list[str] = []


def note(fact: str) -> None:
    """Record one line for the "container tier" section of the terminal summary."""
    FACTS.append(fact)


@dataclass(frozen=True)
class Reply:
    """One HTTP response, whatever its status."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    """Send one request on a fresh connection; transport errors propagate as OSError."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, path or "/", body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
    finally:
        conn.close()


def get(url: str, timeout: float = 10.0, headers: dict[str, str] | None = None) -> Reply:
    return request("GET", url, headers=headers, timeout=timeout)


def rpc(
    url: str,
    method: str,
    params: list[Any] | dict[str, Any] | None = None,
    *,
    token: str | None = None,
    request_id: int | str = 1,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """One JSON-RPC call; returns the response object (result or error) after checking HTTP."""
    payload: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": request_id}
    if params is not None:
        payload["params"] = params
    headers = dict(JSON_HEADERS)
    if token is not None:
        headers["X-Api-Token"] = token
    reply = request("POST", url, json.dumps(payload).encode(), headers, timeout)
    assert reply.status == 200, f"{method}: HTTP {reply.status} {reply.body[:300]!r}"
    answer = reply.json()
    assert isinstance(answer, dict), answer
    assert answer.get("id") == request_id, answer
    return answer


def result_of(answer: dict[str, Any]) -> Any:
    """The ``result`` of a JSON-RPC response, failing with the error if there is one."""
    assert "error" not in answer, f"expected a result, got {answer['error']}"
    return answer["result"]


def wait_for(check: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll ``check`` until it returns a truthy value (returned), at most ``timeout`` seconds.

    ``check`` may raise OSError (a server not up yet): that counts as "not yet".
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except OSError as exc:
            value, last = None, exc
        else:
            last = value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s (last: {last!r})")
        time.sleep(interval)


def status_of(url: str, timeout: float = 3.0) -> int | None:
    """The status ``url`` answers with, or None when it does not answer."""
    try:
        return get(url, timeout=timeout).status
    except OSError:
        return None


def call_log_ids(log_text: str) -> set[str]:
    """The ids of the calls a service logged (its JSON ``call`` lines): the calls it ran."""
    ids = set()
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("msg") == "call" and entry.get("id") is not None:
            ids.add(str(entry["id"]))
    return ids


def log_entries(log_text: str, msg: str) -> list[dict[str, Any]]:
    """The service's JSON log lines whose ``msg`` is ``msg``."""
    entries = []
    for line in log_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("msg") == msg:
            entries.append(entry)
    return entries


@dataclass
class Outcome:
    """What one call of a load saw."""

    call_id: str
    kind: str  # see CallLoad
    detail: str = ""
    finished: float = 0.0  # time.monotonic() when the call ended


@dataclass
class CallLoad:
    """Client threads sending one JSON-RPC call after another, each on a new connection.

    ``expected`` is the result every call must return. What each call saw:

    - ``not-sent``: no connection (refused, address gone), or the server had already closed
      it when the request was about to be written. The service never had the call.
    - ``reset``: written, then the connection was reset. The kernel resets a connection whose
      data the process never read (still in the accept queue of a listener that closed, or
      unread in a socket the server closed), so the service never had the call.
    - ``lost``: written, and the connection ended cleanly with no response: the server had
      read the request and dropped it. Never acceptable.
    - ``ok``, or ``wrong`` (an answer, but not the right one).

    A client that cannot connect stops, as a load balancer stops routing to an endpoint whose
    listener is closed; the others go on until ``stop()``.
    """

    url: str
    method: str
    params: list[Any]
    expected: Any
    clients: int = 8
    timeout: float = 10.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=itertools.count)

    def start(self) -> CallLoad:
        for index in range(self.clients):
            thread = threading.Thread(target=self._run, args=(index,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> list[Outcome]:
        """Stop sending; returns every outcome once each client's last call has ended."""
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)
        assert not any(t.is_alive() for t in self._threads), "a load client did not stop"
        return self.outcomes

    def count(self, kind: str) -> int:
        with self._lock:
            return sum(1 for outcome in self.outcomes if outcome.kind == kind)

    def _run(self, index: int) -> None:
        while not self._stop.is_set():
            with self._lock:
                call_id = f"load-{index}-{next(self._ids)}"
            outcome = self._one(call_id)
            outcome.finished = time.monotonic()
            with self._lock:
                self.outcomes.append(outcome)
            if outcome.kind == "not-sent":
                return

    def _one(self, call_id: str) -> Outcome:
        parts = urlsplit(self.url)
        assert parts.hostname is not None and parts.port is not None, self.url
        payload = {"jsonrpc": "2.0", "method": self.method, "params": self.params, "id": call_id}
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        try:
            try:
                conn.connect()
            except OSError as exc:
                return Outcome(call_id, "not-sent", repr(exc))
            assert conn.sock is not None
            if select.select([conn.sock], [], [], 0)[0]:
                # Readable before anything was sent: the server has closed the connection.
                return Outcome(call_id, "not-sent", "closed by the server before the request")
            try:
                conn.request("POST", parts.path, json.dumps(payload).encode(), JSON_HEADERS)
                response = conn.getresponse()
                status, body = response.status, response.read()
            except http.client.RemoteDisconnected as exc:
                # A clean close (a ConnectionResetError subclass, but no reset happened).
                return Outcome(call_id, "lost", repr(exc))
            except (ConnectionResetError, BrokenPipeError) as exc:
                return Outcome(call_id, "reset", repr(exc))
            except (OSError, http.client.HTTPException) as exc:
                return Outcome(call_id, "lost", repr(exc))
        finally:
            conn.close()
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if status == 200 and answer == {"jsonrpc": "2.0", "result": self.expected, "id": call_id}:
            return Outcome(call_id, "ok")
        return Outcome(call_id, "wrong", f"HTTP {status} {body[:200]!r}")


def check_no_accepted_call_failed(outcomes: list[Outcome], logged_ids: set[str]) -> None:
    """No call the service took was lost: every answer is right, no connection ended without
    one after the request was read, and every call the service ran (its call log) was answered.
    """
    wrong = [o for o in outcomes if o.kind == "wrong"]
    assert not wrong, f"{len(wrong)} calls got a wrong answer, e.g. {wrong[:3]}"
    lost = [o for o in outcomes if o.kind == "lost"]
    assert not lost, f"{len(lost)} calls were read but never answered, e.g. {lost[:3]}"
    unanswered = [o for o in outcomes if o.call_id in logged_ids and o.kind != "ok"]
    assert not unanswered, f"{len(unanswered)} calls ran but got no answer: {unanswered[:3]}"
    # Guards the check above: the call log must really list the calls that were answered.
    unlogged = [o for o in outcomes if o.kind == "ok" and o.call_id not in logged_ids]
    assert not unlogged, f"answered calls missing from the call log: {unlogged[:3]}"


def compose_variables(compose_file: Path) -> frozenset[str]:
    """The variables a Compose file interpolates (``${NAME...}``), read from the file itself so
    the list cannot drift from it. Tests remove them from the environment Compose runs in, so
    a value in the caller's environment never beats the test's own."""
    return frozenset(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", compose_file.read_text()))
