"""The gateway example's shape: what it exposes and what needs the token."""

import pytest

from service_template.config import Settings
from service_template.settings import ConfigError
from services.gateway import GatewayService, GatewaySettings


def test_the_gateway_exposes_its_calls_and_one_private_method() -> None:
    service = GatewayService(Settings.load({}, defaults=GatewayService.class_defaults()))
    registry = service.build_registry()
    assert sorted(registry) == ["add", "greet", "greet_and_add", "private_greet"]
    assert [name for name, m in registry.items() if m.requires_auth] == ["private_greet"]


def test_required_peers_must_be_peers_and_are_none_by_default() -> None:
    peers = {"SERVICE_PEERS": "hello=http://hello:8000/api,compute=http://compute:8000/api"}
    assert GatewaySettings.load(peers).required_peers == frozenset()
    chosen = GatewaySettings.load({**peers, "SERVICE_REQUIRED_PEERS": "hello"})
    assert chosen.required_peers == frozenset({"hello"})
    with pytest.raises(ConfigError) as caught:
        GatewaySettings.load({**peers, "SERVICE_REQUIRED_PEERS": "hello,billing"})
    assert "required_peers: billing not in peers (known: compute, hello)" in str(caught.value)
