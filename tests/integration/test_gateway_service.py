"""The gateway example over real HTTP, with real hello and compute services as its peers."""

import pytest

from service_template import RPCError
from service_template.testing import ServiceFactory

pytestmark = pytest.mark.integration


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


def test_an_unreachable_peer_makes_the_gateway_unready_and_its_calls_fail_clearly() -> None:
    with ServiceFactory() as services:
        peers = "hello=http://127.0.0.1:9/api,compute=http://127.0.0.1:9/api"
        gateway = services.in_process("services.gateway:GatewayService", peers=peers)
        client = services.client(gateway.url)
        assert not client.health("readyz").ok
        with pytest.raises(RPCError) as caught:
            client.methods.greet("you")
        assert caught.value.code == -32010
        assert caught.value.message == "hello is unavailable"
