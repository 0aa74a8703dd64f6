"""The benchmarked servers and workloads: how to start each server and what it must answer.

A new workload is one more ``Workload`` in ``WORKLOADS`` (and its Lua script); a new server is
one more ``Peer`` in ``PEERS`` (and its venv in setup.sh).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENVS_DIR = BENCH_DIR / ".venvs"
SERVERS_DIR = BENCH_DIR / "servers"
WRK_DIR = BENCH_DIR / "wrk"

# Our runtime's start command, after the venv's python; "{port}" is replaced by a free port.
# Adjust here if the CLI changes; nothing else in the harness knows how `ours` starts.
OURS_COMMAND: tuple[str, ...] = (
    "-m",
    "service_template",
    "serve",
    "bench/servers/ours_server.py:ComputeService",
    "--host",
    "127.0.0.1",
    "--port",
    "{port}",
)
# Default production settings, except that a token is configured so auth is active (issue 3),
# and room for every call wrk keeps in flight: 64 connections x a batch of 10 is 640 calls, over
# the default limit of 256. A plain method's calls are all in flight at once while they wait for
# the pool (the loop reads every ready request before the threads run), so with the default
# limit the batch workload would measure -32003 refusals, not throughput (issue 14).
OURS_ENV: Mapping[str, str] = {
    "SERVICE_API_TOKEN": "bench-dummy-token",
    "SERVICE_MAX_CONCURRENCY": "1024",
}
# Sent with every request to ours (by wrk and by the checks). Empty while add() is public; put the
# token header here if the benchmarked method ever needs it.
OURS_HEADERS: Mapping[str, str] = {}

# The same add(a, b) written as a plain ``def`` (gemstone's example style): runs in the pool.
OURS_PLAIN_COMMAND: tuple[str, ...] = tuple(
    arg.replace(":ComputeService", ":PlainComputeService") for arg in OURS_COMMAND
)

# Reference peers for the ratios.
AIOHTTP_RPC = "aiohttp-rpc"
BASELINE = "tornado-baseline"
OURS = "ours"
OURS_PLAIN = "ours-plain"
NGINX = "nginx"
# TODO(contracts): a typed peer ("ours-typed": add(a: int, b: int) with validated params) goes
# here once the contracts branch's validation has landed; see bench/README.md.


@dataclass(frozen=True)
class Workload:
    """One request shape sent by wrk: its Lua script, its exact body, calls per request."""

    name: str
    script: Path
    body: bytes
    calls: int


def _call(call_id: int | None) -> str:
    """Return one add(1, 2) request object as compact JSON (no id: a notification)."""
    id_part = "" if call_id is None else f',"id":{call_id}'
    return '{"jsonrpc":"2.0","method":"add","params":[1,2]' + id_part + "}"


BATCH_SIZE = 10
WORKLOADS: tuple[Workload, ...] = (
    Workload("single", WRK_DIR / "single.lua", _call(1).encode(), 1),
    Workload(
        "batch",
        WRK_DIR / "batch.lua",
        ("[" + ",".join(_call(i) for i in range(1, BATCH_SIZE + 1)) + "]").encode(),
        BATCH_SIZE,
    ),
    Workload("notification", WRK_DIR / "notification.lua", _call(None).encode(), 1),
)


@dataclass(frozen=True)
class Expected:
    """An exact HTTP reply: status and decoded JSON body (None: the body must be empty)."""

    status: int
    body: Any


@dataclass(frozen=True)
class Peer:
    """A benchmarked server: its venv, start command and the replies it gives."""

    name: str
    argv: tuple[str, ...]
    # The venv under bench/.venvs/ whose python runs argv; "" means the peer's own name, None
    # the interpreter running the harness (a launcher that execs a native server).
    venv: str | None = ""
    # How argv asks for N server processes (``--workers N``); empty: single-process only.
    workers_args: tuple[str, ...] = ()
    # False for the HTTP ceiling: a fixed body for every workload, so no reply is checked.
    checked: bool = True
    env: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    # Members a peer adds to every response object beyond the spec's (known deviations).
    extra_members: Mapping[str, Any] = field(default_factory=dict)
    notification_reply: Expected = Expected(204, None)
    deviations: tuple[str, ...] = ()

    @property
    def python(self) -> Path:
        """The interpreter that starts this peer (its venv's, or the harness's own)."""
        if self.venv is None:
            return Path(sys.executable)
        return VENVS_DIR / (self.venv or self.name) / "bin" / "python"

    def command(self, port: int, workers: int = 1) -> list[str]:
        """Return the full command line that serves this peer on 127.0.0.1:port."""
        extra = [arg.replace("{workers}", str(workers)) for arg in self.workers_args]
        argv = [arg.replace("{port}", str(port)) for arg in self.argv]
        return [str(self.python), *argv, *(extra if workers > 1 else [])]

    def expected(self, workload: Workload) -> Expected:
        """Return the exact reply this peer must give to one request of the workload."""
        if workload.name == "notification":
            return self.notification_reply
        payload = json.loads(workload.body)
        if isinstance(payload, list):
            return Expected(200, [self._result(item["id"]) for item in payload])
        return Expected(200, self._result(payload["id"]))

    def _result(self, call_id: int) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "result": 3, "id": call_id, **self.extra_members}


def _server(script: str) -> tuple[str, ...]:
    return (str(SERVERS_DIR / script), "{port}")


_WORKERS = ("--workers", "{workers}")
PEERS: tuple[Peer, ...] = (
    Peer(OURS, OURS_COMMAND, env=OURS_ENV, headers=OURS_HEADERS, workers_args=_WORKERS),
    Peer(
        OURS_PLAIN,
        OURS_PLAIN_COMMAND,
        venv=OURS,
        env=OURS_ENV,
        headers=OURS_HEADERS,
        workers_args=_WORKERS,
    ),
    Peer(AIOHTTP_RPC, _server("aiohttp_rpc_server.py")),
    Peer(BASELINE, _server("tornado_baseline.py")),
    Peer(
        "gemstone",
        _server("gemstone_server.py"),
        extra_members={"error": None},
        notification_reply=Expected(200, {"jsonrpc": "2.0", "result": None, "error": None}),
        deviations=(
            'every response object carries "error": null beside "result" (JSON-RPC 2.0 §5 '
            "forbids both)",
            "a notification gets a 200 reply with a body instead of no response (§4.1)",
            "logs one access line per request to stderr (Tornado pretty logging, its default)",
        ),
    ),
    Peer(
        NGINX,
        _server("nginx_ceiling.py"),
        venv=None,
        workers_args=("{workers}",),
        checked=False,
        deviations=(
            "the HTTP ceiling, not a JSON-RPC server: the same fixed body for every request "
            "(no reply is checked; calls/s counts a request as its workload's calls)",
        ),
    ),
)
