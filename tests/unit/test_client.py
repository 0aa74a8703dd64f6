"""RemoteClient and AsyncRemoteClient against an in-memory service (httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from service_template import client as client_module
from service_template.client import (
    AsyncRemoteClient,
    ClientError,
    ConnectError,
    HTTPStatusError,
    ProtocolError,
    RemoteClient,
    RequestTimeout,
    ServerOverloaded,
    TransportError,
)
from service_template.protocol import errors

URL = "http://svc.test:8000/api"


def _error(code: int, message: str, data: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return error


class FakeService:
    """A tiny JSON-RPC server: records every HTTP request, answers batches in reverse order."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.methods: dict[str, Callable[..., Any]] = {
            "add": lambda a, b: a + b,
            "say_hello": lambda name: f"hello {name}",
            "users.get": lambda id: {"id": id, "name": "ada"},
            "echo": lambda *args, **kwargs: {"args": list(args), "kwargs": kwargs},
            "log": lambda *args: None,
            "rpc.discover": lambda: {"openrpc": "1.3.2", "info": {"title": "hello"}, "methods": []},
        }

    def bodies(self) -> list[Any]:
        return [json.loads(request.content) for request in self.requests if request.content]

    def answer(self, request: dict[str, Any]) -> dict[str, Any] | None:
        method = self.methods.get(request["method"])
        params = request.get("params", [])
        if method is None:
            reply = {"error": _error(-32601, "Method not found")}
        else:
            args, kwargs = (params, {}) if isinstance(params, list) else ([], params)
            reply = {"result": method(*args, **kwargs)}
        if "id" not in request:
            return None
        return {"jsonrpc": "2.0", "id": request["id"], **reply}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        if isinstance(body, list):
            replies = [reply for reply in map(self.answer, body) if reply is not None]
            replies.reverse()  # clients must match answers by id, not by position
            return httpx.Response(200, json=replies) if replies else httpx.Response(204)
        reply = self.answer(body)
        return httpx.Response(200, json=reply) if reply is not None else httpx.Response(204)


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def client(service: FakeService) -> Any:
    with RemoteClient(URL, transport=httpx.MockTransport(service)) as remote:
        yield remote


def answering(response: httpx.Response | Callable[[httpx.Request], httpx.Response]) -> RemoteClient:
    """A client whose every request gets ``response`` (or what the function returns)."""

    def handler(request: httpx.Request) -> httpx.Response:
        return response(request) if callable(response) else response

    return RemoteClient(URL, transport=httpx.MockTransport(handler), timeout=2)


def raising(exc: Exception) -> RemoteClient:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return RemoteClient(URL, transport=httpx.MockTransport(handler), timeout=2)


# ---- calls -----------------------------------------------------------------------------------


def test_returns_the_result_of_a_positional_call(client: RemoteClient, service: FakeService):
    assert client.methods.add(1, 2) == 3
    (body,) = service.bodies()
    assert body == {"jsonrpc": "2.0", "method": "add", "params": [1, 2], "id": body["id"]}
    assert type(body["id"]) is int
    assert service.requests[0].method == "POST"
    assert service.requests[0].url == URL
    assert service.requests[0].headers["content-type"] == "application/json"


def test_sends_named_params_as_an_object_and_dotted_names_by_attribute_chaining(
    client: RemoteClient, service: FakeService
):
    assert client.methods.users.get(id=7) == {"id": 7, "name": "ada"}
    assert service.bodies()[0]["method"] == "users.get"
    assert service.bodies()[0]["params"] == {"id": 7}


def test_omits_params_when_a_method_takes_none(client: RemoteClient, service: FakeService):
    client.call("rpc.discover")
    assert "params" not in service.bodies()[0]


def test_call_accepts_params_named_method_and_self(client: RemoteClient, service: FakeService):
    assert client.call("echo", method="m", self="s") == {
        "args": [],
        "kwargs": {"method": "m", "self": "s"},
    }


def test_refuses_positional_and_named_params_together_before_sending(
    client: RemoteClient, service: FakeService
):
    with pytest.raises(TypeError, match="positional or named"):
        client.methods.add(1, b=2)
    assert service.requests == []


