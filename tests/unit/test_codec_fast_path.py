"""The verified orjson path of ``codec.loads`` and its large-body paths give the strict verdict.

``loads`` decodes with orjson and proves the strict rules with byte-level checks; bodies the
checks cannot vouch for, and bodies with many containers, take the strict decoders. These tests
compare every path with the strict decoder alone, on small bodies (hypothesis) and on bodies
large enough to take each large-body branch.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service_template.protocol import ParseError, codec

pytestmark = pytest.mark.skipif(codec._orjson is None, reason="the fast path needs orjson")


def strict_only(data: bytes) -> Any:
    """The strict C decoder's verdict, with no fast path: a value or ParseError."""
    try:
        return codec._loads_strict(data, codec._decoder)
    except ParseError as exc:
        return exc


def verdict(data: bytes) -> Any:
    try:
        return codec.loads(data)
    except ParseError as exc:
        return exc


def same(a: Any, b: Any) -> bool:
    if isinstance(a, ParseError) or isinstance(b, ParseError):
        return isinstance(a, ParseError) and isinstance(b, ParseError)
    return bool(json.dumps(a) == json.dumps(b))  # also tells 1 from 1.0 and keeps key order


def reason(data: bytes) -> str:
    with pytest.raises(ParseError) as info:
        codec.loads(data)
    assert info.value.code == -32700
    text = info.value.data["reason"]
    assert isinstance(text, str)
    return text


_keys = st.text(st.sampled_from('ab:"\\é'), max_size=3)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.lists(st.tuples(_keys, children), max_size=4)
    ),  # pairs: duplicate keys stay possible
    max_leaves=20,
)


def render(value: Any, space: str) -> str:
    """JSON text of ``value``; lists of pairs become objects, duplicates kept."""
    if isinstance(value, list) and value and all(isinstance(i, tuple) for i in value):
        members = (f"{json.dumps(k)}:{space}{render(v, space)}" for k, v in value)
        return "{" + f",{space}".join(members) + "}"
    if isinstance(value, list):
        return "[" + f",{space}".join(render(v, space) for v in value) + "]"
    return json.dumps(value)


@settings(database=None, max_examples=400, deadline=None)
@given(_values, st.sampled_from(["", " ", "\n  "]))
def test_fast_path_agrees_with_the_strict_decoder_on_any_spacing_and_duplicates(
    value: Any, space: str
) -> None:
    data = render(value, space).encode()
    assert same(verdict(data), strict_only(data)), data


@settings(database=None, max_examples=400, deadline=None)
@given(st.text(st.sampled_from('[]{}",:0123456789.eE+- \\ud83aNItrufalsn\n\t'), max_size=30))
def test_fast_path_agrees_with_the_strict_decoder_on_json_like_noise(text: str) -> None:
    data = text.encode()
    assert same(verdict(data), strict_only(data)), data


@settings(database=None, max_examples=300, deadline=None)
@given(
    st.integers(min_value=0, max_value=10**25),
    st.integers(min_value=0, max_value=10**20),
    st.integers(min_value=-400, max_value=400),
)
def test_fast_path_reads_number_literals_as_the_strict_decoder_does(
    whole: int, fraction: int, exponent: int
) -> None:
    for literal in (
        f"{whole}.{fraction}",
        f"{whole}.{fraction}e{exponent}",
        f"-{whole}E{exponent}",
    ):
        data = f"[{literal}, {whole}]".encode()
        assert same(verdict(data), strict_only(data)), data


@pytest.mark.parametrize(
    "body",
    [
        b'{"a:": 1, "a\\u003a": 2}',  # the same key, its colon escaped: colons cannot tell
        b'{"a": 1, "a\\u003A": 2}',
        b"[12345678901234567890123, 1]",  # a 64-bit overflow orjson would make a float
        b'[-9223372036854775809, "x"]',
        b'{"id": "12345678901234567890", "a": 1, "a": 2}',  # digits in a string, and a duplicate
        b'["\\ud800", 1]',  # a lone surrogate escape: orjson refuses it, the strict rules do not
        b"[" + b"9" * 400 + b"]",  # orjson reads it as infinity
    ],
)
def test_bodies_the_checks_cannot_vouch_for_get_the_strict_verdict(body: bytes) -> None:
    assert same(verdict(body), strict_only(body))
    result = verdict(body)
    if isinstance(result, list) and isinstance(result[0], int):
        assert result[0] == json.loads(body)[0]  # exact, not a float


