"""tinyrpc against a live server, as its documentation shows it: ``RPCClient`` with
``JSONRPCProtocol`` over ``HttpPostClientTransport``, calls through ``get_proxy()``.

Its transport posts bare bytes with no ``Content-Type`` at all, which the server reads as JSON.
tinyrpc is imported from .cache/python-clients, never from .venv: its wheel ships a top-level
``tests`` package that would shadow this project's there (requirements/clients.in).
"""

from __future__ import annotations

import hashlib
import sys
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from tests.clients.cases import (
    ACCESS_DENIED,
    FIB_ERROR_DATA,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    TOKEN_HEADER,
    TYPED_ERROR_DATA,
    mark,
    notification_arrived,
)
from tests.conftest import REPO, TOKEN, ServiceProcess, missing_tool

FOLDER = REPO / ".cache" / "python-clients"
LOCK = REPO / "requirements" / "clients.txt"


@pytest.fixture(scope="module")
def tinyrpc() -> SimpleNamespace:
    """tinyrpc's modules, once install-tools.sh has put exactly the locked version in FOLDER."""
    stamp = FOLDER / ".clients.txt.sha256"
    wanted = hashlib.sha256(LOCK.read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text().strip() != wanted:
        missing_tool(
            "tinyrpc is not installed from requirements/clients.txt: "
            "run bash scripts/ci/install-tools.sh"
        )
    if str(FOLDER) not in sys.path:
        # Last: nothing there may shadow what .venv has (this project's `tests` is imported).
        sys.path.append(str(FOLDER))
    from tinyrpc import RPCClient
    from tinyrpc.client import RPCCall
    from tinyrpc.protocols.jsonrpc import JSONRPCErrorResponse, JSONRPCProtocol
    from tinyrpc.transports.http import HttpPostClientTransport

    return SimpleNamespace(
        RPCClient=RPCClient,
        RPCCall=RPCCall,
        JSONRPCErrorResponse=JSONRPCErrorResponse,
        JSONRPCProtocol=JSONRPCProtocol,
        HttpPostClientTransport=HttpPostClientTransport,
    )


def make_client(
    tinyrpc: SimpleNamespace, service: ServiceProcess, token: str | None = None
) -> tuple[Any, list[Any]]:
    """The client, and the headers of every request it sent (as requests sent them)."""
    sent: list[Any] = []

    def post(url: str, **kwargs: Any) -> requests.Response:
        reply = requests.post(url, timeout=10, **kwargs)
        sent.append(reply.request.headers)
        return reply

    headers = {TOKEN_HEADER: token} if token else {}
    transport = tinyrpc.HttpPostClientTransport(service.url, post_method=post, headers=headers)
    return tinyrpc.RPCClient(tinyrpc.JSONRPCProtocol(), transport), sent


def test_calls_by_position_and_by_name_without_a_content_type(tinyrpc, service):
    client, sent = make_client(tinyrpc, service)
    proxy = client.get_proxy()
    assert proxy.add(1, 2) == 3
    assert proxy.multiply(a=6, b=7) == 42
    # What the server accepts: tinyrpc posts bare bytes, with no Content-Type at all.
    assert "Content-Type" not in sent[0]


def test_sends_a_notification(tinyrpc, service):
    client, _ = make_client(tinyrpc, service)
    value = mark()
    assert client.get_proxy(one_way=True).add(value, 3) is None
    notification_arrived(service, "add", [value, 3])


def test_sends_a_batch(tinyrpc, service):
    client, _ = make_client(tinyrpc, service)
    # batch_call's annotation says RPCCallTo, but it unpacks each item into
    # create_request(method, args, kwargs): RPCCall is what works (tinyrpc 1.1.7).
    replies = client.batch_call(
        [
            tinyrpc.RPCCall("add", [1, 2], None),
            tinyrpc.RPCCall("multiply", None, {"a": 3, "b": 4}),
            tinyrpc.RPCCall("fibonacci", [-1], None),
        ]
    )
    first, second, third = sorted(replies, key=lambda reply: reply.unique_id)
    assert (first.result, second.result) == (3, 12)
    assert isinstance(third, tinyrpc.JSONRPCErrorResponse)
    assert (third._jsonrpc_error_code, third.data) == (INVALID_PARAMS, FIB_ERROR_DATA)


def test_raises_errors_with_data(tinyrpc, service):
    proxy = make_client(tinyrpc, service)[0].get_proxy()
    with pytest.raises(Exception) as caught:
        proxy.fibonacci(-1)
    assert caught.value._jsonrpc_error_code == INVALID_PARAMS
    assert caught.value.data == FIB_ERROR_DATA
    with pytest.raises(Exception) as unknown:
        proxy.nope()
    assert unknown.value._jsonrpc_error_code == METHOD_NOT_FOUND
    with pytest.raises(Exception) as typed:
        proxy.add("ten", 1)
    assert typed.value._jsonrpc_error_code == INVALID_PARAMS
    assert typed.value.data == TYPED_ERROR_DATA


def test_calls_a_private_method_with_the_token(tinyrpc, service):
    assert make_client(tinyrpc, service, TOKEN)[0].get_proxy().reset() is True
    with pytest.raises(Exception) as caught:
        make_client(tinyrpc, service, "wrong")[0].get_proxy().reset()
    assert caught.value._jsonrpc_error_code == ACCESS_DENIED
