"""The command line, run through ``main([...])`` with an in-memory service behind it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from service_template import cli, loader, runner
from service_template.client import RemoteClient
from service_template.errors import StartupError

Handler = Callable[[httpx.Request], httpx.Response]

DISCOVER = {
    "openrpc": "1.3.2",
    "info": {"title": "hello", "version": "1.0.0"},
    "methods": [
        {
            "name": "say_hello",
            "params": [{"name": "name", "required": True, "schema": {"type": "string"}}],
            "summary": "Greet someone.",
            "x-requires-token": False,
        },
        {
            "name": "say_private_hello",
            "params": [
                {"name": "name", "required": True, "schema": {"type": "string"}},
                {
                    "name": "times",
                    "required": False,
                    "schema": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                },
            ],
            "description": "Greet in secret.\nOnly with a token.",
            "x-requires-token": True,
        },
        {"name": "ping", "params": [], "x-requires-token": False},
    ],
}


class Service:
    """Answers JSON-RPC calls: ``echo`` returns its params, ``rpc.discover`` a document."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.health = {"livez": (200, {"status": "pass"}), "readyz": (200, {"status": "pass"})}

    def calls(self) -> list[Any]:
        return [json.loads(request.content) for request in self.requests if request.content]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.method == "GET":
            status, body = self.health[request.url.path.rsplit("/", 1)[-1]]
            return httpx.Response(status, json=body)
        call = json.loads(request.content)
        if isinstance(call, list) or "id" not in call:
            return httpx.Response(204)
        reply: dict[str, Any] = {"jsonrpc": "2.0", "id": call["id"]}
        if call["method"] == "echo":
            reply["result"] = call.get("params")
        elif call["method"] == "rpc.discover":
            reply["result"] = DISCOVER
        elif call["method"] == "fail":
            reply["error"] = {"code": -32602, "message": "Invalid params", "data": {"reason": "no"}}
        else:
            reply["error"] = {"code": -32601, "message": "Method not found"}
        return httpx.Response(200, json=reply)


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Service:
    """Every client the CLI makes talks to this service."""
    fake = Service()
    use_handler(monkeypatch, fake)
    monkeypatch.delenv(cli.TOKEN_ENV, raising=False)
    return fake


def use_handler(monkeypatch: pytest.MonkeyPatch, handler: Handler) -> None:
    def make_client(url: str, *, token: str | None, timeout: float) -> RemoteClient:
        return RemoteClient(
            url, token=token, timeout=timeout, transport=httpx.MockTransport(handler)
        )

    monkeypatch.setattr(cli, "make_client", make_client)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


# ---- call ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "params"),
    [
        (["1", "2"], [1, 2]),
        (["world"], ["world"]),
        (['"3"', "3", "true", "null", "NaN"], ["3", 3, True, None, "NaN"]),
        (['{"a": [1, 2]}', "[]"], [{"a": [1, 2]}, []]),
        (['"a=1"', "x y"], ["a=1", "x y"]),
        (["name=world", "n=5", 'tags=["a"]'], {"name": "world", "n": 5, "tags": ["a"]}),
        (["=x", "1=2"], ["=x", "1=2"]),  # no identifier before "=": positional text
    ],
)
def test_call_parses_each_arg_as_json_else_text(
    service: Service, capsys: pytest.CaptureFixture[str], args: list[str], params: Any
):
    status, out, err = run(capsys, "call", "http://svc:8000/api", "echo", *args)
    assert (status, err) == (0, "")
    assert service.calls()[0]["params"] == params
    assert json.loads(out) == params


def test_call_prints_the_result_as_indented_json(
    service: Service, capsys: pytest.CaptureFixture[str]
):
    status, out, _ = run(capsys, "call", "http://svc:8000/api", "echo", "name=zoë")
    assert status == 0
    assert out == '{\n  "name": "zoë"\n}\n'


def test_call_without_args_sends_no_params(service: Service, capsys: pytest.CaptureFixture[str]):
    status, out, _ = run(capsys, "call", "http://svc:8000/api", "echo")
    assert (status, out) == (0, "null\n")
    assert "params" not in service.calls()[0]


