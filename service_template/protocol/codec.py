"""Strict JSON for the wire: decode only what RFC 8259 calls JSON, encode only JSON.

The standard library's decoder is lenient where a server must not be: it accepts NaN and
Infinity, turns ``1e400`` into ``inf``, keeps the last of duplicate keys and raises
RecursionError or ValueError (not a JSON error) on deep nesting and huge integers. ``loads``
closes each of those gaps and raises ``ParseError`` for all of them, so a caller has one
exception to handle. ``dumps`` uses orjson when it is installed and refuses what JSON cannot
hold (NaN and infinities included, which orjson alone would write as ``null``).

Cost, which matters because a server decodes on its event loop (bench/codec_cost.py measures
it): ``loads`` decodes with orjson and then verifies the strict rules with a few C-speed passes
over the bytes (no Python step per value), so a 1 MiB body costs milliseconds whatever its shape.
Two kinds of body take slower paths: one with more than ``MAX_FAST_CONTAINERS`` brackets (every
array or object is an allocation; one C call building hundreds of thousands of them would hold
the interpreter for a long time) is decoded by the standard library's pure-Python scanner, which
a thread can interrupt; and one that the fast checks cannot vouch for (integers beyond 64 bits,
``\\u003a`` escapes, lone surrogates) is decoded strictly, by the C decoder up to
``STRICT_C_LIMIT`` bytes and by the pure-Python scanner above. Callers decode large bodies in a
thread (``Dispatcher``), so the slow paths cost that request time, never the loop.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import json
import json.decoder
import json.scanner
import math
import sys
import uuid
from typing import Any

from .errors import ParseError

_orjson: Any
try:  # optional fast codec; the protocol works without it
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only where orjson is absent
    _orjson = None

MAX_DEPTH = 128
"""Deepest nesting of arrays and objects accepted in a request."""

MAX_INT_DIGITS = 4300
"""Longest integer literal accepted (Python's own default limit for int/str conversion)."""

MAX_CONTAINERS = 50_000
"""Default for the most arrays and objects accepted in one body (the ``max_containers``
setting). Each costs the server about a hundred bytes and an allocation, so ``[[],[],...]``
would turn 1 MiB into some 30 MiB and a long pause."""

MAX_FAST_CONTAINERS = 20_000
"""Above this many ``[`` and ``{`` bytes a body is decoded by the interruptible Python scanner."""

STRICT_C_LIMIT = 64 * 1024
"""Largest body the strict C decoder handles in one call (a few milliseconds at most)."""


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
_HOOKS: dict[str, Any] = {
    "object_pairs_hook": _object_pairs,
    "parse_constant": _parse_constant,
    "parse_float": _parse_float,
    "parse_int": None if 0 < _LIMIT <= MAX_INT_DIGITS else _parse_int,
}
_decoder = json.JSONDecoder(**_HOOKS)


def _python_decoder(max_containers: int) -> json.JSONDecoder:
    """A strict decoder whose scanner is pure Python: slow, but a thread running it yields the
    interpreter every switch interval, where one C call would hold it to the end. It refuses a
    body past ``max_containers`` as it goes, before building the rest. One per call: it counts,
    and the scanner keeps per-call state (its key memo)."""
    decoder = json.JSONDecoder(**_HOOKS)
    budget = [max_containers]
    defaults = vars(json.decoder)  # JSONArray, JSONObject: untyped in typeshed
    parse_array, parse_object = defaults["JSONArray"], defaults["JSONObject"]

    def counted(parse: Any) -> Any:
        def parse_counted(*args: Any, **kwargs: Any) -> Any:
            budget[0] -= 1
            if budget[0] < 0:
                raise _Reject(f"more than {max_containers} arrays and objects")
            return parse(*args, **kwargs)

        return parse_counted

    decoder.parse_array = counted(parse_array)  # type: ignore[attr-defined]
    decoder.parse_object = counted(parse_object)  # type: ignore[attr-defined]
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder


def loads(data: bytes | str, max_containers: int = MAX_CONTAINERS) -> Any:
    """Decode one JSON text strictly; raise ``ParseError`` with a short reason otherwise.

    More than ``max_containers`` arrays and objects is refused too (bytes input only).
    """
    if _orjson is not None and type(data) is bytes:
        containers = data.count(b"[") + data.count(b"{")  # an upper bound: strings hold some
        fast = containers <= MAX_FAST_CONTAINERS and containers <= max_containers
        if fast:
            value = _loads_verified(data, containers)
            if value is not _UNVERIFIED:
                return value
        if not fast or len(data) > STRICT_C_LIMIT:
            return _loads_strict(data, _python_decoder(max_containers))
    return _loads_strict(data, _decoder)


def _loads_strict(data: bytes | str, decoder: json.JSONDecoder) -> Any:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError:
        raise ParseError(data={"reason": "body is not valid UTF-8"}) from None
    try:
        value = decoder.decode(text)
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


_UNVERIFIED = object()
# Maps every byte to b" " except the ten digits, which become b"0": a run of 19 digits anywhere
# then shows up as one substring search.
_DIGITS = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGIT_RUN = b"0" * 19


def _loads_verified(data: bytes, containers: int) -> Any:
    """orjson's value for ``data`` once the strict rules are proven to hold, else a verdict.

    Returns ``_UNVERIFIED`` when only the strict decoder can decide; raises ``ParseError`` when
    the body is proven invalid. What orjson does differently from the strict decoder, and how
    each difference is ruled out without a Python step per value:

    - duplicate keys: orjson keeps the last. Outside strings a colon only ends a key, and orjson
      writes every string's colons literally, so re-encoding loses colons exactly when a member
      was dropped (unless the input escaped a colon as ``\\u003a``: then undecided).
    - integers beyond 64 bits: orjson makes them floats (or fails on 310+ digits). Any run of
      19 digits leaves the body undecided.
    - nesting: orjson allows 1024 levels, the strict rules 128 (a walk, only when the bracket
      count could exceed 128).
    - NaN, Infinity, ``1e400``, invalid UTF-8, bad syntax: orjson refuses them as well; lone
      surrogate escapes, which the strict decoder accepts, leave the body undecided.

    A body that is exactly orjson's own encoding of its value (the usual case for clients using
    this library) is proven by a byte comparison alone.
    """
    try:
        value = _orjson.loads(data)
    except _orjson.JSONDecodeError as exc:
        reason = str(exc)
        if len(data) <= STRICT_C_LIMIT or "surrogate" in reason or "infinity" in reason:
            return _UNVERIFIED  # the strict decoder says why (or accepts it after all)
        # Too large to decode twice: orjson's own reason, which names the position.
        raise ParseError(data={"reason": reason}) from None
    try:
        canonical = _orjson.dumps(value)
    except (TypeError, _orjson.JSONEncodeError):  # deeper than orjson writes
        return _UNVERIFIED if containers <= MAX_DEPTH else _too_deep()
    if canonical != data:
        if b"\\u003" in data or _LONG_DIGIT_RUN in data.translate(_DIGITS):
            return _UNVERIFIED
        if canonical.count(b":") != data.count(b":"):
            raise ParseError(data={"reason": "duplicate key in object"})
    if containers > MAX_DEPTH and _depth(value) > MAX_DEPTH:
        _too_deep()
    return value


def _too_deep() -> Any:
    raise ParseError(data={"reason": "nesting too deep"})


def _describe(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return "number too large"


def _depth(value: Any) -> int:
    """Nesting depth of a decoded value, iteratively (no recursion limit to hit).

    Only containers are pushed: a list of a million numbers costs one pass of a comprehension.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if type(item) is dict:
            item = item.values()
        elif type(item) is not list:
            continue
        deepest = max(deepest, level)
        level += 1
        stack.extend([(child, level) for child in item if type(child) in _CONTAINERS])
    return deepest


_CONTAINERS = (dict, list)


def dumps(value: Any) -> bytes:
    """Encode to compact UTF-8 JSON; raise ``TypeError``/``ValueError`` if it cannot be JSON.

    JSON has no NaN or Infinity: a value holding one (at any depth) raises ``ValueError``, on
    either encoder. Never emits ``NaN`` tokens, never turns them into ``null``.
    """
    data = encode(value)
    if suspect(value, data):
        check_finite(value)
    return data


def encode(value: Any) -> bytes:
    """``dumps`` without its last check: orjson writes NaN and infinities as ``null``, so a
    caller must run ``check_finite(value)`` when ``suspect(value, data)`` says so (a walk in
    Python, which a caller may prefer to run off its event loop for a large value)."""
    if _orjson is not None:
        try:
            return _orjson.dumps(value, default=_default)  # type: ignore[no-any-return]
        except (TypeError, _orjson.JSONEncodeError):
            pass  # fall through: the stdlib handles big ints, int keys and surrogates
    return json.dumps(
        value, allow_nan=False, ensure_ascii=True, separators=(",", ":"), default=_default
    ).encode()


def _default(value: Any) -> Any:
    """What JSON carries for the types a method may declare beyond JSON's own, as the
    published schemas describe them (``service_template.contracts``): orjson writes dataclasses,
    datetimes, UUIDs and enums itself; the standard library needs them all here. Duck-typed, so
    this layer imports neither msgspec nor pydantic."""
    for kinds, convert in _WRITERS:
        if isinstance(value, kinds):
            return convert(value)
    fields = getattr(value, "__struct_fields__", None)  # a msgspec Struct
    if fields is not None:
        names = getattr(value, "__struct_encode_fields__", fields)
        return {name: getattr(value, field) for field, name in zip(fields, names, strict=True)}
    dump = getattr(value, "model_dump", None)  # a pydantic model
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _duration(value: datetime.timedelta) -> str:
    """ISO 8601 duration, as msgspec writes and reads it (``P1DT2.5S``, ``-PT3S``)."""
    micro = abs(value) // datetime.timedelta(microseconds=1)
    days, rest = divmod(micro, 86_400_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    text = f"{seconds}.{fraction:06d}".rstrip("0").rstrip(".")
    return f"{'-' if value < datetime.timedelta(0) else ''}P{days}DT{text}S"


_WRITERS: tuple[tuple[type | tuple[type, ...], Any], ...] = (
    # Exact, as a string: the schema of a Decimal is a string with format "decimal".
    (decimal.Decimal, str),
    ((datetime.datetime, datetime.date, datetime.time), lambda value: value.isoformat()),
    (datetime.timedelta, _duration),
    (uuid.UUID, str),
    (enum.Enum, lambda value: value.value),
    ((set, frozenset), list),
    (bytes, lambda value: base64.b64encode(value).decode("ascii")),
)


class Encoded:
    """A value already encoded by ``dumps`` (in a worker thread, off the event loop): the
    dispatcher splices ``data`` into the response instead of encoding the value again."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def preencode(value: Any) -> Any:
    """``Encoded(dumps(value))``, or ``value`` itself when it cannot be JSON (whoever encodes
    it next reports why)."""
    try:
        return Encoded(dumps(value))
    except (TypeError, ValueError, OverflowError):
        return value


_FLOAT_FREE = frozenset({int, str, bool, type(None)})


def suspect(value: Any, data: bytes) -> bool:
    """Whether ``data`` (``encode(value)``) could hold a NaN or an infinity written as null.

    Cheap for the usual results: a scalar that is not a float is never suspect, and any other
    value only when ``data`` contains ``null`` at all.
    """
    if type(value) in _FLOAT_FREE:
        return False
    return b"null" in data


def check_finite(value: Any) -> None:
    """Raise ``ValueError`` if ``value`` holds a NaN or an infinity anywhere orjson looks.

    Walks dicts, lists, tuples, dataclass fields and enum values (what orjson encodes natively).
    """
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is float or isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError(f"Out of range float values are not JSON compliant: {item!r}")
        elif kind is dict or isinstance(item, dict):
            stack.extend(item.values())
        elif kind is list or kind is tuple or isinstance(item, list | tuple):
            stack.extend(item)
        elif isinstance(item, enum.Enum):
            stack.append(item.value)
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            stack.extend(getattr(item, field.name) for field in dataclasses.fields(item))