def test_refuses_params_that_are_not_json_before_sending(
    client: RemoteClient, service: FakeService
):
    with pytest.raises(TypeError, match="cannot be sent as JSON"):
        client.methods.echo(object())
    assert service.requests == []


def test_gives_each_request_a_new_id(client: RemoteClient, service: FakeService):
    for _ in range(3):
        client.methods.add(1, 1)
    ids = [body["id"] for body in service.bodies()]
    assert len(set(ids)) == 3


def test_underscore_attributes_are_not_method_names(client: RemoteClient, service: FakeService):
    with pytest.raises(AttributeError):
        _ = client.methods._private
    with pytest.raises(errors.MethodNotFound):
        client.call("_private")  # still callable by name
    assert service.bodies()[0]["method"] == "_private"


def test_the_methods_namespace_itself_is_not_callable(client: RemoteClient):
    with pytest.raises(TypeError, match="name a method"):
        client.methods()


# ---- notifications ---------------------------------------------------------------------------


def test_a_notification_is_sent_without_id_and_returns_none(
    client: RemoteClient, service: FakeService
):
    assert client.notifications.log("x") is None
    assert client.notify("log", "y") is None
    assert service.bodies() == [
        {"jsonrpc": "2.0", "method": "log", "params": ["x"]},
        {"jsonrpc": "2.0", "method": "log", "params": ["y"]},
    ]


def test_a_notification_refused_with_an_error_object_raises_it():
    reply = {"jsonrpc": "2.0", "id": None, "error": _error(-32700, "Parse error")}
    with answering(httpx.Response(200, json=reply)) as remote, pytest.raises(errors.ParseError):
        remote.notifications.log("x")


# ---- error answers ---------------------------------------------------------------------------


def test_an_error_answer_raises_the_specific_rpc_error(client: RemoteClient):
    with pytest.raises(errors.MethodNotFound) as caught:
        client.methods.nope()
    assert caught.value.code == -32601
    assert caught.value.message == "Method not found"
    assert str(caught.value) == "[-32601] Method not found"


def test_an_application_error_keeps_its_code_message_and_data():
    def handler(request: httpx.Request) -> httpx.Response:
        request_id = json.loads(request.content)["id"]
        error = _error(4004, "no such user", {"id": 9})
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": request_id, "error": error})

    with answering(handler) as remote, pytest.raises(errors.RPCError) as caught:
        remote.methods.users.get(id=9)
    assert (caught.value.code, caught.value.message, caught.value.data) == (
        4004,
        "no such user",
        {"id": 9},
    )


def test_an_error_with_a_null_id_is_the_error_of_the_request():
    reply = {"jsonrpc": "2.0", "id": None, "error": _error(-32600, "Invalid Request")}
    with answering(httpx.Response(200, json=reply)) as remote, pytest.raises(errors.InvalidRequest):
        remote.methods.add(1, 2)


@pytest.mark.parametrize("wrong_id", [999, "1", True, 1.0, None])
def test_an_answer_with_another_id_is_a_protocol_error(wrong_id: Any):
    reply = {"jsonrpc": "2.0", "id": wrong_id, "result": 3}
    with (
        answering(httpx.Response(200, json=reply)) as remote,
        pytest.raises(ProtocolError, match="has id"),
    ):
        remote.methods.add(1, 2)  # the first id of a client is 1: True and 1.0 must not match


@pytest.mark.parametrize(
    "reply",
    [
        {"jsonrpc": "2.0", "id": 1, "result": 3, "error": _error(-32603, "x")},
        {"jsonrpc": "2.0", "id": 1},
        {"id": 1, "result": 3},
        {"jsonrpc": "2.0", "id": 1, "error": {"code": "x", "message": "bad"}},
        {"jsonrpc": "2.0", "id": 1, "error": "boom"},
        [{"jsonrpc": "2.0", "id": 1, "result": 3}],
        "hello",
    ],
)
def test_a_malformed_answer_is_a_protocol_error(reply: Any):
    with answering(httpx.Response(200, json=reply)) as remote, pytest.raises(ProtocolError):
        remote.methods.add(1, 2)


def test_an_answer_that_is_not_json_is_a_protocol_error():
    with (
        answering(httpx.Response(200, text="<html>hi</html>")) as remote,
        pytest.raises(ProtocolError, match="not JSON"),
    ):
        remote.methods.add(1, 2)


