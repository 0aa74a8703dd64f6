"""Test doubles for the protocol layer: a CallContext and the simplest ``invoke``."""

from __future__ import annotations

import asyncio
import inspect
import json
from collections import Counter
from typing import Any

from service_template.protocol import NO_ID, Method
from service_template.protocol.methods import Params

PRINCIPAL = "fake-principal"


class FakeContext:
    """A CallContext double: a configurable authentication verdict (a principal when
    ``authorized``) and a log of recorded calls."""

    request_id = "fake-request"

    def __init__(self, authorized: bool = True, headers: dict[str, str] | None = None) -> None:
        self.verdict = authorized
        self.headers = headers or {}
        self.asked = 0
        self.records: list[tuple[str, Any, Params, int | None, float]] = []

    async def authenticate(self) -> Any:
        self.asked += 1
        await asyncio.sleep(0)  # yield once, so concurrent batch members overlap here
        return PRINCIPAL if self.verdict else None

    def record(
        self, method: str, request_id: Any, params: Params, code: int | None, seconds: float
    ) -> None:
        self.records.append((method, request_id, params, code, seconds))

    def outcomes(self) -> Counter[tuple[str, Any, int | None]]:
        """(label, id, code) of every recorded call, ignoring order; ids made hashable."""
        return Counter(
            (m, json.dumps(i) if i is not NO_ID else i, c) for m, i, _, c, _ in self.records
        )


async def invoke(method: Method, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run a method the simplest way: await coroutines, call plain functions."""
    result = method.func(*args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result
