"""Benchmark pair for bench/typed_cost.py: the same methods with and without annotations."""

from __future__ import annotations

import dataclasses

from service_template import MicroService, public_method


@dataclasses.dataclass
class Item:
    sku: str
    qty: int
    price: float


@dataclasses.dataclass
class Order:
    customer: str
    items: list[Item]
    note: str = ""


class Untyped(MicroService):
    """No annotations: params reach the method as decoded JSON."""

    name = "untyped"

    @public_method
    async def add(self, a, b):  # type: ignore[no-untyped-def]
        return a + b

    @public_method
    async def place(self, order):  # type: ignore[no-untyped-def]
        return len(order["items"])


class Typed(MicroService):
    """The same methods, annotated: params converted and checked before the call."""

    name = "typed"

    @public_method
    async def add(self, a: int, b: int) -> int:
        return a + b

    @public_method
    async def place(self, order: Order) -> int:
        return len(order.items)