def test_call_refuses_to_mix_positional_and_named_args(
    service: Service, capsys: pytest.CaptureFixture[str]
):
    status, out, err = run(capsys, "call", "http://svc:8000/api", "echo", "1", "b=2")
    assert (status, out) == (2, "")
    assert err == (
        "error: cannot mix positional and name=value arguments (JSON-RPC sends one or the other)\n"
    )
    assert service.requests == []


def test_call_refuses_a_named_param_given_twice(
    service: Service, capsys: pytest.CaptureFixture[str]
):
    status, _, err = run(capsys, "call", "http://svc:8000/api", "echo", "a=1", "a=2")
    assert status == 2
    assert err == "error: parameter 'a' is given twice\n"


@pytest.mark.parametrize(
    ("given", "called"),
    [
        ("http://svc:8000", "http://svc:8000/api"),
        ("http://svc:8000/", "http://svc:8000/api"),
        ("svc:8000", "http://svc:8000/api"),
        ("http://svc:8000/api", "http://svc:8000/api"),
        ("https://svc/v1/rpc", "https://svc/v1/rpc"),
    ],
)
def test_call_adds_api_to_a_base_url(
    service: Service, capsys: pytest.CaptureFixture[str], given: str, called: str
):
    assert run(capsys, "call", given, "echo")[0] == 0
    assert str(service.requests[0].url) == called


def test_an_error_answer_is_one_line_on_stderr_and_exit_1(
    service: Service, capsys: pytest.CaptureFixture[str]
):
    status, out, err = run(capsys, "call", "http://svc:8000/api", "nope")
    assert (status, out, err) == (1, "", "error: [-32601] Method not found\n")


def test_an_error_answer_shows_its_data(service: Service, capsys: pytest.CaptureFixture[str]):
    status, _, err = run(capsys, "call", "http://svc:8000/api", "fail")
    assert (status, err) == (1, 'error: [-32602] Invalid params (data: {"reason": "no"})\n')


def test_connection_refused_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused")

    use_handler(monkeypatch, refuse)
    status, out, err = run(capsys, "call", "http://127.0.0.1:1", "echo")
    assert (status, out) == (1, "")
    assert err == "error: cannot connect to http://127.0.0.1:1/api: connection refused\n"


