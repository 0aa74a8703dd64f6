"""Finding peer services by name."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from service_template.client import AsyncRemoteClient, RemoteClient
from service_template.config import ConfigError, Settings
from service_template.discovery import (
    ServiceNotFound,
    get_async_service_by_name,
    get_service_by_name,
    parse_peers,
    resolve_url,
)

PEERS = {"hello": "http://hello:8000/api", "compute": "http://compute:8000/api"}


def answer_hello(request: httpx.Request) -> httpx.Response:
    call = json.loads(request.content)
    token = request.headers.get("x-api-token")
    return httpx.Response(
        200, json={"jsonrpc": "2.0", "id": call["id"], "result": [str(request.url), token]}
    )


def test_resolves_a_known_name_to_its_url():
    assert resolve_url("compute", PEERS) == "http://compute:8000/api"


def test_an_unknown_name_is_a_lookup_error_listing_the_known_names():
    with pytest.raises(ServiceNotFound) as caught:
        resolve_url("helo", PEERS)
    assert isinstance(caught.value, LookupError)
    assert str(caught.value) == "no service named 'helo'; known services: compute, hello"
    assert caught.value.known == ["compute", "hello"]


def test_an_unknown_name_without_peers_says_how_to_configure_them():
    with pytest.raises(ServiceNotFound, match=r"known services: none \(set SERVICE_PEERS\)"):
        resolve_url("hello", {})


def test_parses_the_peers_variable():
    text = " hello = http://hello:8000/api , compute=http://compute:8000/api,, "
    assert parse_peers(text) == PEERS
    assert parse_peers("") == {}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hello", "'hello' is not name=value"),
        ("=http://x/api", "bad name ''"),
        ("hello=", "hello: must not be empty"),
        ("hello=ftp://h/api", "hello: not an http(s) URL"),
        ("a=http://a,a=http://b", "'a' given twice"),
    ],
)
def test_refuses_a_malformed_peers_variable_as_the_settings_do(text: str, message: str):
    # One parser (service_template.peers) for discovery, the settings and the orchestrator.
    with pytest.raises(ValueError) as direct:
        parse_peers(text)
    assert str(direct.value) == message
    with pytest.raises(ValueError) as from_environment:
        get_service_by_name("hello", environ={"SERVICE_PEERS": text})
    assert str(from_environment.value) == f"SERVICE_PEERS: {message}"
    with pytest.raises(ConfigError) as settings:
        Settings.load({"SERVICE_PEERS": text})
    assert settings.value.problems == [f"SERVICE_PEERS={text!r}: {message}"]


def test_gets_a_client_for_a_named_peer_with_client_options():
    transport = httpx.MockTransport(answer_hello)
    with get_service_by_name("hello", PEERS, token="t", transport=transport) as client:
        assert isinstance(client, RemoteClient)
        assert client.methods.whoami() == ["http://hello:8000/api", "t"]


def test_peers_come_from_the_given_environment():
    environ = {"SERVICE_PEERS": "hello=http://h.test/api"}
    with get_service_by_name("hello", environ=environ) as client:
        assert client.url == "http://h.test/api"


def test_peers_come_from_os_environ_read_at_call_time(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SERVICE_PEERS", "hello=http://late.test/api")
    with get_service_by_name("hello") as client:
        assert client.url == "http://late.test/api"
    monkeypatch.delenv("SERVICE_PEERS")
    with pytest.raises(ServiceNotFound):
        get_service_by_name("hello")


def test_given_peers_win_over_the_environment():
    environ = {"SERVICE_PEERS": "hello=http://env.test/api"}
    with get_service_by_name("hello", PEERS, environ=environ) as client:
        assert client.url == PEERS["hello"]


def test_gets_an_async_client_for_a_named_peer():
    async def scenario() -> object:
        transport = httpx.MockTransport(answer_hello)
        client = get_async_service_by_name("compute", PEERS, transport=transport)
        assert isinstance(client, AsyncRemoteClient)
        async with client:
            return await client.methods.whoami()

    assert asyncio.run(scenario()) == ["http://compute:8000/api", None]


def test_a_peer_client_names_the_peer_in_its_errors_not_its_url():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    peers = {"hello": "http://10.1.2.3:8000/api"}
    client = get_service_by_name("hello", peers=peers, transport=httpx.MockTransport(refuse))
    with client, pytest.raises(ConnectionError) as caught:
        client.methods.say_hello("x")
    assert str(caught.value) == "cannot connect to service 'hello': connection refused"
    assert get_async_service_by_name("hello", peers=peers).where == "service 'hello'"
