"""Third-party JavaScript JSON-RPC clients from npm, run with Node against a live server:
jayson, json-rpc-2.0 (over Node's fetch) and @open-rpc/client-js, each used as its README
shows (tests/clients/js/clients.mjs; versions locked in tests/clients/js/package-lock.json).

The script runs once per module and reports what every client saw for every case; each test
below judges one client and one case, so a failure names both.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.clients.cases import (
    ACCESS_DENIED,
    FIB_ERROR_DATA,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    TYPED_ERROR_DATA,
    mark,
    notification_arrived,
)
from tests.clients.conftest import run_node
from tests.conftest import TOKEN, ServiceProcess

CLIENTS = ["jayson", "json-rpc-2.0", "@open-rpc/client-js"]
client = pytest.mark.parametrize("name", CLIENTS)


class Run:
    """One run of clients.mjs: what each client saw, and the marks of its notifications."""

    def __init__(self, report: dict[str, Any], first_mark: int) -> None:
        self.report = report
        self.first_mark = first_mark

    def seen(self, name: str, case: str) -> dict[str, Any]:
        return self.report[name][case]


@pytest.fixture(scope="module")
def run(service: ServiceProcess) -> Iterator[Run]:
    first = mark()
    for _ in CLIENTS[1:]:
        mark()  # one number per client: clients.mjs adds the client's index
    yield Run(run_node("clients.mjs", service.url, TOKEN, str(first)), first)


@client
def test_calls_by_position(run, name):
    assert run.seen(name, "position") == {"value": 3}


@client
def test_calls_by_name(run, name):
    assert run.seen(name, "name") == {"value": 42}


@client
def test_sends_a_notification(run, service, name):
    assert run.seen(name, "notification") == {"value": None}
    notification_arrived(service, "add", [run.first_mark + CLIENTS.index(name), 1])


@client
def test_sends_a_batch(run, name):
    invalid = {"error": {"code": INVALID_PARAMS, "data": FIB_ERROR_DATA}}
    assert run.seen(name, "batch") == {"value": [{"value": 3}, {"value": 12}, invalid]}


@client
def test_reads_an_error_with_data(run, name):
    assert run.seen(name, "error_data") == {
        "error": {"code": INVALID_PARAMS, "data": FIB_ERROR_DATA}
    }
    assert run.seen(name, "unknown_method")["error"]["code"] == METHOD_NOT_FOUND
    # The runtime's own refusal of a value its annotation does not allow (add(a: float, ...)).
    assert run.seen(name, "typed_refusal") == {
        "error": {"code": INVALID_PARAMS, "data": TYPED_ERROR_DATA}
    }


@client
def test_calls_a_private_method_with_the_token(run, name):
    assert run.seen(name, "token") == {"value": True}
    assert run.seen(name, "wrong_token")["error"]["code"] == ACCESS_DENIED