def test_a_timeout_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    seen: list[Any] = []

    def slow(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        raise httpx.ReadTimeout("timed out")

    use_handler(monkeypatch, slow)
    status, _, err = run(capsys, "call", "http://svc/api", "echo", "--timeout", "0.5")
    assert (status, err) == (1, "error: no answer from http://svc/api within 0.5 s\n")
    assert seen == [0.5]


def test_an_http_error_page_is_one_line_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    use_handler(monkeypatch, lambda request: httpx.Response(404, text="<h1>Not here</h1>"))
    status, _, err = run(capsys, "call", "http://svc/api", "echo")
    assert (status, err) == (1, "error: HTTP 404 Not Found from http://svc/api\n")


def test_overload_shows_when_to_retry(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": -32003, "message": "Server overloaded"}}
    response = httpx.Response(503, json=body, headers={"Retry-After": "3"})
    use_handler(monkeypatch, lambda request: response)
    status, _, err = run(capsys, "call", "http://svc/api", "echo")
    assert (status, err) == (1, "error: [-32003] Server overloaded (retry after 3 s)\n")


@pytest.mark.parametrize("url", ["ftp://svc/api", "http:///api"])
def test_an_unusable_url_is_a_usage_error(
    service: Service, capsys: pytest.CaptureFixture[str], url: str
):
    status, _, err = run(capsys, "call", url, "echo")
    assert status == 2
    assert err.startswith("error: invalid URL")
    assert err.count("\n") == 1


def test_a_non_positive_timeout_is_a_usage_error(
    service: Service, capsys: pytest.CaptureFixture[str]
):
    status, _, err = run(capsys, "call", "http://svc/api", "echo", "--timeout", "0")
    assert status == 2
    assert err.startswith("error: timeout must be a positive number")


# ---- token -----------------------------------------------------------------------------------


def test_the_token_flag_is_sent_in_the_api_token_header(
    service: Service, capsys: pytest.CaptureFixture[str]
):
    assert run(capsys, "call", "http://svc/api", "echo", "--token", "s3cret")[0] == 0
    assert service.requests[0].headers["x-api-token"] == "s3cret"


def test_the_token_comes_from_the_environment_unless_given(
    service: Service, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("SERVICE_CLIENT_TOKEN", "from-env")
    run(capsys, "call", "http://svc/api", "echo")
    run(capsys, "call", "http://svc/api", "echo", "--token", "from-flag")
    assert [r.headers["x-api-token"] for r in service.requests] == ["from-env", "from-flag"]


def test_no_token_sends_no_token_header(service: Service, capsys: pytest.CaptureFixture[str]):
    run(capsys, "call", "http://svc/api", "echo")
    assert "x-api-token" not in service.requests[0].headers


def test_the_real_client_factory_builds_a_remote_client():
    made = cli.make_client("http://svc/api", token="t", timeout=3)
    with made:
        assert isinstance(made, RemoteClient)
        assert (made.url, made.timeout) == ("http://svc/api", 3.0)


# ---- call-raw --------------------------------------------------------------------------------


def test_call_raw_sends_the_text_as_it_is_and_prints_the_answer(
    service: Service, capsys: pytest.CaptureFixture[str]
):
    text = '{"jsonrpc":"2.0","method":"echo","params":[1],"id":"a"}'
    status, out, err = run(capsys, "call-raw", "http://svc:8000", text, "--token", "t")
    assert (status, err) == (0, "")
    assert json.loads(out) == {"jsonrpc": "2.0", "id": "a", "result": [1]}
    assert service.requests[0].content == text.encode()
    assert service.requests[0].headers["x-api-token"] == "t"


def test_call_raw_exits_1_when_the_answer_is_an_error(
    service: Service, capsys: pytest.CaptureFixture[str]
):
    status, out, err = run(
        capsys, "call-raw", "http://svc/api", '{"jsonrpc":"2.0","method":"x","id":1}'
    )
    assert status == 1
    assert json.loads(out)["error"]["code"] == -32601
    assert err == "error: [-32601] Method not found\n"


def test_call_raw_prints_nothing_for_a_notification(
    service: Service, capsys: pytest.CaptureFixture[str]
):
    status, out, err = run(
        capsys, "call-raw", "http://svc/api", '{"jsonrpc":"2.0","method":"echo"}'
    )
    assert (status, out, err) == (0, "", "")


# ---- methods ---------------------------------------------------------------------------------


def test_methods_prints_a_table_of_names_params_token_and_summary(
    service: Service, capsys: pytest.CaptureFixture[str]
):
    status, out, err = run(capsys, "methods", "http://svc:8000")
    assert (status, err) == (0, "")
    assert out.splitlines() == [
        "hello 1.0.0: 3 methods at http://svc:8000/api",
        "",
        "METHOD             PARAMS                                TOKEN  SUMMARY",
        "say_hello          name: string                          no     Greet someone.",
        "say_private_hello  name: string, times?: integer | null  yes    Greet in secret.",
        "ping               -                                     no",
    ]
    assert service.calls()[0]["method"] == "rpc.discover"


def test_methods_reports_an_answer_that_is_not_openrpc(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    def handler(request: httpx.Request) -> httpx.Response:
        call = json.loads(request.content)
        return httpx.Response(200, json={"jsonrpc": "2.0", "id": call["id"], "result": "hi"})

    use_handler(monkeypatch, handler)
    status, out, err = run(capsys, "methods", "http://svc/api")
    assert (status, out) == (1, "")
    assert err == "error: rpc.discover at http://svc/api did not return an OpenRPC document\n"


# ---- health ----------------------------------------------------------------------------------


def test_health_prints_both_probes_and_exits_0_when_ready(
    service: Service, capsys: pytest.CaptureFixture[str]
):
    status, out, err = run(capsys, "health", "http://svc:8000/api")
    assert (status, err) == (0, "")
    assert out == "livez: pass (HTTP 200)\nreadyz: pass (HTTP 200)\n"
    assert [str(r.url) for r in service.requests] == [
        "http://svc:8000/livez",
        "http://svc:8000/readyz",
    ]


def test_health_shows_failing_checks_and_exits_1_when_not_ready(
    service: Service, capsys: pytest.CaptureFixture[str]
):
    checks = {
        "database:connection": [{"status": "fail", "output": "timed out"}],
        "cache": [{"status": "pass"}],
    }
    service.health["readyz"] = (503, {"status": "fail", "checks": checks})
    status, out, err = run(capsys, "health", "http://svc:8000")
    assert status == 1
    assert out.splitlines() == [
        "livez: pass (HTTP 200)",
        "readyz: fail (HTTP 503)",
        "  database:connection: fail (timed out)",
        "  cache: pass",
    ]
    assert err == "error: readyz failing at http://svc:8000/api\n"


# ---- usage -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["call"],
        ["call", "http://svc/api"],
        ["call-raw", "http://svc/api"],
        ["call", "u", "m", "--timeout", "x"],
    ],
)
def test_usage_errors_exit_2_with_a_message(capsys: pytest.CaptureFixture[str], argv: list[str]):
    status, out, err = run(capsys, *argv)
    assert (status, out) == (2, "")
    assert "error:" in err
    assert "Traceback" not in err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]):
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for command in ("serve", "config", "call", "call-raw", "methods", "health"):
        assert command in out


