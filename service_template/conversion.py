"""Per call: bound params converted to the declared types, or ``InvalidParams`` saying where.

A ``Converter`` is built once per method (``contracts.build_contract``) from its parameters. It
holds msgspec ``Struct`` types made for that signature: for a plain one (no defaults, no
``*args``/``**kwargs``, no keyword-only or positional-only parameters) a params array or object
converts in one C call; any other signature goes through a struct whose fields are all
optional, and ``args``/``kwargs`` are rebuilt by kind. Parameters annotated with a pydantic
model are validated by pydantic's ``TypeAdapter`` afterwards, in its strict JSON mode (pydantic is
imported only then).

Strict: JSON's own types are not coerced (``"5"`` is not an ``int``, ``1.5`` is not an ``int``,
``true`` is not a number); an integer is accepted for a ``float``. A refused value is
``InvalidParams`` with ``data = {"param", "path", "reason"[, "expected"]}`` (see ``contracts``).
"""

from __future__ import annotations

import inspect
import sys
import typing
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from .protocol import InvalidParams

__all__ = ["Converter", "Param", "is_pydantic"]

_EMPTY: Final = inspect.Parameter.empty
_VARIADIC: Final = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


class _Omitted:
    """Default of a field whose parameter the caller did not pass (the signature's default
    applies); never reaches a method."""

    __slots__ = ()


