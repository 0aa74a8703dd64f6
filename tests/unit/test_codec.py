"""The strict wire codec: what ``loads`` refuses, what ``dumps`` writes, and that they agree."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import uuid
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service_template.protocol import ParseError, codec


@dataclasses.dataclass
class Reading:
    value: float


class Level(enum.Enum):
    HIGH = float("inf")
    NAN = float("nan")


def nested(depth: int, opener: str = "[", closer: str = "]", leaf: str = "1") -> bytes:
    """A JSON text whose containers nest exactly ``depth`` levels deep."""
    return (opener * depth + leaf + closer * depth).encode()


def nested_objects(depth: int) -> bytes:
    return ('{"a":' * depth + "1" + "}" * depth).encode()


def rejection(body: bytes | str) -> str:
    """The reason ``loads`` gives for refusing ``body`` (fails the test if it accepts it)."""
    with pytest.raises(ParseError) as info:
        codec.loads(body)
    assert info.value.code == -32700
    assert isinstance(info.value.data, dict)
    reason = info.value.data["reason"]
    assert isinstance(reason, str)
    assert reason
    return reason


# --- loads: what it refuses -------------------------------------------------------------------


def test_loads_rejects_invalid_utf8() -> None:
    assert "UTF-8" in rejection(b'{"a": "\xff\xfe"}')


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "[1, NaN]", '{"x": Infinity}'])
def test_loads_rejects_non_finite_constants(text: str) -> None:
    assert "not valid JSON" in rejection(text.encode())


@pytest.mark.parametrize("text", ["1e400", "-1e400", "[2.5e999]"])
def test_loads_rejects_floats_that_overflow_to_infinity(text: str) -> None:
    assert "too large" in rejection(text.encode())


def test_loads_rejects_a_5000_digit_integer() -> None:
    assert "too large" in rejection(b"7" * 5000)


def test_loads_rejects_an_integer_one_digit_past_the_limit() -> None:
    assert "too large" in rejection(b"9" * (codec.MAX_INT_DIGITS + 1))


def test_loads_accepts_the_longest_allowed_integer() -> None:
    assert codec.loads(b"9" * codec.MAX_INT_DIGITS) == int("9" * codec.MAX_INT_DIGITS)


def test_loads_accepts_the_longest_allowed_negative_integer() -> None:
    # The limit counts digits: the minus sign does not use up one of them.
    digits = "9" * codec.MAX_INT_DIGITS
    assert codec.loads(("-" + digits).encode()) == -int(digits)
    assert "too large" in rejection(("-" + digits + "9").encode())


@pytest.mark.parametrize("depth", [129, 500, 2000])
def test_loads_rejects_arrays_nested_deeper_than_max_depth(depth: int) -> None:
    assert "nesting too deep" in rejection(nested(depth))


@pytest.mark.parametrize("depth", [129, 2000])
def test_loads_rejects_objects_nested_deeper_than_max_depth(depth: int) -> None:
    assert "nesting too deep" in rejection(nested_objects(depth))


def test_loads_rejects_mixed_nesting_one_level_too_deep() -> None:
    body = ('[{"a":' * 64 + "[1]" + "}]" * 64).encode()  # 64 * 2 + 1 = 129 levels
    assert "nesting too deep" in rejection(body)


def test_max_depth_is_128() -> None:
    assert codec.MAX_DEPTH == 128


def test_loads_accepts_nesting_of_exactly_max_depth() -> None:
    value = codec.loads(nested(codec.MAX_DEPTH))
    for _ in range(codec.MAX_DEPTH):
        assert isinstance(value, list)
        value = value[0]
    assert value == 1
    assert codec.loads(nested_objects(codec.MAX_DEPTH)) is not None


def test_loads_counts_depth_not_brackets_inside_strings() -> None:
    # Many brackets, but inside a string: the cheap bracket count must not cause a rejection.
    body = json.dumps({"text": "[" * 500 + "{" * 500}).encode()
    assert codec.loads(body) == {"text": "[" * 500 + "{" * 500}


def test_loads_accepts_many_shallow_containers() -> None:
    body = json.dumps([[i] for i in range(1000)]).encode()
    assert codec.loads(body) == [[i] for i in range(1000)]


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        '{"a": 1, "a": 1}',
        '{"a": 1, "\\u0061": 2}',  # the same key once escaped
        '{"outer": {"b": 1, "b": 2}}',
        '[{"ok": 1}, {"c": 1, "d": 2, "c": 3}]',
    ],
)
def test_loads_rejects_duplicate_keys(text: str) -> None:
    assert "duplicate key" in rejection(text.encode())


@pytest.mark.parametrize("text", ["[1] x", "{} {}", '"a" "b"', "1 2", "[1]]", "null,"])
def test_loads_rejects_trailing_garbage(text: str) -> None:
    assert "Extra data" in rejection(text.encode())


def test_loads_rejects_a_utf8_byte_order_mark() -> None:
    rejection(b'\xef\xbb\xbf{"a": 1}')


@pytest.mark.parametrize(
    "text",
    ["", "   ", "{", "[1,]", "{'a': 1}", '{"a" 1}', "tru", "01", "+1", ".5", '"\x01"', "[1 2]"],
)
def test_loads_rejects_malformed_json(text: str) -> None:
    rejection(text.encode())


# --- loads: what it accepts -------------------------------------------------------------------


def test_loads_accepts_unicode_text() -> None:
    assert codec.loads('{"name": "Zoë 🙂 ключ 名前"}'.encode()) == {"name": "Zoë 🙂 ключ 名前"}


def test_loads_accepts_escaped_strings() -> None:
    body = rb'"quote \" slash \\ \/ \b\f\n\r\t \u00e9 \ud83d\ude42"'
    assert codec.loads(body) == 'quote " slash \\ / \b\f\n\r\t é 🙂'


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1.5", 1.5), ("-0.25", -0.25), ("1e3", 1000.0), ("2.5E-3", 0.0025), ("1e-400", 0.0)],
)
def test_loads_accepts_floats(text: str, expected: float) -> None:
    value = codec.loads(text.encode())
    assert type(value) is float
    assert value == expected


def test_loads_accepts_integers_beyond_64_bits() -> None:
    big = 2**200
    assert codec.loads(str(big).encode()) == big
    assert codec.loads(str(-big).encode()) == -big


def test_loads_accepts_surrounding_whitespace() -> None:
    assert codec.loads(b' \t\r\n[1, {"a": null}] \n') == [1, {"a": None}]


def test_loads_accepts_str_as_well_as_bytes() -> None:
    assert codec.loads('{"a": [true, false]}') == {"a": [True, False]}


# --- dumps --------------------------------------------------------------------------------------


def test_dumps_writes_compact_bytes() -> None:
    out = codec.dumps({"a": [1, 2], "b": {"c": None, "d": True}, "e": "x y"})
    assert isinstance(out, bytes)
    assert out == b'{"a":[1,2],"b":{"c":null,"d":true},"e":"x y"}'


def test_dumps_writes_unicode_as_utf8_json() -> None:
    out = codec.dumps({"name": "Zoë 🙂"})
    assert json.loads(out.decode("utf-8")) == {"name": "Zoë 🙂"}


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**100, -(10**100)])
def test_dumps_handles_integers_beyond_64_bits(number: int) -> None:
    assert codec.dumps({"n": number}) == b'{"n":' + str(number).encode() + b"}"


def test_dumps_turns_non_string_keys_into_strings() -> None:
    assert codec.dumps({1: "a", 2.5: "b", False: "c", None: "d"}) == (
        b'{"1":"a","2.5":"b","false":"c","null":"d"}'
    )


def test_dumps_escapes_lone_surrogates() -> None:
    out = codec.dumps({"s": "\ud800"})
    assert out == b'{"s":"\\ud800"}'
    assert codec.loads(out) == {"s": "\ud800"}


def test_dumps_handles_nesting_deeper_than_orjson_allows() -> None:
    # orjson stops at 255 levels; the standard library fallback takes over.
    value: Any = 1
    for _ in range(300):
        value = [value]
    assert codec.dumps(value) == b"[" * 300 + b"1" + b"]" * 300


@pytest.mark.parametrize("value", [[object()], {"a": object()}, {"a": {1: Exception()}}])
def test_dumps_raises_type_error_for_values_json_cannot_hold(value: Any) -> None:
    # Sets, bytes, Decimal and the like are written as their schemas say (test_result_types).
    with pytest.raises(TypeError):
        codec.dumps(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize(
    "wrap",
    [
        lambda v: v,
        lambda v: [1, None, v],
        lambda v: {"a": {"b": [None, (2, v)]}},
        Reading,
        lambda v: [Level.HIGH if v > 0 else Level.NAN],
    ],
    ids=["bare", "in a list", "nested in a tuple", "dataclass field", "enum value"],
)
def test_dumps_refuses_non_finite_floats_instead_of_writing_null(value: float, wrap: Any) -> None:
    # orjson alone writes NaN and infinities as null: a wrong answer, not an error.
    with pytest.raises(ValueError, match="not JSON compliant"):
        codec.dumps(wrap(value))


def test_dumps_keeps_null_and_finite_floats() -> None:
    value = {"a": None, "b": [1.5, None, -0.0, 1e308], "c": Reading(2.5)}
    assert codec.loads(codec.dumps(value)) == {
        "a": None,
        "b": [1.5, None, -0.0, 1e308],
        "c": {"value": 2.5},
    }


def test_suspect_flags_only_output_that_could_hide_a_non_finite_float() -> None:
    if codec._orjson is None:
        pytest.skip("the stdlib encoder refuses NaN itself")
    assert codec.encode([float("inf")]) == b"[null]"
    assert codec.suspect([float("inf")], b"[null]")
    with pytest.raises(ValueError):
        codec.check_finite([float("inf")])
    assert not codec.suspect({"a": 1.5}, codec.encode({"a": 1.5}))
    for scalar in (3, "null", True, None):  # never a float: no search, no walk
        assert not codec.suspect(scalar, codec.encode(scalar))
    assert codec.suspect([None], b"[null]")
    codec.check_finite([None])  # a real null passes the check


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_dumps_raises_on_non_finite_floats_on_the_stdlib_path(
    value: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(codec, "_orjson", None)
    with pytest.raises(ValueError, match="not JSON compliant"):
        codec.dumps([value])


def test_dumps_raises_on_nan_when_another_value_forces_the_fallback() -> None:
    # A big int makes orjson refuse the whole value; the stdlib then refuses the NaN.
    with pytest.raises(ValueError, match="not JSON compliant"):
        codec.dumps([float("nan"), 2**64])


def test_dumps_without_orjson_gives_the_same_compact_text(monkeypatch: pytest.MonkeyPatch) -> None:
    value = {"a": [1, 2.5, None, True], "b": "x", "n": 2**70}
    fast = codec.dumps(value)
    monkeypatch.setattr(codec, "_orjson", None)
    assert (
        codec.dumps(value) == fast == b'{"a":[1,2.5,null,true],"b":"x","n":1180591620717411303424}'
    )


def test_dumps_without_orjson_raises_type_error_for_an_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(codec, "_orjson", None)
    with pytest.raises(TypeError):
        codec.dumps({"a": object()})


class _Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class _Point:
    x: int
    when: datetime.date


_DECLARED = [
    datetime.date(2024, 2, 29),
    datetime.datetime(2024, 2, 29, 12, 30, 1, 250, tzinfo=datetime.UTC),
    datetime.time(8, 15),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    decimal.Decimal("10.25"),
    _Colour.RED,
    _Point(1, datetime.date(2024, 1, 2)),
    {3},
    b"\x00\xff",
    datetime.timedelta(days=1, seconds=2, microseconds=500_000),
]


@pytest.mark.parametrize("value", _DECLARED, ids=lambda v: type(v).__name__)
def test_both_encoders_write_the_declared_types_alike(
    value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A method's result is written the same whether orjson is installed or not, in the form
    # the type model behind the published schemas (msgspec) reads back as the same value.
    fast = codec.dumps(value)
    monkeypatch.setattr(codec, "_orjson", None)
    assert codec.dumps(value) == fast
    assert msgspec.convert(json.loads(fast), type(value), strict=True) == value


# --- round trip -------------------------------------------------------------------------------

_text = st.text(st.characters(categories=["L", "M", "N", "P", "S", "Z", "C"]), max_size=20)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text
)
_json_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_text, children, max_size=5),
    max_leaves=30,
)


@settings(database=None, max_examples=300, deadline=None)
@given(_json_values)
def test_loads_reads_back_what_dumps_writes(value: Any) -> None:
    assert codec.loads(codec.dumps(value)) == value


@settings(database=None, max_examples=100, deadline=None)
@given(_json_values)
def test_both_encoders_round_trip_to_the_same_value(value: Any) -> None:
    fast = codec.dumps(value)
    saved = codec._orjson
    codec._orjson = None  # not monkeypatch: hypothesis runs many examples in one test call
    try:
        slow = codec.dumps(value)
    finally:
        codec._orjson = saved
    assert codec.loads(fast) == codec.loads(slow) == value


def _strict_only(data: bytes) -> Any:
    """Decode without the canonical fast path (what loads did before it existed)."""
    saved = codec._orjson
    codec._orjson = None
    try:
        return codec.loads(data)
    finally:
        codec._orjson = saved


@settings(database=None, max_examples=300, deadline=None)
@given(_json_values, st.sampled_from(["orjson", "compact-stdlib"]))
def test_the_canonical_fast_path_agrees_with_the_strict_decoder(value: Any, writer: str) -> None:
    if writer == "orjson":
        data = codec.dumps(value)
    else:  # compact but escaped (ensure_ascii): the fast path must decline, not differ
        data = json.dumps(value, separators=(",", ":")).encode()
    assert codec.loads(data) == _strict_only(data)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":1,"a":2}',  # compact and otherwise canonical: orjson alone would keep a=2
        b'[{"id":1,"id":1}]',
        b"[123456789012345678901234567890]",  # orjson alone would turn it into a float
    ],
)
def test_compact_bodies_get_the_strict_verdict(body: bytes) -> None:
    try:
        expected: Any = _strict_only(body)
    except ParseError as exc:
        with pytest.raises(ParseError) as caught:
            codec.loads(body)
        assert caught.value.data == exc.data
    else:
        assert codec.loads(body) == expected
        assert type(codec.loads(body)[0]) is int