def test_an_empty_answer_to_a_call_is_a_protocol_error():
    with answering(httpx.Response(204)) as remote, pytest.raises(ProtocolError, match="no answer"):
        remote.methods.add(1, 2)


def test_a_non_2xx_status_without_json_rpc_body_is_a_transport_error_with_the_status():
    with (
        answering(httpx.Response(502, text="<html>bad gateway</html>")) as remote,
        pytest.raises(HTTPStatusError) as caught,
    ):
        remote.methods.add(1, 2)
    assert caught.value.status_code == 502
    assert str(caught.value) == f"HTTP 502 Bad Gateway from {URL}"
    assert isinstance(caught.value, TransportError)
    assert not isinstance(caught.value, ConnectionError)


def test_a_non_2xx_status_with_a_json_rpc_error_body_raises_that_error():
    reply = {"jsonrpc": "2.0", "id": None, "error": _error(-32600, "Request body too large")}
    with (
        answering(httpx.Response(413, json=reply)) as remote,
        pytest.raises(errors.InvalidRequest, match="too large"),
    ):
        remote.methods.add(1, 2)


# ---- overload --------------------------------------------------------------------------------


def test_503_with_retry_after_raises_server_overloaded_with_the_delay():
    reply = {"jsonrpc": "2.0", "id": None, "error": _error(-32003, "Server overloaded", {"n": 1})}
    response = httpx.Response(503, json=reply, headers={"Retry-After": "2"})
    with answering(response) as remote, pytest.raises(ServerOverloaded) as caught:
        remote.methods.add(1, 2)
    assert caught.value.retry_after == 2.0
    assert (caught.value.code, caught.value.message, caught.value.data) == (
        -32003,
        "Server overloaded",
        {"n": 1},
    )
    assert isinstance(caught.value, errors.ServerOverloaded)


def test_a_batch_member_refused_for_want_of_a_slot_carries_its_retry_after():
    def answer(request: httpx.Request) -> httpx.Response:
        first, second = json.loads(request.content)
        overloaded = _error(-32003, "Server overloaded", {"retry_after": 1})
        return httpx.Response(
            200,
            json=[
                {"jsonrpc": "2.0", "id": first["id"], "result": 3},
                {"jsonrpc": "2.0", "id": second["id"], "error": overloaded},
            ],
        )

    with answering(answer) as remote:
        with remote.batch() as batch:
            ran = batch.methods.add(1, 2)
            refused = batch.methods.add(3, 4)
        assert ran.result() == 3
        with pytest.raises(ServerOverloaded) as caught:
            refused.result()
    assert caught.value.retry_after == 1.0


def test_503_with_retry_after_as_an_http_date_and_no_body():
    when = formatdate(time.time() + 30, usegmt=True)
    response = httpx.Response(503, text="busy", headers={"Retry-After": when})
    with answering(response) as remote, pytest.raises(ServerOverloaded) as caught:
        remote.methods.add(1, 2)
    assert caught.value.retry_after is not None
    assert 20 <= caught.value.retry_after <= 31


def test_503_without_retry_after_or_json_is_an_http_status_error():
    with (
        answering(httpx.Response(503, text="down")) as remote,
        pytest.raises(HTTPStatusError) as caught,
    ):
        remote.methods.add(1, 2)
    assert caught.value.status_code == 503


def test_an_overloaded_error_code_in_a_200_answer_is_server_overloaded():
    reply = {"jsonrpc": "2.0", "id": 1, "error": _error(-32003, "Server overloaded")}
    with (
        answering(httpx.Response(200, json=reply)) as remote,
        pytest.raises(ServerOverloaded) as caught,
    ):
        remote.methods.add(1, 2)
    assert caught.value.retry_after is None


# ---- transport failures and timeouts ---------------------------------------------------------


def test_connection_refused_raises_connect_error_from_the_httpx_error():
    cause = httpx.ConnectError("[Errno 111] Connection refused")
    with raising(cause) as remote, pytest.raises(ConnectError) as caught:
        remote.methods.add(1, 2)
    assert str(caught.value) == f"cannot connect to {URL}: connection refused"
    assert caught.value.url == URL
    assert caught.value.__cause__ is cause
    assert isinstance(caught.value, ConnectionError)
    assert isinstance(caught.value, TransportError)
    assert isinstance(caught.value, ClientError)


