"""The benchmarked servers and workloads: how to start each server and what it must answer."""

from __future__ import annotations

import json
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
# Default production settings, except that a token is configured so auth is active (issue 3).
OURS_ENV: Mapping[str, str] = {"SERVICE_API_TOKEN": "bench-dummy-token"}
# Sent with every request to ours (by wrk and by the checks). Empty while add() is public; put the
# token header here if the benchmarked method ever needs it.
OURS_HEADERS: Mapping[str, str] = {}

# Reference peers for the ratios.
AIOHTTP_RPC = "aiohttp-rpc"
BASELINE = "tornado-baseline"
OURS = "ours"


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
    env: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    # Members a peer adds to every response object beyond the spec's (known deviations).
    extra_members: Mapping[str, Any] = field(default_factory=dict)
    notification_reply: Expected = Expected(204, None)
    deviations: tuple[str, ...] = ()

    @property
    def python(self) -> Path:
        """The interpreter of this peer's own virtual environment."""
        return VENVS_DIR / self.name / "bin" / "python"

    def command(self, port: int) -> list[str]:
        """Return the full command line that serves this peer on 127.0.0.1:port."""
        return [str(self.python), *(arg.replace("{port}", str(port)) for arg in self.argv)]

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


PEERS: tuple[Peer, ...] = (
    Peer(OURS, OURS_COMMAND, env=OURS_ENV, headers=OURS_HEADERS),
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
)
