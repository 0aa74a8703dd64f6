"""Typed params through a real server on loopback: conversion, -32602 with the parameter and
path, results from declared types, the document callers see (private methods for token holders
only, unless published; servers; exact paramStructure; declared errors)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import REPO, TOKEN, ServiceProcess
from tests.integration.services import request, rpc

pytestmark = pytest.mark.integration

SHOP = "tests.integration.contract_services:TypedShop"
ORDER = {
    "lines": [{"sku": "a", "qty": 2}, {"sku": "b", "qty": 1, "size": "large"}],
    "deliver_on": "2024-03-01",
}


def error_of(service: ServiceProcess, method: str, params: Any) -> dict[str, Any]:
    reply = rpc(service.port, method, params)
    assert reply.status == 200
    doc = reply.json()
    assert "result" not in doc
    error: dict[str, Any] = doc["error"]
    return error


def test_a_wrong_type_is_invalid_params_naming_it_and_no_fault_is_logged(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(SHOP)
    for params, got in ((["ten"], "str"), ([1.5], "float"), ({"amount": True}, "bool")):
        assert error_of(service, "charge", params) == {
            "code": -32602,
            "message": "Invalid params",
            "data": {
                "param": "amount",
                "path": "$",
                "reason": f"Expected `int`, got `{got}`",
                "expected": "int",
            },
        }
    assert rpc(service.port, "charge", [250]).json()["result"] == "250 EUR"
    service.stop_cleanly()
    logs = service.logs()
    calls = [line for line in logs if line.get("method") == "charge"]
    assert [line["outcome"] for line in calls] == [-32602, -32602, -32602, "ok"]
    assert not [line for line in logs if line.get("level") in ("error", "critical")]
    assert not [line for line in logs if "exc" in line or "Traceback" in str(line)]


def test_a_nested_bad_value_is_located_and_a_good_order_arrives_typed(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(SHOP)
    bad = {**ORDER, "lines": [*ORDER["lines"], {"sku": "c", "qty": "many"}]}
    error = error_of(service, "place", {"order": bad})
    assert error["code"] == -32602
    assert error["data"]["param"] == "order"
    assert error["data"]["path"] == "$.lines[2].qty"
    receipt = rpc(service.port, "place", {"order": ORDER, "gift": True}).json()["result"]
    assert receipt == {
        "order_id": "00000000-0000-0000-0000-000000000002",
        "total": "29.97",
        "placed_at": "2024-01-02T03:04:05+00:00",
        "lines": 2,
    }
    size_error = error_of(
        service, "place", [{**ORDER, "lines": [{"sku": "a", "qty": 1, "size": "huge"}]}]
    )
    assert size_error["data"]["path"] == "$.lines[0].size"


def test_a_declared_application_error_reaches_the_caller(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(SHOP)
    order = {**ORDER, "lines": [{"sku": "a", "qty": 101}]}
    assert error_of(service, "place", [order]) == {"code": 4001, "message": "Out of stock"}


def test_a_union_of_two_dataclasses_arrives_as_either(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(SHOP)
    assert rpc(service.port, "refund", [{"number": "4111"}]).json()["result"] == "card 4111"
    assert rpc(service.port, "refund", {"to": {"iban": "DE00"}}).json()["result"] == (
        "transfer DE00"
    )
    error = error_of(service, "refund", [{"iban": 7}])
    assert (error["code"], error["data"]["param"]) == (-32602, "to")
    document = rpc(service.port, "rpc.discover").json()["result"]
    assert methods_of(document)["refund"]["params"][0]["schema"] == {
        "anyOf": [{"$ref": "#/components/schemas/Card"}, {"$ref": "#/components/schemas/Transfer"}]
    }
    assert set(document["components"]["schemas"]) >= {"Card", "Transfer", "Order", "Line"}


def test_positional_only_and_star_args_are_converted(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(SHOP)
    assert rpc(service.port, "tally", [1, 2, 3]).json()["result"] == 6
    error = error_of(service, "tally", [1, 2, "3"])
    assert (error["data"]["param"], error["data"]["path"]) == ("more", "$[1]")


def methods_of(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {method["name"]: method for method in document["methods"]}


def test_anonymous_callers_do_not_see_private_methods_token_holders_do(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(SHOP)
    anonymous = rpc(service.port, "rpc.discover").json()["result"]
    assert "restock" not in methods_of(anonymous)
    assert "place" in methods_of(anonymous)
    holder = rpc(service.port, "rpc.discover", headers={"X-Api-Token": TOKEN}).json()["result"]
    assert methods_of(holder)["restock"]["x-requires-token"] is True
    wrong = rpc(service.port, "rpc.discover", headers={"X-Api-Token": "nope"}).json()["result"]
    assert "restock" not in methods_of(wrong)
    # /openrpc.json answers alike.
    assert "restock" not in methods_of(request(service.port, "GET", "/openrpc.json").json())
    with_token = request(service.port, "GET", "/openrpc.json", headers={"X-Api-Token": TOKEN})
    assert "restock" in methods_of(with_token.json())


def test_a_setting_publishes_private_methods_to_everyone(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(SHOP, env={"SERVICE_PUBLISH_PRIVATE_METHODS": "1"})
    anonymous = rpc(service.port, "rpc.discover").json()["result"]
    assert "restock" in methods_of(anonymous)
    # Published is not callable: the method itself still wants a token.
    assert rpc(service.port, "restock", ["a", 1]).json()["error"]["code"] == -32001


def test_the_document_describes_the_contract_the_server_keeps(
    start_service: Callable[..., ServiceProcess],
) -> None:
    service = start_service(SHOP)
    document = rpc(service.port, "rpc.discover").json()["result"]
    assert document["servers"] == [
        {"name": "typed-shop", "url": f"http://127.0.0.1:{service.port}/api"}
    ]
    methods = methods_of(document)
    charge = methods["charge"]
    assert charge["paramStructure"] == "either"
    assert charge["params"] == [
        {"name": "amount", "required": True, "schema": {"type": "integer"}},
        {"name": "currency", "required": False, "schema": {"type": "string", "default": "EUR"}},
    ]
    place = methods["place"]
    assert place["paramStructure"] == "by-name"  # gift is keyword-only
    assert place["params"][0]["schema"] == {"$ref": "#/components/schemas/Order"}
    assert place["errors"] == [{"code": 4001, "message": "Out of stock"}]
    assert place["result"]["schema"] == {"$ref": "#/components/schemas/Receipt"}
    tally = methods["tally"]
    assert tally["paramStructure"] == "by-position"
    assert tally["x-var-positional"] == {
        "name": "more",
        "required": False,
        "schema": {"type": "integer"},
    }
    schemas = document["components"]["schemas"]
    assert schemas["Line"]["properties"]["size"] == {
        "$ref": "#/components/schemas/Size",
        "default": "small",
    }
    assert schemas["Size"]["enum"] == ["large", "small"]
    assert schemas["Order"]["properties"]["deliver_on"] == {"type": "string", "format": "date"}
    assert schemas["Receipt"]["properties"]["total"] == {
        "anyOf": [{"type": "string", "format": "decimal"}, {"type": "number"}]
    }


def test_an_unresolvable_annotation_stops_serve_naming_the_method_and_the_parameter() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "service_template",
            "serve",
            "tests.integration.contract_services:UnresolvableShop",
            "--port",
            "0",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "UnresolvableShop.quote" in done.stderr
    assert "parameter 'context'" in done.stderr
    assert "cannot be resolved" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "listening" not in done.stdout  # the port never opened