_OMITTED: Final = _Omitted()


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter as the contract sees it. ``annotation`` is resolved (``Any`` when none);
    ``engine`` is ``"msgspec"``, ``"pydantic"`` or ``None`` (any JSON value)."""

    name: str
    kind: inspect._ParameterKind
    annotation: Any
    default: Any
    engine: str | None

    @property
    def required(self) -> bool:
        """Whether a call must pass it (``*args`` and ``**kwargs`` never are)."""
        return self.default is _EMPTY and self.kind not in _VARIADIC


class Converter:
    """Converts bound params with msgspec types built once (and pydantic adapters, if any)."""

    def __init__(self, name: str, params: tuple[Param, ...]) -> None:
        prefix = "".join(part.capitalize() for part in name.replace(".", "_").split("_"))
        # A field is named as its parameter, except a name msgspec cannot take as an attribute
        # ("__x", mangled in the class it makes): then p<index>, renamed to the parameter's name,
        # which is what error paths show either way.
        self._attr = {
            param.name: f"p{index}" if param.name.startswith("__") else param.name
            for index, param in enumerate(params)
        }
        self._same_names = all(attr == name for name, attr in self._attr.items())
        fields: list[Any] = []
        self._var_kwargs_item: Any = Any
        for param in params:
            annotation = param.annotation if param.engine == "msgspec" else Any
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                annotation = tuple[annotation, ...]  # type: ignore[valid-type]
            elif param.kind is inspect.Parameter.VAR_KEYWORD:
                self._var_kwargs_item = annotation
                annotation = dict[str, annotation]  # type: ignore[valid-type]
            fields.append((self._attr[param.name], annotation, param.name))
        plain = all(
            p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is _EMPTY
            for p in params
        )
        # A plain signature (the usual one) converts a list or an object in one C call each.
        self._names = tuple(p.name for p in params) if plain else None
        required = [(attr, kind, msgspec.field(name=name)) for attr, kind, name in fields]
        self._array = msgspec.defstruct(f"{prefix}Args", required, array_like=True, gc=False)
        self._object = msgspec.defstruct(f"{prefix}Params", required, gc=False)
        # Any other signature: every field optional, then args/kwargs rebuilt by kind.
        self._general = msgspec.defstruct(
            f"{prefix}Bound",
            [(a, t, msgspec.field(default=_OMITTED, name=n)) for a, t, n in fields],
            gc=False,
        )
        # Build msgspec's type info now: a type it cannot convert fails the start, not a call.
        msgspec.inspect.multi_type_info([self._array, self._object, self._general])
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self._positional = tuple(p.name for p in params if p.kind in positional)
        self._keywords = frozenset(
            p.name for p in params if p.kind in (*positional[1:], inspect.Parameter.KEYWORD_ONLY)
        )
        self._var_args = next(
            (p.name for p in params if p.kind is inspect.Parameter.VAR_POSITIONAL), None
        )
        self._var_kwargs = next(
            (p.name for p in params if p.kind is inspect.Parameter.VAR_KEYWORD), None
        )
        self._pydantic = {
            p.name: _pydantic_adapter(p.annotation) for p in params if p.engine == "pydantic"
        }

    def convert(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        names = self._names
        try:
            if names is not None and not kwargs and len(args) == len(names):
                args = msgspec.structs.astuple(msgspec.convert(args, self._array, strict=True))
            elif names is not None and not args and len(kwargs) == len(names):
                values = msgspec.convert(kwargs, self._object, strict=True)
                kwargs = (
                    msgspec.structs.asdict(values)
                    if self._same_names
                    else dict(zip(names, msgspec.structs.astuple(values), strict=True))
                )
            else:
                args, kwargs = self._convert_general(args, kwargs)
        except msgspec.ValidationError as exc:
            raise InvalidParams(data=self._explain(str(exc), kwargs)) from None
        if self._pydantic:
            args, kwargs = self._convert_pydantic(args, kwargs)
        return args, kwargs

    def _explain(self, message: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        """``data`` for a refused value: the parameter's name, never a field index or ``[...]``."""
        data = _describe(message)
        path = data.get("path", "")
        if "param" not in data and path.startswith("$[") and self._names is not None:
            index, _, rest = path[2:].partition("]")  # the array of a plain signature
            data["param"], data["path"] = self._names[int(index)], "$" + rest
        elif self._var_kwargs and data.get("param") == self._var_kwargs and path[:6] == "$[...]":
            data["path"] = "$" + path[len("$[...]") :]  # which extra keyword: find it again
            for key, value in kwargs.items():
                if key not in self._keywords and not _valid(value, self._var_kwargs_item):
                    data["param"] = key
                    break
        return {key: data[key] for key in ("param", "path", "reason", "expected") if key in data}

    def _convert_general(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        positional = self._positional
        values: dict[str, Any] = dict(zip(positional, args, strict=False))
        if len(args) > len(positional) and self._var_args is not None:
            values[self._var_args] = args[len(positional) :]
        extra = {key: value for key, value in kwargs.items() if key not in self._keywords}
        values.update((key, value) for key, value in kwargs.items() if key in self._keywords)
        if extra and self._var_kwargs is not None:
            values[self._var_kwargs] = extra
        bound = msgspec.convert(values, self._general, strict=True)
        attr = self._attr
        new_args = tuple(getattr(bound, attr[name]) for name in positional[: len(args)])
        if len(args) > len(positional) and self._var_args is not None:
            new_args += getattr(bound, attr[self._var_args])
        new_kwargs = {key: getattr(bound, attr[key]) for key in kwargs if key in self._keywords}
        if extra and self._var_kwargs is not None:
            new_kwargs.update(getattr(bound, attr[self._var_kwargs]))
        return new_args, new_kwargs

    def _convert_pydantic(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        converted = list(args)
        positional, models = self._positional, self._pydantic
        for index, value in enumerate(args):
            if index < len(positional):
                if positional[index] in models:
                    name = positional[index]
                    converted[index] = _validate_pydantic(models[name], name, value)
            elif self._var_args is not None and self._var_args in models:
                # An item of *args, named as msgspec names it: the parameter and the position.
                where = f"$[{index - len(positional)}]"
                adapter = models[self._var_args]
                converted[index] = _validate_pydantic(adapter, self._var_args, value, where)
        kwargs = dict(kwargs)  # it may be the request's own params, which the call log reads
        for key, value in kwargs.items():
            owner = key if key in self._keywords else self._var_kwargs
            if owner is not None and owner in models:  # an extra keyword is named by its key
                kwargs[key] = _validate_pydantic(models[owner], key, value)
        return tuple(converted), kwargs


def _valid(value: Any, annotation: Any) -> bool:
    try:
        msgspec.convert(value, annotation, strict=True)
    except msgspec.ValidationError:
        return False
    return True


def _describe(message: str) -> dict[str, Any]:
    """``data`` of InvalidParams from a msgspec message such as
    "Expected `int`, got `str` - at `$.order.items[2].qty`"."""
    reason, _, where = message.partition(" - at `")
    where = where.rstrip("`")
    data: dict[str, Any] = {}
    if where.startswith("$."):
        rest = where[2:]
        cut = min((i for i in (rest.find("."), rest.find("[")) if i >= 0), default=len(rest))
        param, inner = rest[:cut], rest[cut:]
        data["param"] = param
        data["path"] = "$" + inner
    elif where:
        data["path"] = where
    data["reason"] = reason
    if reason.startswith("Expected `") and "`, got" in reason:
        data["expected"] = reason[len("Expected `") : reason.index("`, got")]
    return data


# -- pydantic, only where a parameter is a pydantic model ----------------------------------------


def is_pydantic(annotation: Any) -> bool:
    """Whether ``annotation`` is (or contains) a pydantic model; pydantic is never imported
    for a service that does not use it."""
    if "pydantic" not in sys.modules:
        return False
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(is_pydantic(arg) for arg in typing.get_args(annotation))


def _pydantic_adapter(annotation: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(annotation)


def _validate_pydantic(adapter: Any, name: str, value: Any, where: str = "$") -> Any:
    """``value`` (decoded from the request's JSON) as pydantic reads JSON in strict mode: the
    mode its JSON Schema describes (``"5"`` is not an ``int``, a date may be a string). Lax
    mode, pydantic's default and a model's own ``strict=False``, would accept values the
    published schema refuses (tests/unit/test_contract_agreement.py)."""
    from pydantic import ValidationError

    try:
        return adapter.validate_json(msgspec.json.encode(value), strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = _json_path(value, first["loc"], where, missing=first["type"] == "missing")
        raise InvalidParams(data={"param": name, "path": path, "reason": first["msg"]}) from None


def _json_path(value: Any, loc: tuple[int | str, ...], path: str, *, missing: bool) -> str:
    """A JSONPath into ``value`` (found at ``path``) from pydantic's ``loc``, which also names
    the member of a union it tried (``("A", "x")`` for field ``x`` of the dataclass ``A``):
    only the steps that exist in the value are kept, and the last one of a missing field."""
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            path, value = f"{path}[{part}]", value[part]
        elif isinstance(value, dict) and isinstance(part, str) and part in value:
            path, value = f"{path}.{part}", value[part]
        elif last and missing and isinstance(value, dict):
            path += f".{part}"
    return path