SECRET_URL = "http://svc-user:pa55word@hello.internal:8000/api"


@pytest.mark.parametrize(
    "failure",
    [
        lambda request: (_ for _ in ()).throw(httpx.ConnectError("[Errno 111] refused")),
        lambda request: httpx.Response(502, text="bad gateway"),
        lambda request: httpx.Response(200, text="<html>"),
        lambda request: httpx.Response(200, json={"jsonrpc": "2.0", "id": 99, "result": 1}),
    ],
    ids=["refused", "http-502", "not-json", "wrong-id"],
)
def test_errors_never_show_a_password_from_the_url(failure: Any) -> None:
    remote = RemoteClient(SECRET_URL, transport=httpx.MockTransport(failure), timeout=2)
    with remote, pytest.raises(ClientError) as caught:
        remote.methods.add(1, 2)
    assert "pa55word" not in str(caught.value) and "svc-user" not in str(caught.value)
    assert "hello.internal:8000" in str(caught.value)
    assert "pa55word" not in getattr(caught.value, "url", "")
    assert "pa55word" not in repr(remote)


@pytest.mark.parametrize(
    "failure",
    [
        lambda request: (_ for _ in ()).throw(httpx.ConnectError("[Errno 111] refused")),
        lambda request: (_ for _ in ()).throw(httpx.ReadTimeout("timed out")),
        lambda request: httpx.Response(502, text="bad gateway"),
        lambda request: httpx.Response(200, text="<html>"),
        lambda request: httpx.Response(200, json={"jsonrpc": "2.0", "id": 99, "result": 1}),
    ],
    ids=["refused", "timeout", "http-502", "not-json", "wrong-id"],
)
def test_a_client_for_a_peer_names_it_by_name_not_by_its_url(failure: Any) -> None:
    remote = RemoteClient(SECRET_URL, transport=httpx.MockTransport(failure), peer="hello")
    with remote:
        with pytest.raises(ClientError) as caught:
            remote.methods.add(1, 2)
        try:
            remote.health()  # a probe that fails to connect is named the same way
        except ClientError as exc:
            assert str(exc).startswith(
                ("cannot connect to service 'hello'", "no answer from service 'hello'")
            )
    assert "service 'hello'" in str(caught.value)
    assert "hello.internal" not in str(caught.value) and "8000" not in str(caught.value)


def test_a_dropped_connection_raises_connect_error():
    with (
        raising(httpx.RemoteProtocolError("Server disconnected")) as remote,
        pytest.raises(ConnectError, match=r"connection to .* failed: server disconnected"),
    ):
        remote.methods.add(1, 2)


def test_a_read_timeout_raises_request_timeout():
    with raising(httpx.ReadTimeout("timed out")) as remote, pytest.raises(RequestTimeout) as caught:
        remote.methods.add(1, 2)
    assert str(caught.value) == f"no answer from {URL} within 2 s"
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, TransportError)


def test_a_connect_timeout_raises_request_timeout():
    with (
        raising(httpx.ConnectTimeout("timed out")) as remote,
        pytest.raises(RequestTimeout, match="cannot connect"),
    ):
        remote.methods.add(1, 2)


def test_every_request_carries_the_configured_timeout(service: FakeService):
    with RemoteClient(URL, transport=httpx.MockTransport(service), timeout=1.5) as remote:
        remote.methods.add(1, 2)
        remote.notifications.log("x")
    for request in service.requests:
        assert request.extensions["timeout"] == {
            "connect": 1.5,
            "read": 1.5,
            "write": 1.5,
            "pool": 1.5,
        }


@pytest.mark.parametrize("timeout", [0, -1, float("inf"), float("nan"), None, "5"])
def test_refuses_a_missing_or_unusable_timeout(timeout: Any):
    with pytest.raises(ValueError, match="timeout"):
        RemoteClient(URL, timeout=timeout)


@pytest.mark.parametrize("url", ["svc:8000/api", "ftp://svc/api", "http:///api", "not a url"])
def test_refuses_a_url_it_cannot_call(url: str):
    with pytest.raises(ValueError, match="invalid URL"):
        RemoteClient(url)


