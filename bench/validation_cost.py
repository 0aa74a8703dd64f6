"""What checking params against their annotations costs per call: msgspec, pydantic, nothing.

Usage: .venv/bin/python bench/validation_cost.py [--calls N]

Two methods: ``add(a: int, b: int)`` called with ``[1, 2]`` (the benchmark's workload), and
``place(order: Order)`` with a dataclass of three line items. For each it times, per call:

- ``bind only``: ``Method.bind`` without a contract (what an untyped method costs);
- ``ours (msgspec)``: ``Method.bind`` with the contract the registry attaches (the real path);
- ``msgspec.convert``: the library call alone, on a ``Struct`` built once;
- ``pydantic``: a ``TypeAdapter`` built once, ``validate_python`` (strict for ``add``);
- for ``place``, ``ours (pydantic model)``: ``Method.bind`` of the same method taking a pydantic
  model instead of the dataclass (the runtime re-encodes the value and validates it in
  pydantic's strict JSON mode, the mode its published schema describes).

Then a whole call through the dispatcher (request bytes in, response bytes out, no HTTP),
untyped against typed: the share of a call's protocol work that conversion adds.

Then the memory each library costs a server process: the growth of RSS from importing it
and building the validators of 50 methods, each in a fresh interpreter.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import subprocess
import sys
import timeit
from typing import Any, ClassVar

import msgspec
import pydantic

from service_template.contracts import build_contract
from service_template.protocol import Dispatcher, Method


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


class ItemModel(pydantic.BaseModel):
    sku: str
    qty: int
    price: float


class OrderModel(pydantic.BaseModel):
    customer: str
    items: list[ItemModel]
    note: str = ""


def add(a: int, b: int) -> int:
    return a + b


def place(order: Order) -> int:
    return len(order.items)


def place_model(order: OrderModel) -> int:
    return len(order.items)


def add_untyped(a, b):  # type: ignore[no-untyped-def]
    return a + b


def place_untyped(order):  # type: ignore[no-untyped-def]
    return len(order["items"])


ADD_PARAMS: list[Any] = [1, 2]
ORDER_PARAMS: dict[str, Any] = {
    "order": {
        "customer": "c-42",
        "items": [{"sku": f"sku-{i}", "qty": i, "price": 9.5} for i in range(3)],
    }
}


def _per_call(runs: dict[str, Any], calls: int, rounds: int = 7) -> dict[str, float]:
    """Microseconds per call of each run: the best of ``rounds``, the runs interleaved so that
    the machine's load changes hit them alike."""
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for label, work in runs.items():
            best[label] = min(best[label], timeit.timeit(work, number=calls) / calls * 1e6)
    return best


class _Context:
    """The least a dispatcher needs from a transport (no auth, no recording)."""

    request_id = "bench"
    headers: ClassVar[dict[str, str]] = {}

    async def authenticate(self) -> Any:
        return None

    def record(self, *args: Any) -> None:
        pass


async def _invoke(method: Method, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return method.func(*args, **kwargs)


def _dispatch(dispatcher: Dispatcher, body: bytes) -> Any:
    """One request through the dispatcher, driven without an event loop (nothing suspends)."""
    coro = dispatcher.dispatch(body, _Context())
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the call suspended")


def _dispatch_cases() -> dict[str, dict[str, Any]]:
    untyped = Dispatcher(
        {"add": Method("add", add_untyped), "place": Method("place", place_untyped)}, _invoke
    )
    typed = Dispatcher(
        {
            "add": Method("add", add, contract=build_contract("add", add)),
            "place": Method("place", place, contract=build_contract("place", place)),
        },
        _invoke,
    )
    add_body = json.dumps({"jsonrpc": "2.0", "method": "add", "params": ADD_PARAMS, "id": 1})
    place_body = json.dumps({"jsonrpc": "2.0", "method": "place", "params": ORDER_PARAMS, "id": 1})
    cases: dict[str, dict[str, Any]] = {}
    for name, body in (("add", add_body.encode()), ("place", place_body.encode())):
        assert _dispatch(untyped, body) == _dispatch(typed, body)
        cases[f"dispatch of {name}: bytes in, bytes out"] = {
            "untyped": functools.partial(_dispatch, untyped, body),
            "typed (ours)": functools.partial(_dispatch, typed, body),
        }
    return cases


def _cases() -> dict[str, dict[str, Any]]:
    from pydantic import StrictInt, TypeAdapter

    place_pydantic = Method("place", place_model, contract=build_contract("place", place_model))

    add_untyped, add_typed = (
        Method("add", add),
        Method("add", add, contract=build_contract("add", add)),
    )
    place_untyped = Method("place", place)
    place_typed = Method("place", place, contract=build_contract("place", place))
    add_struct = msgspec.defstruct("AddArgs", [("a", int), ("b", int)], array_like=True)
    place_struct = msgspec.defstruct("PlaceParams", [("order", Order)])
    add_adapter = TypeAdapter(tuple[StrictInt, StrictInt])
    order_adapter = TypeAdapter(Order)
    return {
        "add(a: int, b: int), [1, 2]": {
            "bind only": lambda: add_untyped.bind(ADD_PARAMS),
            "ours (msgspec)": lambda: add_typed.bind(ADD_PARAMS),
            "msgspec.convert": lambda: msgspec.convert(ADD_PARAMS, add_struct, strict=True),
            "pydantic": lambda: add_adapter.validate_python(ADD_PARAMS),
        },
        "place(order: Order), 3 items": {
            "bind only": lambda: place_untyped.bind(ORDER_PARAMS),
            "ours (msgspec)": lambda: place_typed.bind(ORDER_PARAMS),
            "msgspec.convert": lambda: msgspec.convert(ORDER_PARAMS, place_struct, strict=True),
            "pydantic": lambda: order_adapter.validate_python(ORDER_PARAMS["order"]),
            "ours (pydantic model)": lambda: place_pydantic.bind(ORDER_PARAMS),
        },
    }


_MEMORY = """
import dataclasses, resource, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
before = rss()
library = sys.argv[1]
@dataclasses.dataclass
class Item:
    sku: str
    qty: int
kinds = [dataclasses.make_dataclass(f"Order{i}", [("id", int), ("items", list[Item])])
         for i in range(50)]
if library == "msgspec":
    import msgspec
    made = [msgspec.defstruct(f"P{i}", [("a", int), ("order", k)]) for i, k in enumerate(kinds)]
    for m in made:
        msgspec.convert({"a": 1, "order": {"id": 1, "items": []}}, m)
elif library == "pydantic":
    import pydantic
    made = [pydantic.TypeAdapter(tuple[int, k]) for k in kinds]
    for m in made:
        m.validate_python((1, {"id": 1, "items": []}))
print(rss() - before)
"""


def _memory(library: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY, library], capture_output=True, text=True, check=True
    )
    return int(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per timed run")
    args = parser.parse_args()
    for case, runs in [*_cases().items(), *_dispatch_cases().items()]:
        costs = _per_call(runs, args.calls)
        base = next(iter(runs))
        print(f"\n{case}")
        print(f"  {'':22} {'us/call':>8} {'x ' + base:>12}")
        for label, cost in costs.items():
            print(f"  {label:22} {cost:8.2f} {cost / costs[base]:12.2f}")
    print("\nRSS growth: import + validators of 50 methods (KiB)")
    for library in ("none", "msgspec", "pydantic"):
        print(f"  {library:10} {_memory(library):8d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
