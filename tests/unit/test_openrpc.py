"""The OpenRPC document: schemas from annotations, docs from docstrings, the document's shape."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal, Optional

import jsonschema
import pydantic
import pytest

from service_template import MicroService, private_api_method, public_method
from service_template.config import Settings
from service_template.contracts import build_contract
from service_template.errors import StartupError
from service_template.openrpc import build_document, describe_method, schema_for
from service_template.protocol import Method

# --- schemas ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("annotation", "schema"),
    [
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (str, {"type": "string"}),
        (bool, {"type": "boolean"}),
        (type(None), {"type": "null"}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (
            list[list[str]],
            {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
        ),
        (list, {"type": "array"}),
        (
            tuple[int, str],
            {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
                "items": False,
                "minItems": 2,
                "maxItems": 2,
            },
        ),
        # A set accepts repeated items (conversion keeps one of each): no uniqueItems.
        (set[str], {"type": "array", "items": {"type": "string"}}),
        (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
        (dict, {"type": "object"}),
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),  # noqa: UP045
        (int | None, {"anyOf": [{"type": "integer"}, {"type": "null"}]}),
        (int | str, {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        (Literal["a", "b", 3], {"enum": [3, "a", "b"]}),
        (Any, {}),
        (object, {}),
    ],
)
def test_an_annotation_gives_its_json_schema(annotation: Any, schema: dict[str, Any]) -> None:
    assert schema_for(annotation) == schema


def test_an_unannotated_parameter_accepts_anything() -> None:
    def method(value):  # type: ignore[no-untyped-def]
        return value

    assert describe_method(Method("m", method))["params"][0]["schema"] == {}


def test_a_schema_is_a_fresh_copy_each_time() -> None:
    schema_for(int)["type"] = "changed"
    assert schema_for(int) == {"type": "integer"}


# --- methods ------------------------------------------------------------------------------------


async def transfer(
    source: str, amount: float, note: str | None = None, *extra: int, **options: str
) -> dict[str, float]:
    """Moves money between accounts.

    The amount is in euros; ``note`` is kept with the transfer.
    """
    return {}


def test_params_are_listed_in_order_with_required_only_when_there_is_no_default() -> None:
    params = describe_method(Method("transfer", transfer))["params"]
    assert [(p["name"], p["required"]) for p in params] == [
        ("source", True),
        ("amount", True),
        ("note", False),
    ]
    assert params[1]["schema"] == {"type": "number"}
    assert params[2]["schema"] == {
        "anyOf": [{"type": "string"}, {"type": "null"}],
        "default": None,
    }


def test_star_args_and_star_kwargs_are_described_apart_from_the_params() -> None:
    entry = describe_method(Method("transfer", transfer))
    assert "extra" not in [p["name"] for p in entry["params"]]
    assert entry["x-var-positional"] == {
        "name": "extra",
        "required": False,
        "schema": {"type": "integer"},
    }
    assert entry["x-var-keyword"] == {
        "name": "options",
        "required": False,
        "schema": {"type": "string"},
    }


def test_the_result_schema_comes_from_the_return_annotation() -> None:
    entry = describe_method(Method("transfer", transfer))
    assert entry["result"] == {
        "name": "result",
        "schema": {"type": "object", "additionalProperties": {"type": "number"}},
    }


def test_the_docstring_gives_the_summary_and_the_description() -> None:
    entry = describe_method(Method("transfer", transfer))
    assert entry["summary"] == "Moves money between accounts."
    assert entry["description"] == "The amount is in euros; ``note`` is kept with the transfer."


def test_a_method_without_a_docstring_has_no_summary_or_description() -> None:
    def bare() -> None: ...

    entry = describe_method(Method("bare", bare))
    assert "summary" not in entry
    assert "description" not in entry


def test_a_one_line_docstring_gives_only_a_summary() -> None:
    def short() -> None:
        """Does one thing."""

    entry = describe_method(Method("short", short))
    assert entry["summary"] == "Does one thing."
    assert "description" not in entry


def test_private_methods_are_marked_as_requiring_a_token() -> None:
    def m() -> None: ...

    assert describe_method(Method("m", m, requires_auth=True))["x-requires-token"] is True
    assert describe_method(Method("m", m))["x-requires-token"] is False


def test_an_unresolvable_annotation_is_refused_naming_the_method_and_the_parameter() -> None:
    def m(value: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    with pytest.raises(StartupError, match=r"method 'm'.*parameter 'value'.*NoSuchType"):
        describe_method(Method("m", m))


# --- the document -------------------------------------------------------------------------------


class Shop(MicroService):
    """Sells things."""

    name = "shop"
    version = "2.1.0"

    @public_method
    def price(self, item: str, quantity: int = 1) -> float:
        """The price of ``quantity`` items."""
        return 1.0

    @private_api_method(name="stock.set")
    def set_stock(self, item: str, count: int) -> None:
        """Sets the stock of an item."""

    @public_method
    async def catalogue(self) -> list[str]:
        return []


def shop_document() -> dict[str, Any]:
    service = Shop(Settings())
    methods = service.build_registry()
    return build_document(service.service_name, Shop.version, methods.values(), "Sells things.")


def test_the_document_has_the_openrpc_1_3_required_members() -> None:
    doc = shop_document()
    assert re.fullmatch(r"1\.3\.\d+", doc["openrpc"])
    assert doc["info"] == {"title": "shop", "version": "2.1.0", "description": "Sells things."}
    assert isinstance(doc["methods"], list)
    for method in doc["methods"]:
        assert isinstance(method["name"], str)
        assert method["name"]
        assert isinstance(method["params"], list)
        for param in method["params"]:
            assert isinstance(param["name"], str)
            assert isinstance(param["schema"], dict)
            assert isinstance(param["required"], bool)
        assert set(method["result"]) == {"name", "schema"}
        assert method["paramStructure"] in ("by-name", "by-position", "either")


def test_the_document_lists_every_method_once_sorted_by_name() -> None:
    names = [method["name"] for method in shop_document()["methods"]]
    assert names == ["catalogue", "price", "stock.set"]


def test_the_document_describes_each_method_of_the_service() -> None:
    methods = {method["name"]: method for method in shop_document()["methods"]}
    assert methods["price"]["summary"] == "The price of ``quantity`` items."
    assert [p["required"] for p in methods["price"]["params"]] == [True, False]
    assert methods["stock.set"]["x-requires-token"] is True
    assert methods["price"]["x-requires-token"] is False
    assert methods["catalogue"]["result"]["schema"] == {
        "type": "array",
        "items": {"type": "string"},
    }


def test_a_document_without_a_description_leaves_it_out() -> None:
    doc = build_document("bare", "0.1.0", [])
    assert doc["info"] == {"title": "bare", "version": "0.1.0"}
    assert doc["methods"] == []


# --- idempotency ------------------------------------------------------------------------------


class Ledger(MicroService):
    @public_method(idempotent=True)
    async def balance(self, account: str) -> int:
        """A read: safe to retry."""
        return 0

    @private_api_method(idempotent=True, name="accounts.put")
    async def put(self, account: str, amount: int) -> None:
        """A put by key: the second run changes nothing."""

    @public_method
    async def transfer(self, amount: int) -> None:
        """Moves money each time it runs: not idempotent."""


def test_methods_declared_idempotent_are_published_as_such_and_only_those() -> None:
    service = Ledger(Settings())
    document = build_document("ledger", "1.0.0", service.build_registry().values())
    marked = {m["name"]: m.get("x-idempotent") for m in document["methods"]}
    assert marked == {"accounts.put": True, "balance": True, "transfer": None}


def test_an_idempotent_value_that_is_not_a_bool_fails_at_start() -> None:
    class Bad(MicroService):
        @public_method(idempotent="yes")  # type: ignore[call-overload,untyped-decorator]
        async def maybe(self) -> None:
            """A truthy string would silently promise retries are safe."""

    with pytest.raises(StartupError, match="idempotent must be True or False, got 'yes'"):
        Bad(Settings()).build_registry()


# --- named types of the same name ---------------------------------------------------------------


@dataclasses.dataclass
class Line:
    sku: str


class Inner:
    class Line(pydantic.BaseModel):  # another type of the same name, described by pydantic
        qty: int


class Basket(pydantic.BaseModel):
    line: Inner.Line


def takes_line(x: Line) -> None:
    """msgspec's Line."""


def takes_basket(y: Basket) -> None:
    """pydantic's Line, inside Basket."""


def test_two_types_of_one_name_each_keep_their_own_schema() -> None:
    methods = [
        Method(name, func, contract=build_contract(name, func))
        for name, func in (("a", takes_line), ("b", takes_basket))
    ]
    document = build_document("s", "1", methods)
    components = document["components"]

    def validator(method: int) -> jsonschema.Draft202012Validator:
        schema = document["methods"][method]["params"][0]["schema"]
        return jsonschema.Draft202012Validator({**schema, "components": components})

    assert validator(0).is_valid({"sku": "a"})
    assert not validator(0).is_valid({"qty": 1})
    assert validator(1).is_valid({"line": {"qty": 1}})
    assert not validator(1).is_valid({"line": {"sku": "a"}})
    assert set(components["schemas"]) == {"Line", "Line2"}
