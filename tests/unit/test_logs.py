"""Structured logs: one JSON object per line, and the per-call line with secrets redacted."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from service_template.config import DEFAULT_REDACT_PARAMS
from service_template.logs import (
    CALL_LOGGER,
    REDACTED,
    CallLog,
    JSONFormatter,
    LineWriter,
    configure_logging,
)
from service_template.protocol import NO_ID
from service_template.redaction import Redactor

SENSITIVE = frozenset(DEFAULT_REDACT_PARAMS)
REDACTOR = Redactor(SENSITIVE)
redact = REDACTOR.redact


def redact_params(params: Any, names: tuple[str, ...] = ()) -> Any:
    return REDACTOR.redact_params(params, REDACTOR.positions(names))


def record(msg: str, *args: Any, exc_info: Any = None) -> logging.LogRecord:
    return logging.LogRecord("svc.test", logging.WARNING, __file__, 1, msg, args or None, exc_info)


# --- JSONFormatter ------------------------------------------------------------------------------


def test_a_record_becomes_one_json_object_on_one_line() -> None:
    line = JSONFormatter().format(record("hello %s", "world"))
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["msg"] == "hello world"
    assert entry["level"] == "warning"
    assert entry["logger"] == "svc.test"
    assert isinstance(entry["ts"], float)
    assert isinstance(entry["pid"], int)


def test_a_message_with_newlines_stays_on_one_line() -> None:
    line = JSONFormatter().format(record("first\nsecond"))
    assert "\n" not in line
    assert json.loads(line)["msg"] == "first\nsecond"


def test_extra_fields_become_top_level_members() -> None:
    rec = record("listening")
    rec.fields = {"port": 8000, "url": "http://127.0.0.1:8000/api"}
    entry = json.loads(JSONFormatter().format(rec))
    assert entry["port"] == 8000
    assert entry["url"] == "http://127.0.0.1:8000/api"


def test_an_exception_is_logged_with_its_traceback_on_the_same_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = record("failed", exc_info=sys.exc_info())
    line = JSONFormatter().format(rec)
    assert "\n" not in line
    exc = json.loads(line)["exc"]
    assert "Traceback" in exc
    assert "ValueError: boom" in exc


def test_a_field_that_is_not_json_is_shown_not_dropped() -> None:
    rec = record("odd")
    rec.fields = {"thing": object()}
    entry = json.loads(JSONFormatter().format(rec))
    assert entry["msg"] == "odd"
    assert entry["thing"].startswith("<object object")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    tornado_level = logging.getLogger("tornado.access").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("tornado.access").setLevel(tornado_level)


@pytest.mark.usefixtures("restore_logging")
def test_configured_logging_writes_json_lines_at_the_chosen_level() -> None:
    stream = io.StringIO()
    configure_logging("WARNING", stream)
    log = logging.getLogger("svc.configured")
    log.info("hidden")
    log.warning("shown %d", 1)
    log.error("also shown")
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["msg"] for line in lines] == ["shown 1", "also shown"]


# --- redaction ----------------------------------------------------------------------------------


def test_named_params_with_sensitive_names_are_redacted() -> None:
    params = {"user": "ann", "password": "hunter2", "api_key": "k"}
    assert redact_params(params) == {
        "user": "ann",
        "password": REDACTED,
        "api_key": REDACTED,
    }


def test_redaction_ignores_the_case_of_names() -> None:
    params = {"Password": "a", "TOKEN": "b", "Authorization": "c", "name": "d"}
    assert redact(params) == {
        "Password": REDACTED,
        "TOKEN": REDACTED,
        "Authorization": REDACTED,
        "name": "d",
    }


def test_nested_objects_and_lists_are_redacted_too() -> None:
    params = {"login": {"user": "ann", "secret": "s"}, "items": [{"token": "t", "id": 1}, 2]}
    assert redact(params) == {
        "login": {"user": "ann", "secret": REDACTED},
        "items": [{"token": REDACTED, "id": 1}, 2],
    }


def test_positional_params_are_redacted_by_the_name_they_bind_to() -> None:
    redacted = redact_params(
        ["ann", "hunter2", {"token": "t"}, "extra"], ("user", "Password", "options")
    )
    assert redacted == ["ann", REDACTED, {"token": REDACTED}, "extra"]


def test_a_whole_sensitive_value_is_replaced_even_when_it_is_an_object() -> None:
    assert redact({"secret": {"a": 1}}) == {"secret": REDACTED}


def test_redaction_leaves_the_original_params_untouched() -> None:
    params = {"password": "hunter2", "nested": {"token": "t"}}
    redact_params(params)
    assert params == {"password": "hunter2", "nested": {"token": "t"}}


def test_absent_params_stay_absent() -> None:
    assert redact_params(None) is None


SECRET_LOOKING = [
    "access_token",
    "client_secret",
    "apiKey",
    "X-Auth",
    "passwd",
    "refresh-token",
    "private_key",
    "credentials",
    "session",
    "ACCESS-TOKEN",
    "clientSecret",
    "x_api_key",
    "sessionId",
    "auth",
    "new.password",
    "Cookie",
]
HARMLESS = ["user", "name", "author", "key", "monkey", "count", "keyword", "sessions_total", "id"]


@pytest.mark.parametrize("name", SECRET_LOOKING)
def test_secret_looking_names_are_redacted_by_pattern_whatever_their_case_or_separators(
    name: str,
) -> None:
    assert Redactor().is_secret(name)
    assert redact({name: "s3cret", "user": "ann"}) == {name: REDACTED, "user": "ann"}


@pytest.mark.parametrize("name", HARMLESS)
def test_ordinary_names_are_not_redacted(name: str) -> None:
    assert not Redactor().is_secret(name)
    assert redact({name: "v"}) == {name: "v"}


def test_names_a_service_adds_are_matched_whatever_their_case_or_separators() -> None:
    redactor = Redactor({"card_number", "SSN"})
    assert redactor.redact({"cardNumber": 1, "card-number": 2, "ssn": 3, "cardholder": 4}) == {
        "cardNumber": REDACTED,
        "card-number": REDACTED,
        "ssn": REDACTED,
        "cardholder": 4,
    }


def test_the_name_cache_stays_bounded_whatever_names_clients_send() -> None:
    redactor = Redactor()
    for i in range(10_000):
        redactor.is_secret(f"field{i}")
    assert len(redactor._cache) <= 4096
    assert redactor.is_secret("field_token_99999")


# --- the call log -------------------------------------------------------------------------------


@pytest.fixture
def call_logger_at_info() -> Iterator[None]:
    logger = logging.getLogger(CALL_LOGGER)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


def call_log(stream: io.BytesIO, sensitive: frozenset[str] = SENSITIVE) -> CallLog:
    positional = {"login": ("user", "password"), "add": ("a", "b")}
    return CallLog(sensitive, positional, writer=LineWriter(stream))


def lines(stream: io.BytesIO) -> list[dict[str, Any]]:
    text = stream.getvalue().decode()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


@pytest.mark.usefixtures("call_logger_at_info")
def test_a_call_is_logged_as_one_json_line_with_its_outcome() -> None:
    stream = io.BytesIO()
    call_log(stream)("add", 7, [1, 2], None, 0.0123, http_request_id="req-1")
    [entry] = lines(stream)
    assert entry["msg"] == "call"
    assert entry["logger"] == CALL_LOGGER
    assert entry["level"] == "info"
    assert entry["method"] == "add"
    assert entry["id"] == 7
    assert entry["notification"] is False
    assert entry["outcome"] == "ok"
    assert entry["duration_ms"] == pytest.approx(12.3)
    assert entry["request_id"] == "req-1"
    assert entry["params"] == [1, 2]
    assert isinstance(entry["ts"], float)


@pytest.mark.usefixtures("call_logger_at_info")
def test_a_failed_call_is_logged_with_its_error_code() -> None:
    stream = io.BytesIO()
    call_log(stream)("add", "abc", {"a": 1}, -32602, 0.001, http_request_id="r")
    [entry] = lines(stream)
    assert (entry["id"], entry["outcome"]) == ("abc", -32602)


@pytest.mark.usefixtures("call_logger_at_info")
def test_a_notification_is_logged_with_notification_true_and_a_null_id() -> None:
    stream = io.BytesIO()
    log = call_log(stream)
    log("add", NO_ID, [1, 2], None, 0.0, http_request_id="r1")
    log("add", None, [1, 2], None, 0.0, http_request_id="r2")  # "id": null is a call
    first, second = lines(stream)
    assert (first["id"], first["notification"]) == (None, True)
    assert (second["id"], second["notification"]) == (None, False)


@pytest.mark.usefixtures("call_logger_at_info")
def test_the_call_log_redacts_named_positional_and_nested_secrets() -> None:
    stream = io.BytesIO()
    log = call_log(stream)
    log("login", 1, ["ann", "hunter2"], None, 0.0, http_request_id="r")
    log("login", 2, {"user": "ann", "PASSWORD": "hunter2"}, None, 0.0, http_request_id="r")
    log("add", 3, [{"options": {"Token": "t"}}, 2], None, 0.0, http_request_id="r")
    entries = lines(stream)
    assert [entry["params"] for entry in entries] == [
        ["ann", REDACTED],
        {"user": "ann", "PASSWORD": REDACTED},
        [{"options": {"Token": REDACTED}}, 2],
    ]
    assert "hunter2" not in stream.getvalue().decode()


@pytest.mark.usefixtures("call_logger_at_info")
def test_configured_sensitive_names_are_matched_in_any_case() -> None:
    stream = io.BytesIO()
    call_log(stream, frozenset({"SSN"}))("add", 1, {"ssn": "123"}, None, 0.0, http_request_id="r")
    assert lines(stream)[0]["params"] == {"ssn": REDACTED}


@pytest.mark.usefixtures("call_logger_at_info")
def test_the_call_log_redacts_secret_looking_names_positional_and_named() -> None:
    stream = io.BytesIO()
    positional = {"refresh": ("client_id", "refreshToken"), "connect": ("host", "X-Auth")}
    log = CallLog(SENSITIVE, positional, writer=LineWriter(stream))
    log("refresh", 1, ["app", "rt-value"], None, 0.0, http_request_id="r")
    log("connect", 2, {"host": "h", "x_auth": "xa-value"}, None, 0.0, http_request_id="r")
    log("connect", 3, ["h", "xa-value"], None, 0.0, http_request_id="r")
    log("other", 4, {"client_secret": "cs", "apiKey": "ak"}, None, 0.0, http_request_id="r")
    assert [entry["params"] for entry in lines(stream)] == [
        ["app", REDACTED],
        {"host": "h", "x_auth": REDACTED},
        ["h", REDACTED],
        {"client_secret": REDACTED, "apiKey": REDACTED},
    ]


def test_no_call_lines_are_written_below_info() -> None:
    logger = logging.getLogger(CALL_LOGGER)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        stream = io.BytesIO()
        call_log(stream)("add", 1, [1, 2], None, 0.0, http_request_id="r")
    finally:
        logger.setLevel(level)
    assert stream.getvalue() == b""


def test_inside_an_event_loop_lines_are_written_once_per_loop_iteration_in_order() -> None:
    stream = io.BytesIO()
    writer = LineWriter(stream)

    async def main() -> tuple[bytes, bytes]:
        writer.write(b"one\n")
        writer.write(b"two\n")
        before = stream.getvalue()
        await asyncio.sleep(0)
        return before, stream.getvalue()

    before, after = asyncio.run(main())
    assert before == b""
    assert after == b"one\ntwo\n"


@pytest.mark.usefixtures("call_logger_at_info")
def test_call_lines_are_formatted_at_the_flush_with_the_time_and_trace_of_their_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The line is formatted after the iteration's calls (cheaper), but says what was true when
    # the call was recorded: its time and its span, in the order the calls ended.
    stream = io.BytesIO()
    clock = iter([1000.0, 1001.0])
    spans = iter([("a" * 32, "b" * 16), ("c" * 32, "d" * 16)])
    log = CallLog(
        SENSITIVE, {"add": ("a", "b")}, writer=LineWriter(stream), trace_ids=lambda: next(spans)
    )

    async def main() -> bytes:
        monkeypatch.setattr("service_template.logs.time.time", lambda: next(clock))
        log("add", 1, [1, 2], None, 0.001, http_request_id="r1")
        log("add", 2, [3, 4], -32602, 0.002, http_request_id="r2")
        monkeypatch.undo()
        held = stream.getvalue()
        await asyncio.sleep(0)
        return held

    assert asyncio.run(main()) == b""
    first, second = lines(stream)
    assert (first["ts"], first["id"], first["params"], first["trace_id"]) == (
        1000.0, 1, [1, 2], "a" * 32,
    )  # fmt: skip
    assert (second["ts"], second["id"], second["outcome"], second["span_id"]) == (
        1001.0, 2, -32602, "d" * 16,
    )  # fmt: skip


@pytest.mark.usefixtures("call_logger_at_info")
def test_a_flush_at_shutdown_writes_the_calls_still_held() -> None:
    stream = io.BytesIO()
    log = call_log(stream)

    async def main() -> None:
        log("add", 1, [1, 2], None, 0.0, http_request_id="r")
        log.flush()  # what the runner does on its way out, before the loop ends
        assert [entry["id"] for entry in lines(stream)] == [1]

    asyncio.run(main())
    assert [entry["id"] for entry in lines(stream)] == [1]  # written once


@pytest.mark.usefixtures("call_logger_at_info")
def test_params_made_unwritable_after_the_call_still_leave_its_line_and_the_next() -> None:
    stream = io.BytesIO()
    log = call_log(stream)
    looped: list[Any] = [1]
    looped.append(looped)  # a method that keeps its params and makes them circular

    async def main() -> None:
        log("add", 1, looped, None, 0.0, http_request_id="r")
        log("add", 2, [1, 2], None, 0.0, http_request_id="r")
        await asyncio.sleep(0)

    asyncio.run(main())
    first, second = lines(stream)
    assert (first["id"], first["params"]) == (1, REDACTED)
    assert (second["id"], second["params"]) == (2, [1, 2])


def test_outside_an_event_loop_a_line_is_written_at_once() -> None:
    stream = io.BytesIO()
    LineWriter(stream).write(b"now\n")
    assert stream.getvalue() == b"now\n"
