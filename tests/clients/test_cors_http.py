"""CORS on a real server, at the HTTP level: what a browser reads in ``/api``'s answers.

A browser lets a page of another origin read a response only when it names that origin in
``Access-Control-Allow-Origin``; for a call with ``Content-Type: application/json`` or a token
header it first sends a preflight (``OPTIONS``). tests/clients/test_browser.py runs the same
server under a real browser.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.clients.conftest import TOKEN, served
from tests.conftest import ServiceProcess

APP = "http://app.example.test:8080"
OTHER = "http://evil.example.test"
CALL = {"jsonrpc": "2.0", "method": "add", "params": {"a": 1, "b": 2}, "id": 1}


@pytest.fixture(scope="module")
def cors_service() -> Iterator[ServiceProcess]:
    yield from served({"SERVICE_CORS_ORIGINS": APP, "SERVICE_CORS_MAX_AGE": "120"})


@pytest.fixture(scope="module")
def credentials_service() -> Iterator[ServiceProcess]:
    yield from served({"SERVICE_CORS_ORIGINS": APP, "SERVICE_CORS_ALLOW_CREDENTIALS": "true"})


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items() if k.lower().startswith("access-")}


def preflight(service: ServiceProcess, origin: str, method: str = "POST") -> httpx.Response:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type,x-api-token",
    }
    return httpx.options(service.url, headers=headers, timeout=10)


def test_without_cors_origins_no_response_carries_a_cors_header(service):
    reply = httpx.post(service.url, json=CALL, headers={"Origin": APP}, timeout=10)
    assert reply.json()["result"] == 3
    assert cors_headers(reply) == {}
    assert "vary" not in reply.headers
    refused = preflight(service, APP)
    assert refused.status_code == 405
    assert cors_headers(refused) == {}


def test_a_preflight_from_a_listed_origin_is_answered(cors_service):
    reply = preflight(cors_service, APP)
    assert reply.status_code == 204
    assert reply.content == b""
    assert cors_headers(reply) == {
        "access-control-allow-origin": APP,
        "access-control-allow-methods": "POST",
        "access-control-allow-headers": "content-type, x-request-id, x-api-token, authorization",
        "access-control-max-age": "120",
    }
    assert reply.headers["vary"] == "Origin"


@pytest.mark.parametrize(
    ("origin", "method"), [(OTHER, "POST"), (APP, "PUT"), ("null", "POST")], ids=str
)
def test_a_preflight_not_to_allow_is_refused(cors_service, origin, method):
    reply = preflight(cors_service, origin, method)
    assert reply.status_code == 405  # a browser needs a 2xx to go on
    assert reply.headers["allow"] == "POST"
    assert "access-control-allow-methods" not in reply.headers
    assert reply.json()["error"]["code"] == -32600
    if origin != APP:
        assert cors_headers(reply) == {}


def test_a_call_from_a_listed_origin_may_be_read_by_its_page(cors_service):
    headers = {"Origin": APP, "X-Api-Token": TOKEN}
    reply = httpx.post(cors_service.url, json=CALL, headers=headers, timeout=10)
    assert reply.json() == {"jsonrpc": "2.0", "result": 3, "id": 1}
    assert cors_headers(reply) == {
        "access-control-allow-origin": APP,
        "access-control-expose-headers": "X-Request-Id",
    }
    assert reply.headers["vary"] == "Origin"


def test_a_call_from_another_origin_is_answered_without_cors_headers(cors_service):
    # The server still answers (CORS is enforced by the browser, not a server-side ACL).
    reply = httpx.post(cors_service.url, json=CALL, headers={"Origin": OTHER}, timeout=10)
    assert reply.json()["result"] == 3
    assert cors_headers(reply) == {}
    assert reply.headers["vary"] == "Origin"


def test_two_origin_headers_allow_nothing(cors_service):
    headers = [("Origin", APP), ("Origin", APP), ("Content-Type", "application/json")]
    reply = httpx.post(
        cors_service.url,
        content=b'{"jsonrpc":"2.0","method":"add","params":[1,1],"id":1}',
        headers=headers,
        timeout=10,
    )
    assert reply.json()["result"] == 2
    assert cors_headers(reply) == {}


def test_notifications_and_refusals_carry_the_headers_too(cors_service):
    note = {"jsonrpc": "2.0", "method": "add", "params": [1, 2]}
    reply = httpx.post(cors_service.url, json=note, headers={"Origin": APP}, timeout=10)
    assert reply.status_code == 204
    assert reply.headers["access-control-allow-origin"] == APP
    # A page can read why it was refused.
    headers = {"Origin": APP, "Content-Type": "text/plain"}
    refused = httpx.post(cors_service.url, content=b"{}", headers=headers, timeout=10)
    assert refused.status_code == 415
    assert refused.headers["access-control-allow-origin"] == APP
    assert refused.json()["error"]["code"] == -32600


def test_credentials_are_allowed_only_when_configured(cors_service, credentials_service):
    assert "access-control-allow-credentials" not in cors_headers(preflight(cors_service, APP))
    reply = preflight(credentials_service, APP)
    assert reply.headers["access-control-allow-credentials"] == "true"
    call = httpx.post(credentials_service.url, json=CALL, headers={"Origin": APP}, timeout=10)
    assert call.headers["access-control-allow-credentials"] == "true"
    assert call.headers["access-control-allow-origin"] == APP
