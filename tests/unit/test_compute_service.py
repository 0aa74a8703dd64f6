"""The compute example's methods, called directly: arithmetic and its refusals."""

import asyncio

import pytest

from service_template import InvalidParams
from service_template.config import Settings
from services.compute import ComputeService


def make_service() -> ComputeService:
    return ComputeService(Settings.load({}, defaults=ComputeService.class_defaults()))


def test_adds_multiplies_and_sums() -> None:
    service = make_service()
    assert asyncio.run(service.add(1, 2)) == 3
    assert asyncio.run(service.multiply(2, 2.5)) == 5.0
    assert asyncio.run(service.total([1, 2, 3.5])) == 6.5
    assert service.fibonacci(10) == 55


@pytest.mark.parametrize("value", [True, "1", None, [1]])
def test_a_value_that_is_not_a_json_number_is_invalid_params(value: object) -> None:
    with pytest.raises(InvalidParams):
        asyncio.run(make_service().add(value, 1))  # type: ignore[arg-type]


def test_fibonacci_refuses_what_would_take_too_long() -> None:
    with pytest.raises(InvalidParams):
        make_service().fibonacci(10_001)


def test_its_pure_methods_are_published_as_idempotent() -> None:
    # Safe to run twice, so callers may retry them (the gateway does: services/gateway.py).
    from service_template.openrpc import build_document

    methods = make_service().build_registry().values()
    document = build_document("ComputeService", "1.0.0", methods)
    marked = {m["name"] for m in document["methods"] if m.get("x-idempotent")}
    assert marked == {"add", "multiply", "stats.sum", "fibonacci"}
