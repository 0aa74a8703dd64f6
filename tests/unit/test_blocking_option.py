"""``@public_method(blocking=False)``: recorded on the method, checked at start, run inline.

The default (a plain method runs in the pool) is covered end to end by
tests/integration/test_offload.py; these run a service's runtime without a socket.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest

from service_template import MicroService, StartupError, private_api_method, public_method
from service_template.config import Settings
from service_template.runtime import Runtime

from .rpc_doubles import FakeContext


class Where(MicroService):
    name = "where"

    @public_method
    def pooled(self) -> str:
        return threading.current_thread().name

    @public_method(blocking=False)
    def inline(self) -> str:
        return threading.current_thread().name

    @private_api_method(blocking=False)
    def inline_private(self) -> str:
        return threading.current_thread().name


def _service(cls: type[MicroService]) -> MicroService:
    return cls(Settings.load({}, None, None, cls.class_defaults()))


def _call(runtime: Runtime, method: str) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "method": method, "id": 1}).encode()

    async def main() -> Any:
        reply = await runtime.dispatcher.dispatch(body, FakeContext())
        assert reply is not None
        return json.loads(reply)["result"]

    try:
        return asyncio.run(main())
    finally:
        runtime.close()


def test_the_option_is_recorded_on_the_method() -> None:
    methods = _service(Where).build_registry()
    assert methods["pooled"].blocking is True
    assert methods["inline"].blocking is False
    assert methods["inline_private"].blocking is False


def test_a_plain_method_runs_in_a_pool_thread_by_default() -> None:
    service = _service(Where)
    assert _call(Runtime(service, service.settings), "pooled").startswith("where-call_")


def test_blocking_false_runs_on_the_event_loops_thread() -> None:
    service = _service(Where)
    assert _call(Runtime(service, service.settings), "inline") == threading.current_thread().name


def test_a_blocking_value_that_is_not_a_bool_fails_at_start() -> None:
    class Bad(MicroService):
        @public_method(blocking="no")  # type: ignore[call-overload]
        def maybe(self) -> None:
            """A truthy string would silently mean True."""

    with pytest.raises(StartupError, match="blocking must be True or False, got 'no'"):
        _service(Bad).build_registry()
