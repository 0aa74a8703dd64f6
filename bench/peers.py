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


def _ours_class(name: str) -> tuple[str, ...]:
    """OURS_COMMAND serving another class of bench/servers/ours_server.py."""
    return tuple(arg.replace(":ComputeService", f":{name}") for arg in OURS_COMMAND)


# The same add(a, b) written as a plain ``def`` (gemstone's example style): runs in the pool.
OURS_PLAIN_COMMAND = _ours_class("PlainComputeService")
# Plain ``def`` add without annotations, and with ``a: int, b: int`` validated by the runtime.
OURS_UNTYPED_COMMAND = _ours_class("UntypedComputeService")
OURS_TYPED_COMMAND = _ours_class("TypedComputeService")
# The two-hop gateway: add() calls its backend's add() through the async client, the backend
# found by name (SERVICE_PEERS) as a real gateway finds it; "{backend}" is the backend's URL.
OURS_GATEWAY_COMMAND = tuple(
    arg.replace("ours_server.py:ComputeService", "twohop_gateway.py:GatewayService")
    for arg in OURS_COMMAND
)
OURS_GATEWAY_ENV: Mapping[str, str] = {**OURS_ENV, "SERVICE_PEERS": "backend={backend}"}

# Reference peers for the ratios.
AIOHTTP_RPC = "aiohttp-rpc"
BASELINE = "tornado-baseline"
OURS = "ours"
OURS_PLAIN = "ours-plain"
OURS_UNTYPED = "ours-untyped"
OURS_TYPED = "ours-typed"
NGINX = "nginx"
FLOOR = "asyncio-floor"


@dataclass(frozen=True)
class Workload:
    """One request shape sent by wrk: its Lua script, its exact body, calls per request.

    ``hops`` 2: the server under load is a gateway that answers each call by calling a backend
    (the peer's own server, started first); only peers with a ``gateway_argv`` run it."""

    name: str
    script: Path
    body: bytes
    calls: int
    hops: int = 1


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
    # Service to service: the single call sent to a gateway, which calls its backend's add.
    Workload("twohop", WRK_DIR / "twohop.lua", _call(1).encode(), 1, hops=2),
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
    # The peer whose calls/s the "x ref" column divides by (the same method written otherwise).
    reference: str | None = None
    # The two-hop gateway (``{port}``, ``{backend}`` its backend's URL), in front of this peer's
    # own server as the backend; empty: no two-hop stack. ``gateway_env`` replaces ``env``.
    gateway_argv: tuple[str, ...] = ()
    gateway_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def python(self) -> Path:
        """The interpreter that starts this peer (its venv's, or the harness's own)."""
        if self.venv is None:
            return Path(sys.executable)
        return VENVS_DIR / (self.venv or self.name) / "bin" / "python"

    def command(self, port: int, workers: int = 1) -> list[str]:
        """Return the full command line that serves this peer on 127.0.0.1:port."""
        return self._command(self.argv, port, workers, "")

    def gateway_command(self, port: int, backend_url: str, workers: int = 1) -> list[str]:
        """Return the command line of this peer's two-hop gateway, calling ``backend_url``."""
        return self._command(self.gateway_argv, port, workers, backend_url)

    def gateway_environment(self, backend_url: str) -> dict[str, str]:
        """The gateway's own settings, its backend's URL filled in."""
        return {k: v.replace("{backend}", backend_url) for k, v in self.gateway_env.items()}

    def _command(self, argv: tuple[str, ...], port: int, workers: int, backend: str) -> list[str]:
        extra = [arg.replace("{workers}", str(workers)) for arg in self.workers_args]
        filled = [arg.replace("{port}", str(port)).replace("{backend}", backend) for arg in argv]
        return [str(self.python), *filled, *(extra if workers > 1 else [])]

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
    Peer(
        OURS,
        OURS_COMMAND,
        env=OURS_ENV,
        headers=OURS_HEADERS,
        workers_args=_WORKERS,
        gateway_argv=OURS_GATEWAY_COMMAND,
        gateway_env=OURS_GATEWAY_ENV,
    ),
    Peer(
        OURS_PLAIN,
        OURS_PLAIN_COMMAND,
        venv=OURS,
        env=OURS_ENV,
        headers=OURS_HEADERS,
        workers_args=_WORKERS,
        reference=OURS,
    ),
    Peer(
        OURS_UNTYPED,
        OURS_UNTYPED_COMMAND,
        venv=OURS,
        env=OURS_ENV,
        headers=OURS_HEADERS,
        workers_args=_WORKERS,
        reference=OURS_PLAIN,
    ),
    Peer(
        OURS_TYPED,
        OURS_TYPED_COMMAND,
        venv=OURS,
        env=OURS_ENV,
        headers=OURS_HEADERS,
        workers_args=_WORKERS,
        reference=OURS_UNTYPED,
    ),
    Peer(
        AIOHTTP_RPC,
        _server("aiohttp_rpc_server.py"),
        gateway_argv=(str(SERVERS_DIR / "twohop_aiohttp_rpc.py"), "{port}", "{backend}"),
    ),
    Peer(BASELINE, _server("tornado_baseline.py")),
    Peer(
        FLOOR,
        _server("asyncio_floor.py"),
        # Our venv: the same interpreter, event loop and httptools as ours, nothing more.
        venv=OURS,
        deviations=(
            "the floor, not a usable server: no validation, limits, timeouts, auth, metrics or "
            "logs; what asyncio and httptools alone cost on the same core",
        ),
    ),
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