# ---- headers and connection reuse ------------------------------------------------------------


def test_sends_the_token_in_the_x_api_token_header(service: FakeService):
    with RemoteClient(URL, token="s3cret", transport=httpx.MockTransport(service)) as remote:
        remote.methods.add(1, 2)
        assert "s3cret" not in repr(remote)
    assert service.requests[0].headers["x-api-token"] == "s3cret"


def test_sends_the_token_in_a_chosen_header_and_extra_headers(service: FakeService):
    with RemoteClient(
        URL,
        token="Bearer s3cret",
        token_header="Authorization",
        headers={"X-Request-Id": "r1"},
        transport=httpx.MockTransport(service),
    ) as remote:
        remote.methods.add(1, 2)
    headers = service.requests[0].headers
    assert headers["authorization"] == "Bearer s3cret"
    assert headers["x-request-id"] == "r1"
    assert "x-api-token" not in headers


def test_sends_no_token_header_without_a_token(client: RemoteClient, service: FakeService):
    client.methods.add(1, 2)
    assert "x-api-token" not in service.requests[0].headers


class CountingTransport(httpx.MockTransport):
    def __init__(self, handler: Callable[[httpx.Request], httpx.Response]) -> None:
        super().__init__(handler)
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_all_calls_share_one_connection_pool_closed_once_with_the_client(service: FakeService):
    transport = CountingTransport(service)
    with RemoteClient(URL, transport=transport) as remote:
        remote.methods.add(1, 2)
        remote.notifications.log("x")
        with remote.batch() as batch:
            batch.methods.add(3, 4)
        assert transport.closed == 0
    assert len(service.requests) == 3
    assert transport.closed == 1


# ---- batches ---------------------------------------------------------------------------------


def test_a_batch_is_one_request_and_answers_are_matched_by_id(
    client: RemoteClient, service: FakeService
):
    with client.batch() as batch:
        first = batch.methods.add(1, 2)
        batch.notifications.log("x")
        second = batch.methods.say_hello("ada")
        third = batch.call("users.get", id=5)
        assert not first.done()
    assert (first.result(), second.result(), third.result()) == (
        3,
        "hello ada",
        {"id": 5, "name": "ada"},
    )
    (body,) = service.bodies()
    assert [item.get("id") for item in body] == [
        first.request_id,
        None,
        second.request_id,
        third.request_id,
    ]
    assert len({first.request_id, second.request_id, third.request_id}) == 3


def test_a_failed_call_in_a_batch_raises_from_its_result_only(client: RemoteClient):
    with client.batch() as batch:
        good = batch.methods.add(1, 2)
        bad = batch.methods.nope()
    assert good.result() == 3
    with pytest.raises(errors.MethodNotFound):
        bad.result()


def test_a_batch_of_notifications_expects_no_answer(client: RemoteClient, service: FakeService):
    with client.batch() as batch:
        batch.notifications.log("a")
        batch.notify("log", "b")
    assert [item["params"] for item in service.bodies()[0]] == [["a"], ["b"]]


def test_an_empty_batch_sends_nothing(client: RemoteClient, service: FakeService):
    with client.batch():
        pass
    assert service.requests == []


def test_a_batch_whose_block_raises_is_not_sent(client: RemoteClient, service: FakeService):
    with pytest.raises(KeyError), client.batch() as batch:
        result = batch.methods.add(1, 2)
        raise KeyError("boom")
    assert service.requests == []
    with pytest.raises(RuntimeError, match="not sent"):
        result.result()


def test_a_result_read_inside_the_block_is_an_error(client: RemoteClient):
    with client.batch() as batch:
        result = batch.methods.add(1, 2)
        with pytest.raises(RuntimeError, match="not been sent"):
            result.result()


def test_a_sent_batch_takes_no_more_calls(client: RemoteClient):
    with client.batch() as batch:
        batch.methods.add(1, 2)
    with pytest.raises(RuntimeError, match="already been sent"):
        batch.methods.add(3, 4)


