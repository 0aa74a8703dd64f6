"""Bad input over real HTTP: every malformed body, request, header or token gets a clear
answer (a JSON-RPC error or a 4xx), never a 5xx or a server internal, and the service keeps
answering normal calls afterwards."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from tests.conftest import TOKEN, ServiceProcess, launch
from tests.integration.services import (
    INTERNALS,
    JSON_HEADERS,
    api_head,
    assert_healthy,
    chunk,
    connect,
    exchange,
    post,
    read_response,
    request,
    rpc,
)

pytestmark = pytest.mark.integration

PROBE = "tests.integration.services:ProbeService"


@pytest.fixture(scope="module")
def probe() -> Iterator[ServiceProcess]:
    service = launch(PROBE)
    try:
        yield service
    finally:
        service.stop_cleanly()


@pytest.fixture(scope="module")
def cookie_bearer() -> Iterator[ServiceProcess]:
    service = launch("tests.integration.services:CookieBearerService")
    try:
        yield service
    finally:
        service.stop_cleanly()


def _assert_rpc_error(reply_status: int, doc: object, code: int, request_id: object) -> None:
    assert reply_status == 200
    assert isinstance(doc, dict)
    assert doc["jsonrpc"] == "2.0"
    assert "result" not in doc
    assert doc["error"]["code"] == code
    assert doc["id"] == request_id


def _deep(depth: int) -> bytes:
    return b'{"jsonrpc":"2.0","method":"echo","params":[' + b"[" * depth + b"]" * depth + b"],"


PARSE_ERRORS = {
    "empty body": b"",
    "not JSON": b"hello",
    "truncated object": b'{"jsonrpc": "2.0", "method": "echo", "params": [1',
    "trailing garbage": b'{"jsonrpc":"2.0","method":"echo","params":[1],"id":1} x',
    "single quotes": b"{'jsonrpc': '2.0', 'method': 'echo', 'id': 1}",
    "invalid UTF-8": b'{"jsonrpc":"2.0","method":"echo","params":["\xff\xfe"],"id":1}',
    "overlong UTF-8 slash": b'{"jsonrpc":"2.0","method":"echo","params":["\xc0\xaf"],"id":1}',
    "NaN": b'{"jsonrpc":"2.0","method":"echo","params":[NaN],"id":1}',
    "Infinity": b'{"jsonrpc":"2.0","method":"echo","params":[Infinity],"id":1}',
    "-Infinity": b'{"jsonrpc":"2.0","method":"echo","params":[-Infinity],"id":1}',
    "1e400": b'{"jsonrpc":"2.0","method":"echo","params":[1e400],"id":1}',
    "-1e400": b'{"jsonrpc":"2.0","method":"echo","params":[-1e400],"id":1}',
    "5000-digit integer": b'{"jsonrpc":"2.0","method":"echo","params":[' + b"9" * 5000 + b"],"
    b'"id":1}',
    "2000-deep nesting": _deep(2000) + b'"id":1}',
    "100000-deep nesting": _deep(100_000) + b'"id":1}',
    "duplicate keys": b'{"jsonrpc":"2.0","method":"echo","method":"explode","params":["x"],"id":1}',
    "duplicate nested keys": b'{"jsonrpc":"2.0","method":"echo","params":[{"a":1,"a":2}],"id":1}',
}


@pytest.mark.parametrize("body", PARSE_ERRORS.values(), ids=PARSE_ERRORS.keys())
def test_unparseable_body_gets_parse_error_with_null_id(probe, body):
    reply = post(probe.port, body)
    assert reply.headers["Content-Type"] == "application/json"
    doc = reply.json()
    _assert_rpc_error(reply.status, doc, -32700, None)
    assert doc["error"]["message"] == "Parse error"
    assert not INTERNALS.search(reply.body), reply.body
    assert_healthy(probe.port)


INVALID_REQUESTS = {
    "a number": (b"1", None),
    "a string": (b'"echo"', None),
    "null": (b"null", None),
    "an empty batch": (b"[]", None),
    "jsonrpc 1.0": (b'{"jsonrpc":"1.0","method":"echo","params":[1],"id":7}', 7),
    "no jsonrpc member": (b'{"method":"echo","params":[1],"id":7}', 7),
    "method not a string": (b'{"jsonrpc":"2.0","method":1,"params":[1],"id":7}', 7),
    "params a string": (b'{"jsonrpc":"2.0","method":"echo","params":"x","id":7}', 7),
    "params null": (b'{"jsonrpc":"2.0","method":"echo","params":null,"id":7}', 7),
    "id an object": (b'{"jsonrpc":"2.0","method":"echo","params":[1],"id":{"a":1}}', None),
    "id a boolean": (b'{"jsonrpc":"2.0","method":"echo","params":[1],"id":true}', None),
}


@pytest.mark.parametrize(
    ("body", "request_id"), INVALID_REQUESTS.values(), ids=INVALID_REQUESTS.keys()
)
def test_valid_json_that_is_not_a_request_gets_invalid_request(probe, body, request_id):
    reply = post(probe.port, body)
    doc = reply.json()
    _assert_rpc_error(reply.status, doc, -32600, request_id)
    assert doc["error"]["message"] == "Invalid Request"
    assert not INTERNALS.search(reply.body), reply.body
    assert_healthy(probe.port)


def test_batch_of_non_requests_gets_one_invalid_request_error_each(probe):
    reply = post(probe.port, b"[1, 2, 3]")
    assert reply.status == 200
    doc = reply.json()
    assert isinstance(doc, list)
    assert len(doc) == 3
    for item in doc:
        _assert_rpc_error(200, item, -32600, None)


def test_values_at_the_edge_of_the_limits_are_accepted(probe):
    # The largest integer accepted (4300 digits), a big finite float, moderate nesting and a
    # lone surrogate (valid JSON text, not encodable as UTF-8) all come back as sent.
    big = int("9" * 4300)
    nested: list[object] = []
    for _ in range(100):
        nested = [nested]
    for value in (big, 1e308, nested, "\ud800"):
        body = json.dumps({"jsonrpc": "2.0", "method": "echo", "params": [value], "id": 1})
        reply = post(probe.port, body.encode())
        assert reply.status == 200
        assert reply.json() == {"jsonrpc": "2.0", "result": value, "id": 1}


@pytest.mark.parametrize(
    ("method", "params"),
    [("explode", ["db password is hunter2"]), ("type_error_inside", [1]), ("unencodable", [])],
)
def test_server_faults_get_a_generic_internal_error(probe, method, params):
    reply = rpc(probe.port, method, params, request_id="fault")
    doc = reply.json()
    _assert_rpc_error(reply.status, doc, -32603, "fault")
    assert doc["error"] == {"code": -32603, "message": "Internal error"}
    assert b"hunter2" not in reply.body
    assert not INTERNALS.search(reply.body), reply.body
    assert_healthy(probe.port)


def test_debug_mode_shows_the_fault_to_the_client(start_service):
    service = start_service(PROBE, env={"SERVICE_DEBUG": "1"})
    doc = rpc(service.port, "explode", ["visible"]).json()
    assert doc["error"]["code"] == -32603
    assert doc["error"]["data"]["exception"] == "ValueError"
    assert doc["error"]["data"]["message"] == "internal detail: visible"


# -- HTTP framing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", ""]
)
def test_wrong_content_type_gets_415(probe, content_type):
    headers = {"Content-Type": content_type}
    body = b'{"jsonrpc":"2.0","method":"echo","params":[1],"id":1}'
    reply = request(probe.port, "POST", "/api", body, headers)
    assert reply.status == 415
    assert reply.headers["Content-Type"] == "application/json"
    assert "error" in reply.json()
    assert_healthy(probe.port)


def test_a_missing_content_type_is_read_as_json(probe):
    # tinyrpc's HTTP transport sends none (tests/clients/test_python_clients.py).
    body = b'{"jsonrpc":"2.0","method":"echo","params":[1],"id":1}'
    reply = request(probe.port, "POST", "/api", body, {})
    assert reply.status == 200
    assert reply.json() == {"jsonrpc": "2.0", "result": 1, "id": 1}


def test_json_content_type_with_charset_is_accepted(probe):
    body = b'{"jsonrpc":"2.0","method":"echo","params":[1],"id":1}'
    reply = post(probe.port, body, {"Content-Type": "Application/JSON; charset=utf-8"})
    assert reply.status == 200
    assert reply.json()["result"] == 1


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_http_methods_on_api_get_405_with_allow_post(probe, method):
    body = b"{}" if method in ("PUT", "PATCH") else None
    reply = request(probe.port, method, "/api", body, JSON_HEADERS)
    assert reply.status == 405
    assert reply.headers["Allow"] == "POST"
    assert "error" in reply.json()
    assert_healthy(probe.port)


def test_head_on_api_gets_405_without_a_body(probe):
    reply = exchange(probe.port, b"HEAD /api HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", method="HEAD")
    assert reply.status == 405
    assert reply.headers["Allow"] == "POST"
    assert reply.body == b""


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_unknown_path_gets_404_json(probe, method):
    reply = request(probe.port, method, "/no/such/path", b"{}" if method == "POST" else None)
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith("application/json")
    assert "error" in reply.json()
    assert not INTERNALS.search(reply.body)


@pytest.mark.parametrize("path", ["/metrics", "/livez", "/readyz", "/openrpc.json"])
def test_post_on_a_get_route_gets_405(probe, path):
    reply = request(probe.port, "POST", path, b"{}", JSON_HEADERS)
    assert reply.status == 405
    assert "GET" in reply.headers["Allow"]
    assert "error" in reply.json()


BAD_FRAMING = {
    "non-numeric Content-Length": "Content-Length: abc\r\n",
    "negative Content-Length": "Content-Length: -5\r\n",
    "unequal duplicate Content-Lengths": "Content-Length: 5, 6\r\n",
    "Content-Length and chunked": "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
}


@pytest.mark.parametrize("headers", BAD_FRAMING.values(), ids=BAD_FRAMING.keys())
def test_malformed_framing_gets_400(probe, headers):
    head = "POST /api HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    reply = exchange(probe.port, (head + headers + "\r\n").encode() + b"5\r\nhello\r\n0\r\n\r\n")
    assert reply.status == 400
    assert_healthy(probe.port)


def test_content_length_with_a_non_ascii_digit_gets_400(probe):
    # '\xb2' is SUPERSCRIPT TWO in Latin-1, the encoding of header bytes: str.isdigit() says
    # yes, int() says no. (The first runtime answered nothing and logged a traceback.)
    reply = exchange(probe.port, api_head(None, "Content-Length: \xb2\r\n") + b"{}")
    assert reply.status == 400


def test_content_length_shorter_than_the_body_parses_only_what_it_announces(probe):
    body = b'{"jsonrpc":"2.0","method":"echo","params":[1],"id":1}'
    with connect(probe.port) as sock:
        sock.sendall(api_head(10) + body)
        reply = read_response(sock)
    doc = reply.json()
    _assert_rpc_error(reply.status, doc, -32700, None)
    assert_healthy(probe.port)


def test_keep_alive_connection_works_after_a_parse_error(probe):
    good = b'{"jsonrpc":"2.0","method":"echo","params":["next"],"id":2}'
    with connect(probe.port) as sock:
        sock.sendall(api_head(5) + b"{oops")
        first = read_response(sock)
        sock.sendall(api_head(len(good)) + good)
        second = read_response(sock)
    assert first.json()["error"]["code"] == -32700
    assert second.json() == {"jsonrpc": "2.0", "result": "next", "id": 2}


def test_pipelined_requests_are_answered_in_order(probe):
    slow = b'{"jsonrpc":"2.0","method":"sleep","params":[0.2],"id":1}'
    fast = b'{"jsonrpc":"2.0","method":"echo","params":["second"],"id":2}'
    first, second = b'{"jsonrpc":"2.0","result":0.2,"id":1}', b'"result":"second"'
    received = b""
    with connect(probe.port) as sock:
        sock.sendall(api_head(len(slow)) + slow + api_head(len(fast)) + fast)
        # Raw reads: both answers may arrive in one segment, beyond one response's parser.
        deadline = time.monotonic() + 5
        while second not in received and time.monotonic() < deadline:
            received += sock.recv(65536)
    assert received.count(b"HTTP/1.1 200 OK\r\n") == 2, received
    assert 0 <= received.index(first) < received.index(second), received


def test_a_request_followed_by_a_half_close_is_still_answered(probe):
    # `printf 'POST ...' | nc -N host port` and other HTTP/1.0-style clients do this: send
    # the whole request, shut down their sending side, then read the answer.
    # The call takes a moment, so the end of the client's stream arrives while it runs.
    body = b'{"jsonrpc":"2.0","method":"sleep","params":[0.3],"id":1}'
    with connect(probe.port) as sock:
        sock.sendall(api_head(len(body), "Connection: close\r\n") + body)
        sock.shutdown(socket.SHUT_WR)
        reply = read_response(sock)
    assert reply.json() == {"jsonrpc": "2.0", "result": 0.3, "id": 1}


def test_an_h2c_upgrade_offer_is_ignored(probe):
    # What `curl --http2 -d ... http://host/api` sends. A server without HTTP/2 answers
    # "as though the Upgrade header field were absent" (RFC 9113 section 3.1, RFC 9110 7.8).
    body = b'{"jsonrpc":"2.0","method":"echo","params":["h2c"],"id":1}'
    offer = (
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
    )
    reply = exchange(probe.port, api_head(len(body), offer) + body)
    assert reply.status == 200
    assert reply.json() == {"jsonrpc": "2.0", "result": "h2c", "id": 1}


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/metrics", "/openrpc.json", "/nope"])
def test_head_on_other_routes_sends_headers_only_and_keeps_the_connection(probe, path):
    with connect(probe.port) as sock:
        sock.sendall(f"HEAD {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = read_response(sock, method="HEAD")
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        after = read_response(sock, method="GET")
    assert head.status == (404 if path == "/nope" else 200)
    assert head.body == b""
    assert after.status == 200
    assert after.json()["status"] == "pass"


def test_chunked_body_is_accepted(probe):
    body = b'{"jsonrpc":"2.0","method":"echo","params":["chunked"],"id":3}'
    with connect(probe.port) as sock:
        sock.sendall(api_head(None, "Transfer-Encoding: chunked\r\n"))
        for start in range(0, len(body), 16):
            sock.sendall(chunk(body[start : start + 16]))
        sock.sendall(b"0\r\n\r\n")
        reply = read_response(sock)
    assert reply.json() == {"jsonrpc": "2.0", "result": "chunked", "id": 3}


# -- private methods --------------------------------------------------------------------------

DENIED = {"code": -32001, "message": "Access denied"}


def _secret(service: ServiceProcess, headers: dict[str, str]) -> dict[str, object]:
    reply = rpc(service.port, "secret", ["x"], headers=headers)
    assert reply.status == 200
    doc = reply.json()
    assert isinstance(doc, dict)
    return doc


def test_header_strategy_accepts_only_the_configured_token(probe):
    assert _secret(probe, {"X-Api-Token": TOKEN})["result"] == "secret for x"
    for headers in (
        {},
        {"X-Api-Token": "wrong-token-123"},
        {"X-Api-Token": ""},
        {"X-Api-Token": TOKEN + "x"},
        {"X-Api-Token": TOKEN[:-1]},
        {"Authorization": f"Bearer {TOKEN}"},  # not a strategy of this service
    ):
        doc = _secret(probe, headers)
        assert doc["error"] == DENIED, headers
        assert "result" not in doc


def test_public_calls_in_a_batch_succeed_while_private_ones_are_denied(probe):
    batch = [
        {"jsonrpc": "2.0", "method": "echo", "params": [1], "id": 1},
        {"jsonrpc": "2.0", "method": "secret", "params": ["x"], "id": 2},
    ]
    doc = post(probe.port, json.dumps(batch).encode()).json()
    by_id = {item["id"]: item for item in doc}
    assert by_id[1]["result"] == 1
    assert by_id[2]["error"] == DENIED


def test_cookie_and_bearer_strategies_accept_the_token(cookie_bearer):
    for headers in ({"Cookie": f"api_token={TOKEN}"}, {"Authorization": f"Bearer {TOKEN}"}):
        assert _secret(cookie_bearer, headers)["result"] == "secret for x", headers


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Api-Token": TOKEN},  # header strategy not configured on this service
        {"Cookie": "api_token=wrong-token-123"},
        {"Cookie": "api_token="},
        {"Cookie": f"other={TOKEN}"},
        {"Authorization": "Bearer wrong-token-123"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ],
    ids=lambda headers: " ".join(f"{k}: {v}" for k, v in headers.items()).replace(TOKEN, "TOKEN"),
)
def test_cookie_and_bearer_strategies_deny_missing_wrong_or_empty_tokens(cookie_bearer, headers):
    doc = _secret(cookie_bearer, headers)
    assert doc["error"] == DENIED
    assert "result" not in doc


@pytest.mark.parametrize(
    "service_class", ["RaisingTokenCheckService", "AsyncRaisingTokenCheckService"]
)
def test_a_token_check_that_raises_denies_access(start_service, service_class):
    service = start_service(f"tests.integration.services:{service_class}")
    doc = _secret(service, {"X-Api-Token": TOKEN})
    assert doc["error"] == DENIED
    assert "result" not in doc
    assert_healthy(service.port)
    service.wait_for_log(lambda entry: "api_token_is_valid raised" in str(entry.get("msg")))
    assert all(TOKEN not in line for line in service.lines)


def test_tokens_never_appear_in_the_log(cookie_bearer):
    wrong = "wrong-token-in-log-check"
    for headers in (
        {"Cookie": f"api_token={TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}"},
        {"Authorization": f"Bearer {wrong}"},
        {"X-Api-Token": wrong},
    ):
        _secret(cookie_bearer, headers)
    # A marker call after them: once its line is in, every earlier line is too (one stream).
    rpc(cookie_bearer.port, "echo", ["log-barrier"], request_id="log-barrier")
    cookie_bearer.wait_for_log(lambda entry: entry.get("id") == "log-barrier")
    calls = [entry for entry in cookie_bearer.logs() if entry.get("method") == "secret"]
    assert calls, "the secret calls were not logged"
    for line in cookie_bearer.lines:
        assert TOKEN not in line
        assert wrong not in line
