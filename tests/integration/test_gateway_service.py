"""The gateway example over real HTTP, with real hello and compute services as its peers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from service_template import RPCError
from service_template.testing import ServiceFactory
from tests.conftest import TOKEN, ServiceProcess
from tests.integration.services import metrics, request, sample

pytestmark = pytest.mark.integration

GATEWAY = "services.gateway:GatewayService"
COMPUTE = "services.compute:ComputeService"
HELLO = "services.hello:HelloService"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(url: str, method: str, params: list[object], token: str | None = None) -> bytes:
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}).encode()
    headers = {"Content-Type": "application/json", **({"X-Api-Token": token} if token else {})}
    request = urllib.request.Request(url, body, headers)
    with urllib.request.urlopen(request, timeout=15) as response:
        return bytes(response.read())


def test_a_dead_backend_is_named_without_its_address_or_credentials(
    start_service: Callable[..., ServiceProcess],
) -> None:
    compute = start_service(COMPUTE)
    dead = closed_port()
    peers = (
        f"hello=http://svc-user:pa55word@127.0.0.1:{dead}/api,"
        f"compute=http://127.0.0.1:{compute.port}/api"
    )
    gateway = start_service(GATEWAY, env={"SERVICE_PEERS": peers})
    assert json.loads(call(gateway.url, "add", [2, 3]))["result"] == 5  # the live one works
    for method, params, token in (
        ("greet", ["you"], None),
        ("greet_and_add", ["you", 1, 2], None),
        ("private_greet", ["you"], TOKEN),
    ):
        raw = call(gateway.url, method, params, token)
        assert json.loads(raw)["error"] == {
            "code": -32010,
            "message": "hello is unavailable",
            "data": {"peer": "hello"},
        }
        for leak in (str(dead), "127.0.0.1", "pa55word", "svc-user", "http"):
            assert leak.encode() not in raw, (leak, raw)
    # The operator still learns why and where, from the gateway's log, without the password.
    entry = gateway.wait_for_log(lambda e: e.get("msg", "").startswith("hello is unavailable"))
    assert entry["url"] == f"http://127.0.0.1:{dead}/api"
    assert "connection refused" in str(entry["msg"])
    assert not any("pa55word" in line for line in gateway.lines)


def test_the_gateway_sends_each_backend_its_own_token_and_never_its_own(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    hello = start_service(HELLO, env={"SERVICE_API_TOKEN": "hello-only-token"})
    compute = start_service(COMPUTE, env={"SERVICE_API_TOKEN": "compute-only-token"})
    hello_file = tmp_path / "hello_token"
    hello_file.write_text("hello-only-token\n", encoding="utf-8")
    peers = f"hello=http://127.0.0.1:{hello.port}/api,compute=http://127.0.0.1:{compute.port}/api"
    gateway = start_service(
        GATEWAY,
        env={
            "SERVICE_API_TOKEN": "gateway-only-token",
            "SERVICE_PEERS": peers,
            "SERVICE_PEER_TOKEN_FILES": f"hello={hello_file}",
        },
    )
    # The caller shows the gateway's token; the gateway shows hello its own token.
    reply = json.loads(call(gateway.url, "private_greet", ["you"], "gateway-only-token"))
    assert reply["result"] == "this is secret: hello you"
    assert (
        json.loads(call(gateway.url, "private_greet", ["you"], "hello-only-token"))["error"]["code"]
        == -32001
    )  # each service accepts only its own token
    # Tokens are per service: the gateway's does not open hello.
    assert (
        json.loads(call(hello.url, "say_private_hello", ["x"], "gateway-only-token"))["error"][
            "code"
        ]
        == -32001
    )
    for service in (hello, compute, gateway):
        assert not any("only-token" in line for line in service.lines)


def test_the_gateway_calls_its_peers_by_name() -> None:
    with ServiceFactory() as services:
        hello = services.in_process("services.hello:HelloService")
        compute = services.in_process("services.compute:ComputeService")
        peers = f"hello={hello.url},compute={compute.url}"
        gateway = services.process("services.gateway:GatewayService", env={"SERVICE_PEERS": peers})
        client = services.client(gateway.url)
        assert client.methods.greet_and_add("you", 2, 3) == {"greeting": "hello you", "sum": 5}
        assert client.methods.private_greet("x") == "this is secret: hello x"
        assert client.health("readyz").ok


def test_the_gateway_stays_ready_with_a_backend_down_and_only_the_calls_needing_it_fail() -> None:
    # Real processes: compute is stopped for real (SIGTERM, exit 0), not a port never opened.
    with ServiceFactory() as services:
        hello = services.process(HELLO)
        compute = services.process(COMPUTE)
        peers = f"hello={hello.url},compute={compute.url}"
        gateway = services.process(GATEWAY, env={"SERVICE_PEERS": peers})
        client = services.client(gateway.url)
        assert client.methods.add(1, 2) == 3
        compute.stop_cleanly()

        ready = client.health("readyz")
        assert ready.ok, ready  # one backend down does not take the gateway out of service
        started = time.monotonic()
        with pytest.raises(RPCError) as caught:
            client.methods.add(1, 2)
        took = time.monotonic() - started
        assert (caught.value.code, caught.value.message) == (-32010, "compute is unavailable")
        assert caught.value.data == {"peer": "compute"}
        assert took < 2.0, f"a call needing the dead backend took {took:.2f} s"
        assert client.methods.greet("you") == "hello you"  # the other backend still serves
        assert client.health("readyz").ok


def test_a_required_peer_makes_the_gateway_unready_while_it_is_down_and_no_other() -> None:
    with ServiceFactory() as services:
        hello = services.process(HELLO)
        compute = services.process(COMPUTE)
        peers = f"hello={hello.url},compute={compute.url}"
        gateway = services.process(
            GATEWAY, env={"SERVICE_PEERS": peers, "SERVICE_REQUIRED_PEERS": "hello"}
        )
        client = services.client(gateway.url)
        assert client.health("readyz").ok
        compute.stop_cleanly()
        assert client.health("readyz").ok  # compute is not required
        hello.stop_cleanly()
        ready = client.health("readyz")
        assert not ready.ok
        assert ready.status_code == 503
        # It names what is missing.
        assert set(ready.checks) == {"peer:hello:responseTime", "drain:status"}, ready.checks
        assert ready.checks["peer:hello:responseTime"][0]["status"] == "fail"


def test_a_required_peer_that_is_not_a_peer_stops_the_gateway_at_start() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service_template", "serve", GATEWAY, "--port", "0"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")},
            "SERVICE_PEERS": "hello=http://127.0.0.1:9/api",
            "SERVICE_REQUIRED_PEERS": "compute",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done
    assert "required_peers: compute not in peers (known: hello)" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unreachable_peer_leaves_the_gateway_ready_and_its_calls_fail_clearly() -> None:
    with ServiceFactory() as services:
        peers = "hello=http://127.0.0.1:9/api,compute=http://127.0.0.1:9/api"
        gateway = services.in_process("services.gateway:GatewayService", peers=peers)
        client = services.client(gateway.url)
        assert client.health("readyz").ok
        with pytest.raises(RPCError) as caught:
            client.methods.greet("you")
        assert caught.value.code == -32010
        assert caught.value.message == "hello is unavailable"


# -- its calls to its backends on /metrics ---------------------------------------------------------


def test_the_gateway_metrics_show_retries_failures_and_the_open_breaker() -> None:
    with ServiceFactory() as services:
        hello = services.process(HELLO)
        compute = services.process(COMPUTE)
        peers = f"hello={hello.url},compute={compute.url}"
        gateway = services.process(GATEWAY, env={"SERVICE_PEERS": peers})
        client = services.client(gateway.url)
        assert client.methods.greet_and_add("you", 1, 2) == {"greeting": "hello you", "sum": 3}
        # Scraped over HTTP, as Prometheus does.
        before = metrics(gateway.port)
        add = {"peer": "compute", "method": "add"}
        assert sample(before, "rpc_client_calls_total", **add, outcome="ok") == 1
        assert (
            sample(before, "rpc_client_calls_total", peer="hello", method="say_hello", outcome="ok")
            == 1
        )
        assert sample(before, "rpc_client_call_duration_seconds_count", **add) == 1
        assert sample(before, "rpc_client_breaker_state", peer="compute", state="closed") == 1

        compute.stop_cleanly()
        # add is idempotent: each call is tried up to 3 times (a connection refused each time)
        # until the breaker opens after 5 failures in a row; then calls fail fast.
        for _ in range(3):
            with pytest.raises(RPCError, match="compute is unavailable"):
                client.methods.add(1, 2)
        after = metrics(gateway.port)
        page = request(gateway.port, "GET", "/metrics").body.decode()

    assert sample(after, "rpc_client_calls_total", **add, outcome="connect_error") == 5
    # Call 1: three attempts refused; call 2: two more open the breaker, its third fails fast;
    # call 3 fails fast.
    assert sample(after, "rpc_client_calls_total", **add, outcome="breaker_open") == 2
    assert sample(after, "rpc_client_retries_total", **add) == 4
    assert sample(after, "rpc_client_retries_refused_total", peer="compute", reason="attempts") == 1
    assert sample(after, "rpc_client_breaker_state", peer="compute", state="open") == 1
    assert sample(after, "rpc_client_breaker_state", peer="compute", state="closed") == 0
    # The other peer's breaker is untouched, and no label shows an address.
    assert sample(after, "rpc_client_breaker_state", peer="hello", state="closed") == 1
    assert "127.0.0.1" not in page
