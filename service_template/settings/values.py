"""Reading one setting's value: ``Secret`` and the parsers, chosen from a field's type.

A parser takes the raw value from any source and returns the typed value or raises
``ValueError`` with a short reason. A string is read the same way whatever its source
(``"8000"``, ``"yes"``, ``"a=1.5,b=3"``), so a flag, a variable and a quoted YAML value mean the
same; YAML may also give the native form (a number, a boolean, a mapping, a list). Messages never
quote the value: the caller decides whether it may be shown (secrets may not).
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from ..peers import pairs, validate_url

__all__ = ["Parse", "Secret", "flag", "names", "parser_for", "seconds", "text", "url"]

Parse = Callable[[Any], Any]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class Secret:
    """A secret string that shows itself as ``***`` in ``repr``, ``str`` and f-strings.

    ``reveal()`` returns the value. Equality is identity, not value: a value ``==`` would invite
    timing-unsafe token checks and would let a failed assertion print both sides. Compare a
    presented token with ``hmac.compare_digest(secret.reveal(), presented)``.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself; pass it on, never log it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"


def kind(value: Any) -> str:
    """A value's type as a reader knows it, for messages that must not show the value."""
    return "null" if value is None else type(value).__name__


def text(value: Any) -> str:
    """Non-empty text, stripped."""
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {kind(value)}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def url(value: Any) -> str:
    """An http(s) URL with a host (the one check, shared with the peers parser)."""
    return validate_url(value)


def integer(value: Any) -> int:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError("not an integer") from None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"not an integer ({kind(value)})")


def number(value: Any) -> float:
    if isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError("not a number") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
    else:
        raise ValueError(f"not a number ({kind(value)})")
    if not math.isfinite(result):
        raise ValueError("must be a finite number")
    return result


def seconds(value: Any) -> float:
    """A positive, finite number of seconds."""
    try:
        result = number(value)
    except ValueError as exc:
        if "finite" not in str(exc):
            raise
        result = math.nan
    if not result > 0:
        raise ValueError("must be a positive number of seconds")
    return result


def flag(value: Any) -> bool:
    """A boolean: 1/0, true/false, yes/no, on/off (any case), or a YAML boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("not a boolean (use 1/0, true/false, yes/no or on/off)")


def secret(value: Any) -> Secret:
    """A non-empty ``Secret``; an empty one is almost always a secret that failed to arrive."""
    if isinstance(value, Secret):
        revealed = value.reveal()
    elif isinstance(value, str):
        revealed = value
    else:
        raise ValueError(f"expected text, got {kind(value)}")
    if not revealed:
        raise ValueError("must not be empty (leave it unset to run without it)")
    return value if isinstance(value, Secret) else Secret(revealed)


def optional(parse: Parse) -> Parse:
    """``parse``, but an empty string means "not set" (``${VAR:-}`` in Compose files)."""
    return lambda value: None if value == "" else parse(value)


def bounded(parse: Parse, low: float | None, high: float | None) -> Parse:
    """``parse``, then check ``low <= value <= high`` (either bound may be absent)."""

    def check(value: Any) -> Any:
        result = parse(value)
        if result is None:  # an optional setting left unset
            return None
        if low is not None and high is not None and not low <= result <= high:
            raise ValueError(f"must be between {low} and {high}")
        if low is not None and result < low:
            raise ValueError(f"must be >= {low}")
        if high is not None and result > high:
            raise ValueError(f"must be <= {high}")
        return result

    return check


def one_of(choices: Sequence[str]) -> Parse:
    """Text that is one of ``choices``, compared case-insensitively; returns the choice."""
    by_folded = {choice.casefold(): choice for choice in choices}

    def check(value: Any) -> str:
        choice = by_folded.get(text(value).casefold())
        if choice is None:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return choice

    return check


def mapping(parse_value: Parse) -> Parse:
    """``name=value,...`` (or a YAML mapping) with each value read by ``parse_value``."""

    def parse(value: Any) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, item in pairs(value):
            if not isinstance(key, str) or not key:
                raise ValueError(f"bad name {key!r}")
            if key in result:
                raise ValueError(f"{key!r} given twice")
            try:
                result[key] = parse_value(item)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return result

    return parse


def names(value: Any) -> list[str]:
    """``a,b,c`` (or a YAML list) of non-empty names, stripped, in order."""
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        raise ValueError(f"expected a list of names, got {kind(value)}")
    if not all(isinstance(item, str) for item in items):
        raise ValueError("expected a list of names")
    return [item.strip() for item in items if item.strip()]


_SCALARS: dict[Any, Parse] = {str: text, int: integer, float: number, bool: flag, Secret: secret}


def parser_for(hint: Any) -> Parse:
    """The parser for a field's type: ``str``, ``int``, ``float``, ``bool``, ``Secret``,
    ``X | None``, ``dict[str, X]``, ``list[str]``, ``tuple[str, ...]`` or ``frozenset[str]``.

    Raises ``TypeError`` for any other type: such a field needs its own ``parse=``.
    """
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union) and type(None) in args and len(args) == 2:
        inner = args[0] if args[1] is type(None) else args[1]
        # An empty secret stays an error: it is almost always one that failed to arrive.
        return secret if inner is Secret else optional(parser_for(inner))
    if origin is dict and len(args) == 2 and args[0] is str:
        return mapping(parser_for(args[1]))
    if origin in (list, tuple, frozenset) and args and args[0] is str:
        wrap: Callable[[list[str]], Any] = origin
        return lambda value: wrap(names(value))
    raise TypeError(f"no parser for {hint!r}: give the setting a parse= function")


def is_secret(hint: Any) -> bool:
    """Whether a type holds a ``Secret`` anywhere (``Secret``, ``Secret | None``, a mapping of
    them): its values are never shown, in errors or in ``config`` output."""
    return hint is Secret or any(is_secret(arg) for arg in typing.get_args(hint))
