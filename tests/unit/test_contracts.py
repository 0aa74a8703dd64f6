"""Typed params: converted to the declared types before the call, refused with -32602 naming
the parameter and the path of the bad value; results written from the same types; bad
declarations refused at start, naming the method and the parameter."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import enum
import json
import logging
import sys
import types
import uuid
from pathlib import Path
from typing import Any, Literal, TypedDict

import msgspec
import pydantic
import pytest

from service_template import MicroService, RPCError, private_api_method, public_method
from service_template.config import Settings
from service_template.contracts import build_contract
from service_template.errors import StartupError
from service_template.openrpc import build_document
from service_template.protocol import Dispatcher, InvalidParams, Method

from .rpc_doubles import FakeContext, invoke


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


@dataclasses.dataclass
class Line:
    sku: str
    qty: int


@dataclasses.dataclass
class Order:
    lines: list[Line]
    note: str = ""


class Address(TypedDict):
    street: str
    number: int


class Point(msgspec.Struct):
    x: int
    y: int


class Customer(pydantic.BaseModel):
    name: str
    age: int


@dataclasses.dataclass
class Card:
    number: str
    expiry: datetime.date


@dataclasses.dataclass
class Transfer:
    iban: str


class OutOfStock(RPCError):
    default_code = 4001
    default_message = "Out of stock"


class Shop(MicroService):
    name = "shop"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.received: list[Any] = []

    def _keep(self, *values: Any) -> Any:
        self.received.append(values)
        return None

    @public_method
    def add(self, a: int, b: int) -> int:
        return a + b

    @public_method
    def scale(self, factor: float) -> float:
        return factor * 2

    @public_method
    def place(self, order: Order) -> None:
        self._keep(order)

    @public_method
    def kinds(
        self,
        when: datetime.datetime,
        day: datetime.date,
        ident: uuid.UUID,
        amount: decimal.Decimal,
        colour: Colour,
        mode: Literal["fast", "slow"],
        tags: set[str],
        pair: tuple[int, str],
        address: Address,
        point: Point,
        maybe: int | None,
    ) -> None:
        self._keep(when, day, ident, amount, colour, mode, tags, pair, address, point, maybe)

    @public_method
    def anything(self, a, b: Any, c: object) -> None:  # type: ignore[no-untyped-def]
        self._keep(a, b, c)

    @public_method
    def variadic(self, first: int, *rest: int, flag: bool = False, **extra: float) -> None:
        self._keep(first, rest, flag, extra)

    @public_method
    def defaults(self, a: int, b: Colour = Colour.RED, c: list[int] | None = None) -> None:
        self._keep(a, b, c)

    @public_method
    def positional(self, a: int, /, b: int = 0) -> None:
        self._keep(a, b)

    @public_method
    def customer(self, who: Customer) -> None:
        self._keep(who)

    @public_method(errors=[OutOfStock, RPCError(4002, "Closed")])
    def order_out(self) -> Order:
        return Order([Line("a", 1)], "n")

    @public_method
    def results(self) -> dict[str, Any]:
        return {
            "when": datetime.datetime(2024, 5, 1, 12, 0, tzinfo=datetime.UTC),
            "ident": uuid.UUID(int=1),
            "amount": decimal.Decimal("10.10"),
            "colour": Colour.GREEN,
            "point": Point(1, 2),
            "customer": Customer(name="ann", age=3),
            "tags": frozenset({"x"}),
        }

    @private_api_method
    def secret(self, x: int) -> int:
        return x

    @public_method
    def crowd(self, first: Customer, *more: Customer, **extra: Customer) -> None:
        self._keep(first, more, extra)

    @public_method
    def pay(
        self, how: Card | Transfer, ref: str | uuid.UUID, when: list[int] | tuple[int, str]
    ) -> None:
        self._keep(how, ref, when)

    @public_method
    def raises_type_error(self, x: int) -> None:
        raise TypeError("a bug inside the method, not the caller's params")


SHOP = Shop(Settings())
METHODS = SHOP.build_registry()


def call(method: str, params: Any = None) -> dict[str, Any]:
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "id": 1}
    if params is not None:
        request["params"] = params
    dispatcher = Dispatcher(METHODS, invoke)
    raw = asyncio.run(dispatcher.dispatch(json.dumps(request).encode(), FakeContext()))
    assert raw is not None
    reply: dict[str, Any] = json.loads(raw)
    return reply


def received(method: str, params: Any) -> Any:
    SHOP.received.clear()
    reply = call(method, params)
    assert "error" not in reply, reply
    return SHOP.received[-1]


def refused(method: str, params: Any) -> dict[str, Any]:
    reply = call(method, params)
    assert reply["error"]["code"] == -32602, reply
    assert reply["error"]["message"] == "Invalid params"
    data: dict[str, Any] = reply["error"]["data"]
    return data


# --- conversion ---------------------------------------------------------------------------------


def test_a_method_receives_a_dataclass_not_a_dict() -> None:
    (order,) = received("place", {"order": {"lines": [{"sku": "a", "qty": 2}]}})
    assert order == Order([Line("a", 2)], "")


def test_a_method_receives_each_declared_type() -> None:
    values = received(
        "kinds",
        [
            "2024-05-01T12:00:00+02:00",
            "2024-05-01",
            "12345678-1234-5678-1234-567812345678",
            "10.10",
            "green",
            "slow",
            ["a", "a", "b"],
            [1, "x"],
            {"street": "Main", "number": 3},
            {"x": 1, "y": 2},
            None,
        ],
    )
    when, day, ident, amount, colour, mode, tags, pair, address, point, maybe = values
    assert when == datetime.datetime(
        2024, 5, 1, 12, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    assert day == datetime.date(2024, 5, 1)
    assert ident == uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert amount == decimal.Decimal("10.10")
    assert colour is Colour.GREEN
    assert mode == "slow"
    assert tags == {"a", "b"}
    assert pair == (1, "x")
    assert address == {"street": "Main", "number": 3}
    assert point == Point(1, 2)
    assert maybe is None


def test_a_decimal_also_comes_from_a_number() -> None:
    values = received(
        "kinds",
        {
            "when": "2024-05-01T12:00:00Z",
            "day": "2024-05-01",
            "ident": str(uuid.UUID(int=5)),
            "amount": 2.5,
            "colour": "red",
            "mode": "fast",
            "tags": [],
            "pair": [0, ""],
            "address": {"street": "", "number": 0},
            "point": {"x": 0, "y": 0},
            "maybe": 7,
        },
    )
    assert values[3] == decimal.Decimal("2.5")
    assert values[-1] == 7


def test_unannotated_any_and_object_parameters_take_any_json_value_unchanged() -> None:
    value = {"deep": [1, "x", None, 2.5]}
    assert received("anything", [value, value, value]) == (value, value, value)
    assert METHODS["anything"].contract is not None
    assert METHODS["anything"].contract.convert is None  # no converter, no cost


def test_star_args_and_star_kwargs_are_converted_item_by_item() -> None:
    assert received("variadic", [1, 2, 3]) == (1, (2, 3), False, {})
    assert received("variadic", {"first": 1, "flag": True, "x": 2}) == (1, (), True, {"x": 2.0})


def test_defaults_apply_when_a_param_is_left_out_and_given_ones_are_converted() -> None:
    assert received("defaults", [1]) == (1, Colour.RED, None)
    assert received("defaults", {"a": 1, "b": "green", "c": [3]}) == (1, Colour.GREEN, [3])


def test_positional_only_parameters_are_converted() -> None:
    assert received("positional", [1, 2]) == (1, 2)


def test_an_integer_is_accepted_for_a_float_and_stays_an_integer() -> None:
    # float reads as int | float, as Python's typing has it: add(1, 2) answers 3, not 3.0.
    assert repr(call("scale", [2])["result"]) == "4"
    assert repr(call("scale", [2.5])["result"]) == "5.0"
    assert refused("scale", ["2"])["expected"] == "int | float"


def test_a_pydantic_model_parameter_is_validated_by_pydantic() -> None:
    (who,) = received("customer", [{"name": "ann", "age": 3}])
    assert who == Customer(name="ann", age=3)
    data = refused("customer", [{"name": "ann", "age": "old"}])
    assert data["param"] == "who"
    assert data["path"] == "$.age"


def test_star_args_and_star_kwargs_of_pydantic_models_are_validated_item_by_item() -> None:
    ann, bob = {"name": "ann", "age": 3}, {"name": "bob", "age": 4}
    assert received("crowd", [ann, bob]) == (Customer(**ann), (Customer(**bob),), {})
    assert received("crowd", {"first": ann, "guest": bob}) == (
        Customer(**ann),
        (),
        {"guest": Customer(**bob)},
    )
    assert refused("crowd", [ann, bob, {"name": "cy", "age": "5"}]) == {
        "param": "more",
        "path": "$[1].age",
        "reason": "Input should be a valid integer",
    }
    data = refused("crowd", {"first": ann, "guest": {"name": "cy"}})
    assert (data["param"], data["path"]) == ("guest", "$.age")


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "param", "got"),
    [
        (["ten", 1], "a", "str"),
        ([1.5, 1], "a", "float"),
        ([1, True], "b", "bool"),
        ([1, None], "b", "null"),
        ({"a": 1, "b": "2"}, "b", "str"),
    ],
)
def test_a_value_of_the_wrong_type_is_invalid_params_naming_the_parameter(
    params: Any, param: str, got: str
) -> None:
    # Strict: JSON's own types are not coerced ("2" is not 2, true is not 1, 1.5 is not 1).
    assert refused("add", params) == {
        "param": param,
        "path": "$",
        "reason": f"Expected `int`, got `{got}`",
        "expected": "int",
    }


def test_a_nested_bad_value_is_located_by_a_path_inside_the_parameter() -> None:
    order = {"lines": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 1}, {"sku": "c", "qty": "x"}]}
    assert refused("place", [order]) == {
        "param": "order",
        "path": "$.lines[2].qty",
        "reason": "Expected `int`, got `str`",
        "expected": "int",
    }


def test_a_missing_field_of_a_dataclass_is_named() -> None:
    data = refused("place", [{"lines": [{"sku": "a"}]}])
    assert data == {
        "param": "order",
        "path": "$.lines[0]",
        "reason": "Object missing required field `qty`",
    }


def test_an_extra_keyword_of_the_wrong_type_is_named_by_its_key() -> None:
    data = refused("variadic", {"first": 1, "speed": "fast"})
    assert data["param"] == "speed"
    assert data["expected"] == "int | float"


def test_a_bad_star_args_item_names_its_position() -> None:
    data = refused("variadic", [1, 2, "three"])
    assert (data["param"], data["path"]) == ("rest", "$[1]")


@pytest.mark.parametrize(
    ("position", "value", "reason"),
    [
        (0, "yesterday", "Invalid RFC3339 encoded datetime"),
        (2, "not-a-uuid", "Invalid UUID"),
        (3, "ten", "Invalid decimal string"),
        (4, "blue", "Invalid enum value 'blue'"),
        (5, "medium", "Invalid enum value 'medium'"),
    ],
)
def test_strings_of_the_wrong_form_are_refused(position: int, value: str, reason: str) -> None:
    params: list[Any] = [
        "2024-05-01T12:00:00Z",
        "2024-05-01",
        str(uuid.UUID(int=1)),
        "1",
        "red",
        "fast",
        [],
        [1, "x"],
        {"street": "", "number": 0},
        {"x": 0, "y": 0},
        None,
    ]
    params[position] = value
    assert refused("kinds", params)["reason"] == reason


def test_an_arity_error_still_says_why() -> None:
    assert "reason" in refused("add", [1])


def test_invalid_params_log_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        refused("add", ["ten", 1])
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_a_type_error_inside_the_method_is_still_an_internal_error() -> None:
    assert call("raises_type_error", [1])["error"]["code"] == -32603


# --- results ------------------------------------------------------------------------------------


def test_results_are_written_from_their_declared_types() -> None:
    assert call("order_out")["result"] == {"lines": [{"sku": "a", "qty": 1}], "note": "n"}
    assert call("results")["result"] == {
        "when": "2024-05-01T12:00:00+00:00",
        "ident": "00000000-0000-0000-0000-000000000001",
        "amount": "10.10",
        "colour": "green",
        "point": {"x": 1, "y": 2},
        "customer": {"name": "ann", "age": 3},
        "tags": ["x"],
    }


# --- declarations -------------------------------------------------------------------------------


def registry_error(service: type[MicroService]) -> str:
    with pytest.raises(StartupError) as caught:
        service(Settings()).build_registry()
    return str(caught.value)


def test_an_unresolvable_annotation_stops_the_start_naming_method_and_parameter() -> None:
    class Broken(MicroService):
        @public_method
        def lookup(self, key: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
            pass

    message = registry_error(Broken)
    assert "Broken.lookup" in message
    assert "parameter 'key'" in message
    assert "NoSuchType" in message


class Handle:
    """A plain class: nothing in JSON can become one."""


def test_a_type_json_cannot_carry_stops_the_start() -> None:
    class Broken(MicroService):
        @public_method
        def use(self, handle: Handle) -> None:
            pass

    message = registry_error(Broken)
    assert "method 'use'" in message
    assert "parameter 'handle'" in message
    assert "use Any" in message


def test_a_union_msgspec_cannot_tell_apart_is_converted_by_pydantic() -> None:
    # Two dataclasses, two string forms, two array forms: msgspec refuses each union, pydantic
    # (installed here) takes that parameter, and the method still receives the declared types.
    card = {"number": "4111", "expiry": "2030-01-31"}
    assert received("pay", [card, "r-1", [1, 2]]) == (
        Card("4111", datetime.date(2030, 1, 31)),
        "r-1",
        [1, 2],
    )
    how, ref, when = received("pay", {"how": {"iban": "DE00"}, "ref": "x", "when": [1, "a"]})
    assert (how, ref, when) == (Transfer("DE00"), "x", (1, "a"))
    assert refused("pay", [{"number": "4111", "expiry": "soon"}, "r", []]) == {
        "param": "how",
        "path": "$.expiry",
        "reason": "Input should be a valid date in the format YYYY-MM-DD, input is too short",
    }
    assert refused("pay", [{"iban": 5}, "r", []])["param"] == "how"
    assert refused("pay", [card, 5, []])["param"] == "ref"
    assert refused("pay", [card, "r", [1, "a", 2.5]])["param"] == "when"


def test_the_pydantic_fallback_is_said_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    def either(value: Order | Line) -> None:
        pass

    with caplog.at_level(logging.INFO, logger="service_template.contracts"):
        contract = build_contract("either", either)
    assert [param.engine for param in contract.params] == ["pydantic"]
    assert "method 'either': parameter 'value'" in caplog.text
    assert "converted and described by pydantic" in caplog.text


class Left(msgspec.Struct):
    x: int


class Right(msgspec.Struct):
    y: int


def test_a_union_neither_library_can_convert_stops_the_start() -> None:
    class Broken(MicroService):
        @public_method
        def either(self, value: Left | Right) -> None:
            pass

    message = registry_error(Broken)
    assert "parameter 'value'" in message
    assert "is not a type JSON can carry" in message
    assert "install pydantic" not in message  # it is installed, and cannot either


def test_a_method_no_params_shape_can_call_stops_the_start() -> None:
    class Broken(MicroService):
        @public_method
        def odd(self, a: int, /, *, b: int) -> None:
            pass

    assert "neither a params array nor a params object" in registry_error(Broken)


def test_declared_errors_must_be_rpc_errors() -> None:
    class Broken(MicroService):
        @public_method(errors=[ValueError])
        def m(self) -> None:
            pass

    assert "errors= takes RPCError subclasses or instances" in registry_error(Broken)


def test_one_bad_method_does_not_hide_the_others_problems() -> None:
    class Broken(MicroService):
        @public_method
        def one(self, a: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
            pass

        @public_method
        def two(self, b: NoSuchOther) -> None:  # type: ignore[name-defined]  # noqa: F821
            pass

    message = registry_error(Broken)
    assert "Broken.one" in message
    assert "Broken.two" in message


def test_a_method_made_without_a_registry_is_not_converted() -> None:
    # The protocol layer alone (no contract attached) binds as before.
    def add(a: int, b: int) -> int:
        return a + b

    assert Method("add", add).bind(["x", "y"]) == (("x", "y"), {})


def odd_names(_x: int, __y: int, type: str, copy: int) -> None:
    """Names msgspec would refuse as fields (``__y``) or that shadow builtins."""


def test_any_parameter_name_works_and_is_what_errors_show() -> None:
    method = Method("odd", odd_names, contract=build_contract("odd", odd_names))
    given = {"_x": 1, "__y": 2, "type": "t", "copy": 3}
    assert method.bind(given) == ((), given)
    assert method.bind([1, 2, "t", 3]) == ((1, 2, "t", 3), {})
    with pytest.raises(InvalidParams) as caught:
        method.bind({**given, "__y": "2"})
    assert caught.value.data["param"] == "__y"


def test_the_readme_example_converts_refuses_and_declares_as_it_says() -> None:
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = text.split("### Typed parameters", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    module = types.ModuleType("readme_typed")  # a module of its own, as a reader's file is
    sys.modules[module.__name__] = module
    namespace = module.__dict__
    try:
        exec(compile(block, "README.md", "exec"), namespace)
        service = namespace["ShopService"](Settings())
        methods = service.build_registry()
        dispatcher = Dispatcher(methods, invoke)

        def answer(params: Any) -> dict[str, Any]:
            body = {"jsonrpc": "2.0", "method": "place", "params": params, "id": 1}
            raw = asyncio.run(dispatcher.dispatch(json.dumps(body).encode(), FakeContext()))
            assert raw is not None
            reply: dict[str, Any] = json.loads(raw)
            return reply

        lines = [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 1}]
        order = {"lines": lines, "deliver_on": "2024-03-01"}
        assert answer({"order": order}) == {"jsonrpc": "2.0", "result": "19.98", "id": 1}
        bad = {**order, "lines": [*lines, {"sku": "c", "qty": "2"}]}
        assert answer({"order": bad})["error"] == {
            "code": -32602,
            "message": "Invalid params",
            "data": {
                "param": "order",
                "path": "$.lines[2].qty",
                "reason": "Expected `int`, got `str`",
                "expected": "int",
            },
        }
        many = {**order, "lines": [{"sku": "a", "qty": 101}]}
        assert answer({"order": many})["error"] == {"code": 4001, "message": "Out of stock"}
        (place,) = build_document("shop", "1", methods.values())["methods"]
        assert place["paramStructure"] == "by-name"
        assert place["errors"] == [{"code": 4001, "message": "Out of stock"}]
    finally:
        del sys.modules["readme_typed"]


def test_object_inside_a_container_means_any_json_value() -> None:
    def store(record: dict[str, object], tags: list[object] | None = None) -> dict[str, object]:
        return record

    method = Method("store", store, contract=build_contract("store", store))
    value = {"a": [1, "x", None], "b": {"c": 2.5}}
    assert method.bind([value, ["t", 1]]) == ((value, ["t", 1]), {})
    with pytest.raises(InvalidParams) as caught:
        method.bind([["not", "an", "object"]])
    assert caught.value.data["param"] == "record"


def test_a_result_json_cannot_describe_is_published_as_anything_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def connect() -> Handle:
        return Handle()

    with caplog.at_level(logging.WARNING, logger="service_template.contracts"):
        contract = build_contract("connect", connect)
    assert contract.result is Any
    assert "method 'connect'" in caplog.text
    assert "its result" in caplog.text


def test_converting_by_name_leaves_the_request_params_as_sent() -> None:
    # The call log records the params after the call: they must be what the caller sent.
    for method, params in (
        ("customer", {"who": {"name": "ann", "age": 3}}),
        ("place", {"order": {"lines": [{"sku": "a", "qty": 2}]}}),
    ):
        sent = json.loads(json.dumps(params))
        _, kwargs = METHODS[method].bind(sent)
        assert not isinstance(next(iter(kwargs.values())), dict)
        assert sent == params
