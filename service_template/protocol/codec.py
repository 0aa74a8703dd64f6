"""Strict JSON for the wire: decode only what RFC 8259 calls JSON, encode fast.

The standard library's decoder is lenient where a server must not be: it accepts NaN and
Infinity, turns ``1e400`` into ``inf``, keeps the last of duplicate keys and raises
RecursionError or ValueError (not a JSON error) on deep nesting and huge integers. ``loads``
closes each of those gaps and raises ``ParseError`` for all of them, so a caller has one
exception to handle. ``dumps`` uses orjson when it is installed (several times faster on the hot
path) and falls back to the standard library for what orjson refuses (integers beyond 64 bits,
non-string keys, lone surrogates).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from .errors import ParseError

_orjson: Any
try:  # optional fast encoder; the protocol works without it
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _orjson = None

MAX_DEPTH = 128
"""Deepest nesting of arrays and objects accepted in a request."""

MAX_INT_DIGITS = 4300
"""Longest integer literal accepted (Python's own default limit for int/str conversion)."""


class _Reject(ValueError):
    """Raised inside the decoder hooks; turned into ParseError by ``loads``."""


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Reject("duplicate key in object")
    return obj


def _parse_constant(name: str) -> Any:
    raise _Reject(f"{name} is not valid JSON")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Reject("number too large")
    return value


def _parse_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        raise _Reject("number too large")
    return int(text)


# Python's own limit on int/str conversion (3.11+, default 4300 digits) already refuses huge
# integers, with a ValueError that loads() reports as "number too large"; the per-integer
# hook (a Python call for every integer) is only needed where an application lifted it.
_LIMIT = sys.get_int_max_str_digits()
_decoder = json.JSONDecoder(
    object_pairs_hook=_object_pairs,
    parse_constant=_parse_constant,
    parse_float=_parse_float,
    parse_int=None if 0 < _LIMIT <= MAX_INT_DIGITS else _parse_int,
)


def loads(data: bytes | str) -> Any:
    """Decode one JSON text strictly; raise ``ParseError`` with a short reason otherwise."""
    if _orjson is not None and type(data) is bytes and b"\n" not in data and b'": ' not in data:
        value = _loads_canonical(data)
        if value is not _NOT_CANONICAL:
            return value
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError:
        raise ParseError(data={"reason": "body is not valid UTF-8"}) from None
    try:
        value = _decoder.decode(text)
    except _Reject as exc:
        raise ParseError(data={"reason": str(exc)}) from None
    except RecursionError:
        raise ParseError(data={"reason": "nesting too deep"}) from None
    except ValueError as exc:  # json.JSONDecodeError and int() limits
        raise ParseError(data={"reason": _describe(exc)}) from None
    # Counting brackets is a cheap upper bound on depth; only walk when it could be exceeded.
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise ParseError(data={"reason": "nesting too deep"})
    return value


_NOT_CANONICAL = object()


def _loads_canonical(data: bytes) -> Any:
    """orjson's value for ``data`` if ``data`` is exactly how orjson writes that value.

    Equality proves everything the strict path checks: a duplicate key would have been merged
    (shorter output), a number orjson cannot hold exactly (big integers become floats) or an
    escape it normalizes would be written differently, NaN and invalid UTF-8 do not parse. So
    the value is the one the strict decoder returns, at a fraction of the cost; any other body
    (pretty-printed, escaped, or invalid) takes the strict path.
    """
    try:
        value = _orjson.loads(data)
    except _orjson.JSONDecodeError:
        return _NOT_CANONICAL
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        raise ParseError(data={"reason": "nesting too deep"})
    try:
        canonical = _orjson.dumps(value)
    except (TypeError, _orjson.JSONEncodeError):  # e.g. deeper than orjson writes
        return _NOT_CANONICAL
    return value if canonical == data else _NOT_CANONICAL


def _describe(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return "number too large"


def _depth(value: Any) -> int:
    """Nesting depth of a decoded value, iteratively (no recursion limit to hit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in item)
    return deepest


def dumps(value: Any) -> bytes:
    """Encode to compact UTF-8 JSON; raise ``TypeError``/``ValueError`` if it cannot be JSON.

    JSON has no NaN or Infinity: orjson writes them as ``null``; on the stdlib fallback path
    (only taken for what orjson refuses) they raise ``ValueError``. Never emits ``NaN`` tokens.
    """
    if _orjson is not None:
        try:
            return _orjson.dumps(value)  # type: ignore[no-any-return]
        except (TypeError, _orjson.JSONEncodeError):
            pass  # fall through: the stdlib handles big ints, int keys and surrogates
    return json.dumps(value, allow_nan=False, ensure_ascii=True, separators=(",", ":")).encode()