def test_a_batch_call_with_bad_params_fails_at_once(client: RemoteClient, service: FakeService):
    with client.batch() as batch:
        with pytest.raises(TypeError):
            batch.methods.add(1, b=2)
        ok = batch.methods.add(1, 2)
    assert ok.result() == 3
    assert len(service.bodies()[0]) == 1


def test_a_batch_refused_as_a_whole_raises_and_fails_every_call():
    reply = {"jsonrpc": "2.0", "id": None, "error": _error(-32600, "Batch too large")}
    with (
        answering(httpx.Response(200, json=reply)) as remote,
        pytest.raises(errors.InvalidRequest, match="too large"),
        remote.batch() as batch,
    ):
        result = batch.methods.add(1, 2)
    with pytest.raises(errors.InvalidRequest):
        result.result()


def test_a_batch_that_cannot_be_sent_raises_and_fails_every_call():
    with (
        raising(httpx.ConnectError("[Errno 111] Connection refused")) as remote,
        pytest.raises(ConnectError),
        remote.batch() as batch,
    ):
        result = batch.methods.add(1, 2)
    with pytest.raises(ConnectError):
        result.result()


def test_a_batch_answer_missing_a_call_fails_only_that_call():
    def handler(request: httpx.Request) -> httpx.Response:
        first = json.loads(request.content)[0]
        return httpx.Response(200, json=[{"jsonrpc": "2.0", "id": first["id"], "result": 3}])

    with answering(handler) as remote, remote.batch() as batch:
        answered = batch.methods.add(1, 2)
        missing = batch.methods.add(3, 4)
    assert answered.result() == 3
    with pytest.raises(ProtocolError, match="no answer"):
        missing.result()


def test_a_batch_answer_with_an_unknown_or_duplicate_id_is_a_protocol_error():
    def handler(request: httpx.Request) -> httpx.Response:
        first = json.loads(request.content)[0]["id"]
        reply = [{"jsonrpc": "2.0", "id": first, "result": 1}] * 2
        return httpx.Response(200, json=reply)

    with (
        answering(handler) as remote,
        pytest.raises(ProtocolError, match="unexpected id"),
        remote.batch() as batch,
    ):
        result = batch.methods.add(1, 2)
        batch.methods.add(3, 4)
    with pytest.raises(ProtocolError):
        result.result()


def test_an_error_with_null_id_in_a_batch_answer_goes_to_the_unanswered_calls():
    def handler(request: httpx.Request) -> httpx.Response:
        first = json.loads(request.content)[0]["id"]
        return httpx.Response(
            200,
            json=[
                {"jsonrpc": "2.0", "id": first, "result": 3},
                {"jsonrpc": "2.0", "id": None, "error": _error(-32600, "Invalid Request")},
            ],
        )

    with answering(handler) as remote, remote.batch() as batch:
        answered = batch.methods.add(1, 2)
        unmatched = batch.methods.add(3, 4)
    assert answered.result() == 3
    with pytest.raises(errors.InvalidRequest):
        unmatched.result()


# ---- name, health, raw -----------------------------------------------------------------------


def test_name_is_the_title_from_rpc_discover_asked_once(client: RemoteClient, service: FakeService):
    assert client.name == "hello"
    assert client.name == "hello"
    assert [body["method"] for body in service.bodies()] == ["rpc.discover"]


def test_name_without_a_title_is_a_protocol_error(client: RemoteClient, service: FakeService):
    service.methods["rpc.discover"] = lambda: {"openrpc": "1.3.2"}
    with pytest.raises(ProtocolError, match=r"info\.title"):
        _ = client.name


@pytest.mark.parametrize(
    ("url", "base"),
    [
        (URL, "http://svc.test:8000"),
        ("http://svc.test:8000/api/", "http://svc.test:8000"),
        ("http://svc.test:8000/", "http://svc.test:8000"),
        ("http://svc.test/hello/api?x=1", "http://svc.test/hello"),
    ],
)
def test_health_gets_livez_and_readyz_beside_the_api_url(url: str, base: str):
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        body = {"status": "pass", "checks": {"db": [{"status": "pass"}]}}
        return httpx.Response(200, json=body, headers={"Content-Type": "application/health+json"})

    with RemoteClient(url, transport=httpx.MockTransport(handler)) as remote:
        live = remote.health("livez")
        ready = remote.health()
    assert seen == [f"{base}/livez", f"{base}/readyz"]
    assert live.ok and ready.ok
    assert ready.checks == {"db": [{"status": "pass"}]}


