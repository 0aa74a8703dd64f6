"""Compose's variable interpolation, so the local backend sees the values Compose would.

Supported, as in the Compose specification: ``$VAR``, ``${VAR}``, ``${VAR:-default}`` (unset or
empty), ``${VAR-default}`` (unset), ``${VAR:?message}`` and ``${VAR?message}`` (an error),
``${VAR:+other}`` and ``${VAR+other}`` (a replacement when set), and ``$$`` for a literal ``$``.
Defaults may contain ``${...}`` themselves. An unset variable with no default is "" (Compose
warns about it; callers get the names in ``unset``). The ``.env`` file next to the Compose file
gives values the environment does not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Longest first: ":-" must win over "-".
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")


class InterpolationError(ValueError):
    """A required variable is missing, or a ``$`` expression is malformed."""


def interpolate(text: str, environ: Mapping[str, str], unset: set[str] | None = None) -> str:
    """``text`` with every ``$`` expression replaced; ``InterpolationError`` if one cannot be."""
    out: list[str] = []
    i = 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            out.append(text[i:])
            break
        out.append(text[i:dollar])
        following = text[dollar + 1 : dollar + 2]
        if following == "$":
            out.append("$")
            i = dollar + 2
        elif following == "{":
            end = _closing_brace(text, dollar + 2)
            out.append(_expand(text[dollar + 2 : end], environ, unset))
            i = end + 1
        else:
            match = _NAME.match(text, dollar + 1)
            if match is None:
                # Compose rejects a lone "$" too; "$$" is how to write one.
                raise InterpolationError(f"invalid '$' in {text!r} (write $$ for a literal $)")
            out.append(_lookup(match.group(), environ, unset))
            i = match.end()
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unclosed '${{' in {text!r}")


def _lookup(name: str, environ: Mapping[str, str], unset: set[str] | None) -> str:
    if name not in environ and unset is not None:
        unset.add(name)
    return environ.get(name, "")


def _expand(body: str, environ: Mapping[str, str], unset: set[str] | None) -> str:
    match = _NAME.match(body)
    if match is None:
        raise InterpolationError(f"invalid variable name in '${{{body}}}'")
    name, rest = match.group(), body[match.end() :]
    if not rest:
        return _lookup(name, environ, unset)
    operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
    if operator is None:
        raise InterpolationError(f"invalid expression '${{{body}}}'")
    argument = rest[len(operator) :]
    value = environ.get(name)
    # With ":" an empty value counts as missing, without it only an unset variable does.
    missing = value is None or (operator.startswith(":") and value == "")
    kind = operator[-1]
    if kind == "-":
        return interpolate(argument, environ, unset) if missing else str(value)
    if kind == "+":
        return "" if missing else interpolate(argument, environ, unset)
    if missing:  # "?"
        detail = interpolate(argument, environ, unset) if argument else "it is required"
        raise InterpolationError(f"required variable {name} is missing a value: {detail}")
    return str(value)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a Compose ``.env`` file ({} when there is none)."""
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        else:
            value = value.split(" #", 1)[0].rstrip()  # an unquoted value ends at a comment
        values[key.strip()] = value
    return values
