"""Correctness checks run before and after every load run: each reply must be exactly right."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from typing import Any

from peers import Peer, Workload

REQUEST_TIMEOUT_S = 5.0


class CheckFailed(Exception):
    """A server's reply differed from the exact expected reply, or it never answered."""


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
    """POST body to http://127.0.0.1:port/api; return status, content type and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    try:
        conn.request(
            "POST", "/api", body=body, headers={"Content-Type": "application/json", **headers}
        )
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read()
    finally:
        conn.close()


def _canonical(value: Any) -> str:
    """Serialise for an exact comparison: key order ignored, 3 and 3.0 kept apart."""
    if isinstance(value, list):
        # A batch reply may come in any order (JSON-RPC 2.0 section 6); compare by id.
        value = sorted(
            value, key=lambda item: json.dumps(item.get("id") if isinstance(item, dict) else item)
        )
    return json.dumps(value, sort_keys=True)


def check(port: int, peer: Peer, workload: Workload) -> None:
    """Send the workload's request once and raise CheckFailed unless the reply is exact."""
    expected = peer.expected(workload)
    status, content_type, raw = post(port, workload.body, dict(peer.headers))
    where = f"{peer.name}/{workload.name}"
    if not peer.checked:  # the HTTP ceiling: a fixed body for every request; it must answer
        if status != 200:
            raise CheckFailed(f"{where}: HTTP {status}, expected 200: {raw[:200]!r}")
        return
    if status != expected.status:
        raise CheckFailed(f"{where}: HTTP {status}, expected {expected.status}: {raw[:200]!r}")
    if expected.body is None:
        if raw:
            raise CheckFailed(f"{where}: expected an empty body, got {raw[:200]!r}")
        return
    if not content_type.startswith("application/json"):
        raise CheckFailed(f"{where}: Content-Type {content_type!r}, expected application/json")
    try:
        got = json.loads(raw)
    except ValueError as exc:
        raise CheckFailed(f"{where}: reply is not JSON: {raw[:200]!r}") from exc
    if _canonical(got) != _canonical(expected.body):
        raise CheckFailed(
            f"{where}: reply {_canonical(got)[:300]} != expected {_canonical(expected.body)[:300]}"
        )


def wait_until_answering(
    port: int, peer: Peer, workload: Workload, process: subprocess.Popen[bytes], timeout_s: float
) -> float:
    """Poll until the server answers the workload correctly; return the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout_s
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CheckFailed(
                f"{peer.name}: server exited with {process.returncode} "
                f"before answering ({last_error})"
            )
        try:
            check(port, peer, workload)
        except (ConnectionError, TimeoutError, http.client.HTTPException, OSError) as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.05)  # polling interval for a starting process, not a wait for state
            continue
        return time.monotonic() - started
    raise CheckFailed(f"{peer.name}: not answering after {timeout_s:.0f} s ({last_error})")