def test_health_reports_a_failing_probe():
    body = {"status": "fail", "checks": {"db": [{"status": "fail", "output": "down"}]}}
    with answering(httpx.Response(503, json=body)) as remote:
        ready = remote.health("readyz")
    assert (ready.ok, ready.status, ready.status_code) == (False, "fail", 503)


def test_health_without_a_json_body_goes_by_the_status():
    with answering(lambda r: httpx.Response(200 if r.url.path == "/livez" else 503)) as remote:
        assert remote.health("livez").ok
        assert remote.health("readyz").status == "fail"


def test_send_raw_posts_the_body_as_it_is_and_returns_the_answer(
    client: RemoteClient, service: FakeService
):
    body = b'{"jsonrpc": "2.0", "method": "add", "params": [2, 3], "id": "x"}'
    assert client.send_raw(body) == {"jsonrpc": "2.0", "id": "x", "result": 5}
    assert service.requests[0].content == body
    assert client.send_raw(b'{"jsonrpc": "2.0", "method": "log"}') is None


# ---- the async client ------------------------------------------------------------------------


def test_async_client_calls_notifies_and_batches(service: FakeService):
    async def scenario() -> tuple[Any, ...]:
        async with AsyncRemoteClient(
            URL, token="t", transport=httpx.MockTransport(service)
        ) as remote:
            total = await remote.methods.add(1, 2)
            user = await remote.methods.users.get(id=3)
            named = await remote.call("say_hello", name="ada")
            nothing = await remote.notifications.log("x")
            await remote.notify("log", "y")
            async with remote.batch() as batch:
                first = batch.methods.add(5, 5)
                batch.notifications.log("z")
                second = batch.methods.say_hello("bo")
            return total, user, named, nothing, first.result(), second.result()

    assert asyncio.run(scenario()) == (
        3,
        {"id": 3, "name": "ada"},
        "hello ada",
        None,
        10,
        "hello bo",
    )
    assert all(request.headers["x-api-token"] == "t" for request in service.requests)
    assert [type(body).__name__ for body in service.bodies()] == ["dict"] * 5 + ["list"]


def test_async_client_raises_the_same_errors(service: FakeService):
    async def scenario() -> None:
        async with AsyncRemoteClient(URL, transport=httpx.MockTransport(service)) as remote:
            with pytest.raises(errors.MethodNotFound):
                await remote.methods.nope()
            with pytest.raises(TypeError):
                remote.methods.add(1, b=2)  # refused before a coroutine exists
            with pytest.raises(errors.MethodNotFound):
                async with remote.batch() as batch:
                    failed = batch.methods.nope()
                failed.result()

        def refuse(request: httpx.Request) -> httpx.Response:
            raise httpx.ConnectError("[Errno 111] Connection refused")

        async with AsyncRemoteClient(URL, transport=httpx.MockTransport(refuse)) as remote:
            with pytest.raises(ConnectError, match="connection refused"):
                await remote.methods.add(1, 2)
            with pytest.raises(ConnectError):
                async with remote.batch() as batch:
                    batch.methods.add(1, 2)

    asyncio.run(scenario())


def test_async_client_name_health_and_raw(service: FakeService):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"status": "pass"})
        return service(request)

    async def scenario() -> tuple[Any, ...]:
        async with AsyncRemoteClient(URL, transport=httpx.MockTransport(handler)) as remote:
            name = await remote.get_name()
            again = await remote.get_name()
            health = await remote.health()
            raw = await remote.send_raw(b'{"jsonrpc":"2.0","method":"add","params":[1,1],"id":0}')
            return name, again, health.ok, raw

    assert asyncio.run(scenario()) == (
        "hello",
        "hello",
        True,
        {"jsonrpc": "2.0", "id": 0, "result": 2},
    )
    assert [body["method"] for body in service.bodies()] == ["rpc.discover", "add"]


# ---- layering --------------------------------------------------------------------------------


def test_the_client_does_not_import_tornado():
    code = "import sys, service_template.client; print('tornado' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_exported_names_exist():
    assert all(hasattr(client_module, name) for name in client_module.__all__)
