"""The gemstone example and the example services answer over real HTTP."""

import json
import urllib.request

import pytest

from tests.conftest import TOKEN

pytestmark = pytest.mark.integration


def post(url: str, body: object, headers: dict[str, str] | None = None) -> tuple[int, object]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(
        url, data, {"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        return response.status, json.loads(raw) if raw else None


def test_compute_service_adds_over_http(start_service):
    service = start_service("service_template.examples.compute:ComputeService")
    status, reply = post(
        service.url, {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": 7}
    )
    assert status == 200
    assert reply == {"jsonrpc": "2.0", "result": 3, "id": 7}


def test_private_method_needs_the_configured_token(start_service):
    service = start_service("service_template.examples.hello:HelloService")
    call = {"jsonrpc": "2.0", "method": "say_private_hello", "params": ["x"], "id": 1}
    assert post(service.url, call)[1]["error"] == {"code": -32001, "message": "Access denied"}
    assert post(service.url, call, {"X-Api-Token": "wrong"})[1]["error"]["code"] == -32001
    assert post(service.url, call, {"X-Api-Token": TOKEN})[1]["result"] == "this is secret: hello x"
