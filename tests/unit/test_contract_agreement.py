"""The published schemas and the runtime's verdicts are one contract: every value the schema of
a parameter accepts, the server accepts, and every value it refuses, the server refuses.

Checked with a real JSON Schema validator (jsonschema, draft 2020-12, formats asserted where
it can) on the document ``rpc.discover`` serves, against ``Method.bind`` of the same registry:
random JSON values (hypothesis) for annotations without string formats, and a table of cases
for the formatted ones.

What JSON Schema cannot say and the server still checks, so it is left out here on purpose
(README, "Typed parameters"): a float with no fraction (``1.0``) is an "integer" to JSON Schema
but not an ``int`` to the server; the text of a ``Decimal`` and, for validators that do not
assert formats, of a ``datetime``, are checked by the server only.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from typing import Any, Literal, TypedDict

import jsonschema
import msgspec
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service_template import MicroService, public_method
from service_template.config import Settings
from service_template.openrpc import build_document
from service_template.protocol import InvalidParams


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


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
    y: float


class Item(pydantic.BaseModel):
    """Validated by pydantic, not msgspec: the same agreement must hold."""

    sku: str
    qty: int
    x: float = 0
    tags: set[int] = set()


class Basket(pydantic.BaseModel):
    lines: list[Item]
    note: str | None = None
    day: datetime.date | None = None


ANNOTATIONS: dict[str, Any] = {
    "integer": int,
    "number": float,
    "boolean": bool,
    "string": str,
    "null": None,
    "list_of_int": list[int],
    "dict_of_float": dict[str, float],
    "optional_int": int | None,
    "int_or_str": int | str,
    "literal": Literal["a", 1],
    "str_enum": Colour,
    "int_enum": Level,
    "dataclass": Line,
    "nested": Order,
    "typed_dict": Address,
    "struct": Point,
    "pair": tuple[int, str],
    "set_of_int": set[int],
    "lines": list[Line],
    "deep": dict[str, list[int | None]],
    "pydantic_model": Item,
    "pydantic_nested": Basket,
    "pydantic_list": list[Item],
    # Unions msgspec cannot tell apart: converted and described by pydantic instead.
    "two_dataclasses": Line | Order,
    "dataclass_or_dict": list[Line | dict[str, int]],
    "two_arrays": list[int] | tuple[int, str],
}

FORMATTED: dict[str, Any] = {
    "date": datetime.date,
    "uuid": uuid.UUID,
    "aware_time": datetime.datetime,
    "str_or_uuid": str | uuid.UUID,
    "date_or_enum": datetime.date | Colour,
}


def _service() -> type[MicroService]:
    namespace: dict[str, Any] = {"name": "agree"}
    for name, annotation in {**ANNOTATIONS, **FORMATTED}.items():

        def method(self: Any, value: Any) -> None:
            pass

        method.__annotations__ = {"value": annotation, "return": None}
        namespace[name] = public_method(method)
    return type("Agree", (MicroService,), namespace)


SERVICE = _service()(Settings())
METHODS = SERVICE.build_registry()
DOCUMENT = build_document("agree", "1", METHODS.values())
COMPONENTS = DOCUMENT.get("components", {})
VALIDATORS = {
    entry["name"]: jsonschema.Draft202012Validator(
        {**entry["params"][0]["schema"], "components": COMPONENTS},
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    for entry in DOCUMENT["methods"]
}


def verdicts(method: str, value: Any) -> tuple[bool, bool]:
    """(schema accepts, server accepts) for ``value`` as the one param of ``method``."""
    schema_ok = VALIDATORS[method].is_valid(value)
    try:
        METHODS[method].bind([value])
    except InvalidParams:
        return schema_ok, False
    return schema_ok, True


def test_every_schema_is_a_valid_draft_2020_12_schema() -> None:
    for validator in VALIDATORS.values():
        jsonschema.Draft202012Validator.check_schema(validator.schema)


# Keys the dataclasses and TypedDicts use, so random objects often come close to valid ones.
_KEYS = st.sampled_from(
    ["sku", "qty", "lines", "note", "street", "number", "x", "y", "a", "tags", "day"]
)
_FLOATS = st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: not f.is_integer())
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | _FLOATS
    | st.sampled_from(["a", "red", "green", "", "1"])
    | st.text(max_size=4),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(_KEYS | st.text(max_size=2), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("method", sorted(ANNOTATIONS))
@settings(max_examples=150, deadline=None)
@given(value=_JSON)
def test_schema_and_server_agree_on_random_json(method: str, value: Any) -> None:
    schema_ok, server_ok = verdicts(method, value)
    assert schema_ok == server_ok, f"schema says {schema_ok}, server says {server_ok}"


@pytest.mark.parametrize(
    ("method", "value", "valid"),
    [
        ("integer", 3, True),
        ("integer", 2**70, True),
        ("integer", 3.5, False),
        ("integer", "3", False),
        ("integer", True, False),
        ("number", 3, True),
        ("number", False, False),
        ("literal", "a", True),
        ("literal", 1, True),
        ("literal", True, False),
        ("literal", "b", False),
        ("int_enum", 2, True),
        ("int_enum", 3, False),
        ("dataclass", {"sku": "a", "qty": 1}, True),
        ("dataclass", {"sku": "a", "qty": 1, "extra": [1]}, True),
        ("dataclass", {"sku": "a"}, False),
        ("nested", {"lines": []}, True),
        ("nested", {"lines": [{"sku": "a", "qty": "1"}]}, False),
        ("pair", [1, "a"], True),
        ("pair", [1, "a", 2], False),
        ("set_of_int", [1, 1], True),
        ("date", "2024-02-29", True),
        ("date", "2024-02-30", False),
        ("date", "yesterday", False),
        ("uuid", "12345678-1234-5678-1234-567812345678", True),
        ("uuid", "12345678", False),
        # pydantic is lax by default ("1" would become 1); the runtime holds it to the schema.
        ("pydantic_model", {"sku": "a", "qty": 1}, True),
        ("pydantic_model", {"sku": "a", "qty": "1"}, False),
        ("pydantic_model", {"sku": "a", "qty": True}, False),
        ("pydantic_model", {"sku": "a", "qty": 1, "x": 2}, True),
        ("pydantic_model", {"sku": "a", "qty": 1, "x": "2"}, False),
        ("pydantic_model", {"sku": "a", "qty": 1, "tags": [1, 1]}, True),
        ("pydantic_model", {"sku": 1, "qty": 1}, False),
        ("pydantic_nested", {"lines": [{"sku": "a", "qty": 1}], "day": "2024-02-29"}, True),
        ("pydantic_nested", {"lines": [], "day": "2024-02-30"}, False),
        ("pydantic_nested", {"lines": [], "day": 1700000000}, False),
        ("pydantic_nested", {"lines": [{"sku": "a", "qty": "1"}]}, False),
        ("pydantic_list", [{"sku": "a", "qty": 1}], True),
        ("pydantic_list", [{"sku": "a", "qty": 1.5}], False),
        ("two_dataclasses", {"sku": "a", "qty": 1}, True),
        ("two_dataclasses", {"lines": [{"sku": "a", "qty": 1}]}, True),
        ("two_dataclasses", {"sku": "a", "qty": "1"}, False),
        ("two_dataclasses", {"lines": [{"sku": "a"}]}, False),
        ("dataclass_or_dict", [{"sku": "a", "qty": 1}, {"street": 1}], True),
        ("dataclass_or_dict", [{"street": "s"}], False),
        ("two_arrays", [1, 2, 3], True),
        ("two_arrays", [1, "a"], True),
        ("two_arrays", [1, "a", "b"], False),
        ("str_or_uuid", "anything", True),
        ("str_or_uuid", 5, False),
        ("date_or_enum", "2024-02-29", True),
        ("date_or_enum", "red", True),
        ("date_or_enum", "2024-02-30", False),
        ("date_or_enum", "blue", False),
    ],
)
def test_schema_and_server_agree_on_a_table_of_cases(method: str, value: Any, valid: bool) -> None:
    assert verdicts(method, value) == (valid, valid)


def test_a_datetime_is_published_as_a_string_and_checked_by_the_server() -> None:
    # Offsets are optional (a naive datetime is accepted), which the "date-time" format
    # forbids, so msgspec publishes a plain string: the server alone refuses other text.
    assert verdicts("aware_time", "2024-02-29T10:00:00Z") == (True, True)
    assert verdicts("aware_time", "2024-02-29T10:00:00") == (True, True)
    assert verdicts("aware_time", 5) == (False, False)
    assert verdicts("aware_time", "soon") == (True, False)