# ---- serve and config (the runner is replaced: only the arguments are checked) ----------------


class FakeSettings:
    def masked(self) -> dict[str, Any]:
        return {"name": "hello", "port": 8000, "api_token": "***", "peers": {"a": "http://a/api"}}


class FakeService:
    def __init__(self, settings: Any) -> None:
        self.settings = settings


@pytest.fixture
def resolved(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def resolve(target: Any, environ: Any, config_file: Any, overrides: Any) -> tuple[Any, Any]:
        calls.append((target, environ, config_file, overrides))
        return FakeService, FakeSettings()

    monkeypatch.setattr(loader, "resolve", resolve)

    def run(make_service: Callable[[], Any], settings: Any) -> int:
        calls.append(("run", type(make_service())))
        return 7

    monkeypatch.setattr(runner, "run", run)
    return calls


def test_serve_passes_only_the_flags_given_and_returns_the_run_status(
    resolved: list[tuple[Any, ...]], capsys: pytest.CaptureFixture[str]
):
    import os

    argv = ["serve", "pkg.mod:Svc", "--port", "9000", "--config", "s.yaml", "--debug"]
    assert cli.main(argv) == 7
    target, environ, config_file, overrides = resolved[0]
    assert (target, config_file) == ("pkg.mod:Svc", "s.yaml")
    assert environ is os.environ
    assert overrides == {"port": "9000", "debug": "true"}
    assert resolved[1] == ("run", FakeService)


def test_serve_without_target_or_flags(resolved: list[tuple[Any, ...]]):
    assert cli.main(["serve", "--host", "0.0.0.0", "--workers", "2"]) == 7
    assert resolved[0][0] is None
    assert resolved[0][2] is None
    assert resolved[0][3] == {"host": "0.0.0.0", "workers": "2"}


def test_set_gives_any_setting_by_name_as_text(resolved: list[tuple[Any, ...]]):
    argv = ["serve", "--set", "database_url=postgresql://u:p@db/x?a=b", "--set", "pool_size=3"]
    assert cli.main(argv) == 7
    assert resolved[0][3] == {"database_url": "postgresql://u:p@db/x?a=b", "pool_size": "3"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--set", "pool_size"], "error: --set needs NAME=VALUE, got 'pool_size'\n"),
        (["--set", "=3"], "error: --set needs NAME=VALUE, got '=3'\n"),
        (
            ["--port", "1", "--set", "port=2"],
            "error: setting 'port' is given twice on the command line\n",
        ),
    ],
)
def test_a_malformed_set_is_a_usage_error(
    resolved: list[tuple[Any, ...]],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
):
    assert run(capsys, "serve", *argv) == (2, "", message)
    assert resolved == []


def test_serve_reports_a_startup_error_as_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    def resolve(*args: Any) -> Any:
        raise StartupError("nothing to serve: give TARGET")

    monkeypatch.setattr(loader, "resolve", resolve)
    status, out, err = run(capsys, "serve")
    assert (status, out, err) == (2, "", "error: nothing to serve: give TARGET\n")


def test_config_prints_the_masked_settings_as_yaml(
    resolved: list[tuple[Any, ...]], capsys: pytest.CaptureFixture[str]
):
    import yaml

    status, out, err = run(capsys, "config", "pkg.mod:Svc", "--host", "::1")
    assert (status, err) == (0, "")
    assert out.splitlines()[0] == f"# {__name__}:FakeService"
    assert yaml.safe_load(out) == FakeSettings().masked()
    assert resolved[0][3] == {"host": "::1"}
    assert len(resolved) == 1  # config never runs the service
