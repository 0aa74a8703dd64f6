"""The gateway example's shape: what it exposes and what needs the token."""

from service_template.config import Settings
from services.gateway import GatewayService


def test_the_gateway_exposes_its_calls_and_one_private_method() -> None:
    service = GatewayService(Settings.load({}, defaults=GatewayService.class_defaults()))
    registry = service.build_registry()
    assert sorted(registry) == ["add", "greet", "greet_and_add", "private_greet"]
    assert [name for name, m in registry.items() if m.requires_auth] == ["private_greet"]
