"""Third-party Python JSON-RPC clients against a live server, each used as its own
documentation shows: jsonrpcclient (over requests and over httpx) and aiohttp-rpc's client
(tinyrpc, which needs a folder of its own: test_tinyrpc.py).

Each client makes the same calls (``tests/clients/cases.py``): by position, by name, a
notification (seen in the server's log), a batch with an error in it, an error with data, an
unknown method, and a private method with and without the token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import aiohttp_rpc
import httpx
import jsonrpcclient
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
from tests.conftest import TOKEN

# -- jsonrpcclient: builds the request documents, the caller's HTTP library sends them ----------

Post = Callable[[str, Any, dict[str, str]], Any]


def post_requests(url: str, doc: Any, headers: dict[str, str]) -> Any:
    reply = requests.post(url, json=doc, headers=headers, timeout=10)
    return reply.json() if reply.content else None


def post_httpx(url: str, doc: Any, headers: dict[str, str]) -> Any:
    reply = httpx.post(url, json=doc, headers=headers, timeout=10)
    return reply.json() if reply.content else None


HTTP = pytest.mark.parametrize("post", [post_requests, post_httpx], ids=["requests", "httpx"])


@HTTP
def test_jsonrpcclient_calls_by_position_and_by_name(service, post):
    doc = jsonrpcclient.request("add", (1, 2), id=1)
    assert jsonrpcclient.parse(post(service.url, doc, {})) == jsonrpcclient.Ok(3, 1)
    doc = jsonrpcclient.request("multiply", {"a": 6, "b": 7}, id="by-name")
    assert jsonrpcclient.parse(post(service.url, doc, {})) == jsonrpcclient.Ok(42, "by-name")


@HTTP
def test_jsonrpcclient_sends_a_notification(service, post):
    value = mark()
    assert post(service.url, jsonrpcclient.notification("add", (value, 1)), {}) is None
    notification_arrived(service, "add", [value, 1])


@HTTP
def test_jsonrpcclient_sends_a_batch(service, post):
    batch = [
        jsonrpcclient.request("add", (1, 2), id=1),
        jsonrpcclient.request("multiply", {"a": 3, "b": 4}, id=2),
        jsonrpcclient.notification("add", (0, 0)),
        jsonrpcclient.request("fibonacci", (-1,), id=3),
    ]
    replies = {
        response.id: response for response in jsonrpcclient.parse(post(service.url, batch, {}))
    }
    assert replies == {
        1: jsonrpcclient.Ok(3, 1),
        2: jsonrpcclient.Ok(12, 2),
        3: jsonrpcclient.Error(INVALID_PARAMS, replies[3].message, FIB_ERROR_DATA, 3),
    }


@HTTP
def test_jsonrpcclient_reads_errors_with_data(service, post):
    error = jsonrpcclient.parse(post(service.url, jsonrpcclient.request("fibonacci", (-1,)), {}))
    assert isinstance(error, jsonrpcclient.Error)
    assert (error.code, error.data) == (INVALID_PARAMS, FIB_ERROR_DATA)
    unknown = jsonrpcclient.parse(post(service.url, jsonrpcclient.request("nope"), {}))
    assert isinstance(unknown, jsonrpcclient.Error)
    assert unknown.code == METHOD_NOT_FOUND
    typed = jsonrpcclient.parse(post(service.url, jsonrpcclient.request("add", ("ten", 1)), {}))
    assert isinstance(typed, jsonrpcclient.Error)
    assert (typed.code, typed.data) == (INVALID_PARAMS, TYPED_ERROR_DATA)


@HTTP
def test_jsonrpcclient_calls_a_private_method_with_the_token(service, post):
    doc = jsonrpcclient.request("reset", id=9)
    assert jsonrpcclient.parse(post(service.url, doc, {TOKEN_HEADER: TOKEN})) == (
        jsonrpcclient.Ok(True, 9)
    )
    denied = jsonrpcclient.parse(post(service.url, doc, {TOKEN_HEADER: "wrong"}))
    assert isinstance(denied, jsonrpcclient.Error)
    assert denied.code == ACCESS_DENIED


@HTTP
def test_jsonrpcclient_sends_a_bearer_token(service, post):
    doc = jsonrpcclient.request("reset", id=10)
    reply = post(service.url, doc, {"Authorization": f"Bearer {TOKEN}"})
    assert jsonrpcclient.parse(reply) == jsonrpcclient.Ok(True, 10)


# -- aiohttp-rpc's client ---------------------------------------------------------------------


def run_aiohttp_rpc(url: str, token: str | None, calls: Callable[[Any], Any]) -> Any:
    async def main() -> Any:
        headers = {TOKEN_HEADER: token} if token else {}
        async with aiohttp_rpc.JSONRPCClient(url, headers=headers) as rpc:
            return await calls(rpc)

    return asyncio.run(main())


def test_aiohttp_rpc_calls_by_position_by_name_and_notifies(service):
    value = mark()

    async def calls(rpc):
        by_position = await rpc.call("add", 1, 2)
        by_name = await rpc.call("multiply", a=6, b=7)
        await rpc.notify("add", value, 2)
        return by_position, by_name

    assert run_aiohttp_rpc(service.url, None, calls) == (3, 42)
    notification_arrived(service, "add", [value, 2])


def test_aiohttp_rpc_sends_a_batch(service):
    async def calls(rpc):
        return await rpc.batch(
            aiohttp_rpc.JSONRPCRequest(id=1, method="add", args=[1, 2]),
            aiohttp_rpc.JSONRPCRequest(id=2, method="multiply", kwargs={"a": 3, "b": 4}),
            aiohttp_rpc.JSONRPCRequest(id=3, method="fibonacci", args=[-1]),
        )

    first, second, third = run_aiohttp_rpc(service.url, None, calls)
    assert (first, second) == (3, 12)
    assert isinstance(third, aiohttp_rpc.errors.InvalidParams)
    assert third.data == FIB_ERROR_DATA


def test_aiohttp_rpc_raises_errors_with_data(service):
    async def calls(rpc):
        caught = []
        for method, args in (("fibonacci", [-1]), ("nope", []), ("add", ["ten", 1])):
            try:
                await rpc.call(method, *args)
            except aiohttp_rpc.errors.JSONRPCError as exc:
                caught.append(exc)
        return caught

    invalid, unknown, typed = run_aiohttp_rpc(service.url, None, calls)
    assert isinstance(invalid, aiohttp_rpc.errors.InvalidParams)
    assert (invalid.code, invalid.data) == (INVALID_PARAMS, FIB_ERROR_DATA)
    assert isinstance(unknown, aiohttp_rpc.errors.MethodNotFound)
    assert isinstance(typed, aiohttp_rpc.errors.InvalidParams)
    assert typed.data == TYPED_ERROR_DATA


def test_aiohttp_rpc_calls_a_private_method_with_the_token(service):
    async def reset(rpc):
        return await rpc.call("reset")

    assert run_aiohttp_rpc(service.url, TOKEN, reset) is True
    with pytest.raises(aiohttp_rpc.errors.JSONRPCError) as caught:
        run_aiohttp_rpc(service.url, "wrong", reset)
    assert caught.value.code == ACCESS_DENIED