# --- large bodies (> STRICT_C_LIMIT): every branch, and still the strict verdict ---------------

LARGE = codec.STRICT_C_LIMIT * 2


def padded(tail: bytes, filler: bytes = b"1,") -> bytes:
    """``[filler..., tail]`` longer than STRICT_C_LIMIT."""
    return b"[" + filler * (LARGE // len(filler)) + tail + b"]"


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (b'"\\ud800"', "\ud800"),
        (b"123456789012345678901234567890", 123456789012345678901234567890),
        (b"9" * 400, int("9" * 400)),
        (b'{"k": "a\\u003ab"}', {"k": "a:b"}),
    ],
)
def test_a_large_body_the_checks_cannot_vouch_for_is_decoded_strictly(
    tail: bytes, expected: Any
) -> None:
    value = codec.loads(padded(tail))
    assert value[-1] == expected
    assert len(value) == LARGE // 2 + 1


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        (b'{"a": 1, "a": 2}', "duplicate key"),
        (b'{"a\\u003a": 1, "a:": 2}', "duplicate key"),
        (b"NaN", ""),
        (b"1e400", ""),
        (b"[1,]", ""),
        (b"[" * 200 + b"]" * 200, "nesting too deep"),
        (b'"\xff"', ""),
    ],
)
def test_a_large_invalid_body_is_refused(tail: bytes, expected: str) -> None:
    assert expected in reason(padded(tail))


def test_a_large_body_with_many_brackets_inside_strings_is_accepted() -> None:
    body = json.dumps(["[{" * 30_000, {"a": "]}" * 30_000}]).encode()
    assert codec.loads(body) == ["[{" * 30_000, {"a": "]}" * 30_000}]


def test_a_body_with_max_containers_arrays_and_objects_is_accepted() -> None:
    body = b"[" + b"[]," * (codec.MAX_CONTAINERS - 2) + b"{}]"
    value = codec.loads(body)
    assert len(value) == codec.MAX_CONTAINERS - 1


@pytest.mark.parametrize("filler", [b"[],", b"{},", b'{"a":[1]},', b"[[[[1]]]],"])
def test_a_body_with_more_arrays_and_objects_than_max_containers_is_refused(
    filler: bytes,
) -> None:
    body = b"[" + filler * codec.MAX_CONTAINERS + b"1]"
    assert f"more than {codec.MAX_CONTAINERS} arrays and objects" in reason(body)


def test_between_the_fast_bound_and_max_containers_the_python_scanner_gives_the_same_value() -> (
    None
):
    items = [{"n": i, "tags": ["x", None, 1.5]} for i in range(codec.MAX_FAST_CONTAINERS)]
    body = json.dumps(items).encode()
    assert codec.MAX_FAST_CONTAINERS < body.count(b"[") + body.count(b"{") <= codec.MAX_CONTAINERS
    assert codec.loads(body) == items
    duplicated = body[:-1] + b', {"n": 1, "n": 2}]'
    assert "duplicate key" in reason(duplicated)


@pytest.mark.parametrize("size", ["small", "large"])
def test_max_containers_is_a_parameter_and_brackets_in_strings_do_not_count(size: str) -> None:
    pad = b" " * (LARGE if size == "large" else 0)
    five = b'[[],{},["[[[[{{{{"],{"a":[]}]' + pad  # 6 containers, 8 brackets in a string
    assert codec.loads(five, max_containers=6) == [[], {}, ["[[[[{{{{"], {"a": []}]
    assert "more than 5 arrays and objects" in reason_with(five, 5)


def reason_with(data: bytes, max_containers: int) -> str:
    with pytest.raises(ParseError) as info:
        codec.loads(data, max_containers=max_containers)
    return str(info.value.data["reason"])
