"""The call context, hook composition and route declarations, without a socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from service_template import (
    MicroService,
    Principal,
    Route,
    RPCError,
    StartupError,
    current_call,
    public_method,
)
from service_template.config import Settings
from service_template.context import API_TOKEN_PRINCIPAL, CallInfo, HeaderView
from service_template.hooks import Proceed, compose
from service_template.protocol import Dispatcher, Method
from service_template.routing import RouteTable
from service_template.runtime import Runtime
from tests.unit.rpc_doubles import PRINCIPAL, FakeContext, invoke


def run(dispatcher: Dispatcher, body: Any, ctx: FakeContext) -> Any:
    reply = asyncio.run(dispatcher.dispatch(json.dumps(body).encode(), ctx))
    return None if reply is None else json.loads(reply)


def seen() -> dict[str, Any]:
    call = current_call()
    return {"method": call.method, "id": call.id, "principal": call.principal}


async def later() -> dict[str, Any]:
    await asyncio.sleep(0.01)
    return seen()


def methods() -> dict[str, Method]:
    async def now() -> dict[str, Any]:
        return seen()

    return {
        "now": Method("now", now),
        "later": Method("later", later),
        "secret": Method("secret", later, requires_auth=True),
    }


def test_current_call_outside_a_call_says_so() -> None:
    with pytest.raises(LookupError, match="only available while a call runs"):
        current_call()


def test_each_batch_member_sees_its_own_call_and_the_shared_principal() -> None:
    dispatcher = Dispatcher(methods(), invoke)
    batch = [
        {"jsonrpc": "2.0", "method": "later", "id": "a"},
        {"jsonrpc": "2.0", "method": "now", "id": 2},
        {"jsonrpc": "2.0", "method": "secret", "id": 3},
        {"jsonrpc": "2.0", "method": "later", "id": None},
    ]
    replies = {r["id"]: r["result"] for r in run(dispatcher, batch, FakeContext())}
    assert {key: (r["method"], r["id"]) for key, r in replies.items()} == {
        "a": ("later", "a"),
        2: ("now", 2),
        3: ("secret", 3),
        None: ("later", None),
    }
    assert replies[2]["principal"] is None  # ran before anyone asked who the caller is
    assert replies[3]["principal"] == PRINCIPAL  # authenticated before a private method runs


def test_hooks_nest_first_outermost_and_may_refuse() -> None:
    trace: list[str] = []

    def hook(name: str) -> Any:
        async def around(call: CallInfo, proceed: Proceed) -> Any:
            trace.append(f"{name}>{call.method}")
            if name == "gate" and call.method == "later":
                raise RPCError(4000, "refused by gate")
            result = await proceed()
            trace.append(f"<{name}")
            return result

        return around

    dispatcher = Dispatcher(
        methods(), invoke, around=compose([hook("outer"), hook("gate"), hook("inner")])
    )
    assert run(dispatcher, {"jsonrpc": "2.0", "method": "now", "id": 1}, FakeContext())["result"]
    assert trace == ["outer>now", "gate>now", "inner>now", "<inner", "<gate", "<outer"]
    refused = run(dispatcher, {"jsonrpc": "2.0", "method": "later", "id": 2}, FakeContext())
    assert refused["error"] == {"code": 4000, "message": "refused by gate"}


def test_a_hook_sees_the_access_refusal_of_a_private_method() -> None:
    outcomes: list[str] = []

    async def observe(call: CallInfo, proceed: Proceed) -> Any:
        try:
            return await proceed()
        except RPCError as exc:
            outcomes.append(f"{call.method}:{exc.code}")
            raise

    dispatcher = Dispatcher(methods(), invoke, around=compose([observe]))
    body = {"jsonrpc": "2.0", "method": "secret", "id": 1}
    assert run(dispatcher, body, FakeContext(authorized=False))["error"]["code"] == -32001
    assert outcomes == ["secret:-32001"]


def test_no_hooks_means_no_around_and_a_plain_hook_is_refused() -> None:
    assert compose([]) is None

    def blocking(call: CallInfo, proceed: Proceed) -> Any:
        return proceed()

    with pytest.raises(TypeError, match="must be an async function"):
        compose([blocking])  # type: ignore[list-item]


def test_header_view_is_case_insensitive_and_read_only() -> None:
    view = HeaderView({"x-tenant": "acme"})
    assert view["X-Tenant"] == "acme" and view.get("X-TENANT") == "acme"
    assert "x-TENANT" in view and view.get("missing") is None
    with pytest.raises(TypeError):
        view["x-tenant"] = "other"  # type: ignore[index]
    twice = HeaderView({"x-api-token": "a", "accept": "*/*"}, [("x-api-token", "b")])
    assert twice.get_list("X-Api-Token") == ["a", "b"] and twice.get_list("Accept") == ["*/*"]
    assert twice.get_list("missing") == []


def test_the_default_authenticate_returns_the_api_token_principal() -> None:
    service = MicroService(Settings(api_token=None))
    assert service.authenticate(HeaderView({"x-api-token": "anything"})) is None

    class Open(MicroService):
        def api_token_is_valid(self, api_token: str) -> bool:
            return api_token == "good"

    assert Open(Settings()).authenticate(HeaderView({"x-api-token": "good"})) == (
        API_TOKEN_PRINCIPAL
    )
    assert Principal("api-token") == API_TOKEN_PRINCIPAL


class Handler:  # a stand-in: routing checks declarations, http/ checks handler classes
    pass


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ((Route("/api", Handler),), "route '/api': /api is served by the runtime"),
        ((Route("/(.*)", Handler),), "/api, /livez, /readyz, /metrics, /openrpc.json"),
        ((Route("/ready.", Handler),), "route '/ready.': /readyz is served by the runtime"),
        ((Route("hooks", Handler),), "route 'hooks': path must start with '/'"),
        ((Route("/(unclosed", Handler),), "path must start with '/' and be a valid pattern"),
        ((Route("/a", Handler), ("/a", Handler)), "route '/a': declared twice"),
        ((Route("/a", Handler, max_body_bytes=-1),), "max_body_bytes must be a whole number"),
        ((("/a",),), "declare a route as Route(path, handler)"),
    ],
)
def test_a_bad_route_declaration_is_named(routes: Any, message: str) -> None:
    with pytest.raises(ValueError, match="invalid routes") as info:
        RouteTable(routes, 100)
    assert message in str(info.value)


def test_routes_match_whole_paths_with_their_own_or_the_default_limit() -> None:
    table = RouteTable((Route("/files/([a-z]+)", Handler, max_body_bytes=10), ("/b", Handler)), 7)
    assert table.match("/files/abc") == (table.routes[0], 10)
    assert table.match("/b") == (table.routes[1], 7)
    assert table.match("/files/abc/more") is None and table.match("/bb") is None


def test_a_service_with_a_bad_route_or_hook_does_not_start() -> None:
    class BadRoute(MicroService):
        routes = (Route("/metrics", Handler),)

        @public_method
        async def ping(self) -> str:
            return "pong"

    with pytest.raises(StartupError, match="/metrics is served by the runtime"):
        Runtime(BadRoute(Settings()), Settings())

    class BadHook(MicroService):
        def call_hooks(self) -> Any:
            return [print]

    with pytest.raises(StartupError, match="must be an async function"):
        Runtime(BadHook(Settings()), Settings())


def test_a_plain_authenticate_runs_in_the_pool_and_fails_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Plain(MicroService):
        def authenticate(self, headers: HeaderView) -> Any:
            import threading

            if headers.get("x-user") == "boom":
                raise RuntimeError("directory down")
            return Principal(headers.get("x-user", ""), {"thread": threading.current_thread().name})

    runtime = Runtime(Plain(Settings()), Settings(name="plain"))
    try:
        principal = asyncio.run(runtime.access.authenticate(HeaderView({"x-user": "ann"})))
        assert principal.subject == "ann" and principal.claims["thread"].startswith("plain-auth")
        assert asyncio.run(runtime.access.authenticate(HeaderView({"x-user": "boom"}))) is None
        assert "authenticate raised; access denied" in caplog.text
    finally:
        runtime.close()
