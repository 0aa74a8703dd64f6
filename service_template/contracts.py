"""The type model of an exposed method: one source for checking its params and describing them.

``build_contract(name, func)`` runs once per method when the service starts. It resolves the
annotations, builds the msgspec types that convert params on every call, and keeps the
annotations from which ``openrpc`` makes the published schemas: the document and the
behaviour come from the same types, so they cannot disagree (tests/unit/test_contract_agreement.py
checks a table of values against both).

Per call (``Contract.convert``, run by ``protocol.Method.bind`` after the arity check):

- unannotated, ``Any`` and ``object`` parameters accept any JSON value, unconverted; a method
  with only such parameters has no converter at all and costs nothing extra;
- every other parameter is converted by ``msgspec.convert(..., strict=True)`` into its declared
  type: a dataclass or TypedDict from an object, ``datetime``/``date``/``time``/``UUID`` from
  their ISO strings, ``Decimal`` from a string or a number, an ``Enum`` or ``Literal`` from one
  of its values, ``bytes`` from base64. Strict means JSON types are not coerced: ``"5"`` is not
  an ``int``, ``1.5`` is not an ``int``, ``true`` is not a number; an integer is accepted for a
  ``float``;
- a pydantic model (when pydantic is installed) is validated by pydantic's own ``TypeAdapter``,
  with the model's own configuration (pydantic's default is lax: ``"5"`` becomes ``5``).

An invalid value is ``InvalidParams`` (-32602) whose ``data`` is
``{"param": name, "path": "$.items[2].qty", "reason": "Expected `int`, got `str`"}`` (plus
``"expected": "int"`` when the reason names one type): ``param`` is the parameter, ``path`` a
JSONPath into that parameter's value (``"$"`` is the value itself).

A parameter or result whose annotation cannot be resolved, or that JSON cannot carry (a plain
class), is a ``StartupError`` naming the method and the parameter: the service does not start
with a contract it cannot keep.
"""

from __future__ import annotations

import inspect
import sys
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from .errors import StartupError
from .protocol import InvalidParams, RPCError

__all__ = ["Contract", "DeclaredError", "Param", "build_contract", "declared_errors"]

_EMPTY: Final = inspect.Parameter.empty
_FREE: Final = (Any, object, _EMPTY)
"""Annotations that accept any JSON value: no conversion, schema ``{}``."""


class _Omitted:
    """Default of a field whose parameter the caller did not pass (the signature's default
    applies); never reaches a method."""

    __slots__ = ()


_OMITTED: Final = _Omitted()
_VARIADIC: Final = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


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


@dataclass(frozen=True, slots=True)
class DeclaredError:
    """An application error a method declares it may answer (published in the document)."""

    code: int
    message: str


def declared_errors(where: str, errors: Sequence[Any]) -> tuple[DeclaredError, ...]:
    """Normalise ``errors=[...]`` of a decorator: ``RPCError`` subclasses (their
    ``default_code``/``default_message``) or instances; anything else is a ``StartupError``."""
    found: list[DeclaredError] = []
    for error in errors:
        if isinstance(error, type) and issubclass(error, RPCError):
            found.append(DeclaredError(error.default_code, error.default_message))
        elif isinstance(error, RPCError):
            found.append(DeclaredError(error.code, error.message))
        else:
            raise StartupError(
                f"{where}: errors= takes RPCError subclasses or instances, got {error!r}"
            )
    return tuple(found)


class Contract:
    """What a method accepts and returns, and the converter that holds callers to it.

    ``convert`` is None when no parameter needs converting; otherwise it takes the bound
    ``(args, kwargs)`` and returns them converted, or raises ``InvalidParams``.
    """

    def __init__(
        self,
        name: str,
        params: tuple[Param, ...],
        result: Any,
        param_structure: str,
        errors: tuple[DeclaredError, ...] = (),
    ) -> None:
        self.name = name
        self.params = params
        self.result = result
        self.param_structure = param_structure
        self.errors = errors
        self.error_codes = frozenset(error.code for error in errors)
        self.convert: Callable[..., tuple[tuple[Any, ...], dict[str, Any]]] | None = None
        if any(param.engine is not None for param in params):
            self.convert = _Converter(name, params).convert


class _Converter:
    """Converts bound params with msgspec types built once (and pydantic adapters, if any)."""

    def __init__(self, name: str, params: tuple[Param, ...]) -> None:
        prefix = "".join(part.capitalize() for part in name.replace(".", "_").split("_"))
        # Fields are named p0, p1...: any parameter name works (msgspec refuses "__x"), and
        # each is renamed to its parameter, which is what error paths then show.
        self._attr = {param.name: f"p{index}" for index, param in enumerate(params)}
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
                kwargs = dict(zip(names, msgspec.structs.astuple(values), strict=True))
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
        for index, name in enumerate(self._positional[: len(args)]):
            if name in self._pydantic:
                converted[index] = _validate_pydantic(self._pydantic[name], name, args[index])
        for name in self._pydantic.keys() & kwargs.keys():
            kwargs[name] = _validate_pydantic(self._pydantic[name], name, kwargs[name])
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


def _is_pydantic(annotation: Any) -> bool:
    """Whether ``annotation`` is (or contains) a pydantic model; pydantic is never imported
    for a service that does not use it."""
    if "pydantic" not in sys.modules:
        return False
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_is_pydantic(arg) for arg in typing.get_args(annotation))


def _pydantic_adapter(annotation: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(annotation)


def _validate_pydantic(adapter: Any, name: str, value: Any) -> Any:
    from pydantic import ValidationError

    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        path = "$" + "".join(
            f"[{part}]" if isinstance(part, int) else f".{part}" for part in first["loc"]
        )
        raise InvalidParams(data={"param": name, "path": path, "reason": first["msg"]}) from None


# -- building ------------------------------------------------------------------------------------


def build_contract(
    name: str, func: Callable[..., Any], errors: tuple[DeclaredError, ...] = ()
) -> Contract:
    """The contract of ``func`` exposed as ``name``; ``StartupError`` naming the method and the
    parameter when an annotation cannot be resolved or carried by JSON, or when no params
    shape (array or object) can call the method."""
    signature = inspect.signature(func)
    hints = _hints(name, func, signature)
    params = []
    for param in signature.parameters.values():
        annotation = hints.get(param.name, _EMPTY)
        engine = _engine(name, param.name, annotation)
        params.append(
            Param(
                param.name,
                param.kind,
                Any if annotation in _FREE else annotation,
                param.default,
                engine,
            )
        )
    result = hints.get("return", _EMPTY)
    _engine(name, "return", result)
    structure = _param_structure(name, signature)
    try:
        return Contract(name, tuple(params), Any if result in _FREE else result, structure, errors)
    except (TypeError, ValueError) as exc:  # e.g. a parameter name msgspec cannot use as a field
        raise StartupError(f"method {name!r}: its parameters cannot be checked ({exc})") from None


def _hints(name: str, func: Callable[..., Any], signature: inspect.Signature) -> dict[str, Any]:
    """Resolved annotations, one by one, so a failure names its parameter."""
    try:
        return typing.get_type_hints(func, include_extras=True)
    except Exception:  # noqa: S110 - found again below, parameter by parameter
        pass
    target = inspect.unwrap(func)
    namespace = getattr(target, "__globals__", {})
    resolved: dict[str, Any] = {}
    raw = dict(getattr(target, "__annotations__", {}))
    for key, annotation in raw.items():
        try:
            resolved[key] = typing.get_type_hints(
                _Holder(key, annotation), namespace, include_extras=True
            )[key]
        except Exception as exc:
            where = "its result" if key == "return" else f"parameter {key!r}"
            raise StartupError(
                f"method {name!r}: the annotation of {where}, {annotation!r}, cannot be "
                f"resolved ({type(exc).__name__}: {exc}); import the type at module level"
            ) from None
    return {
        key: value
        for key, value in resolved.items()
        if key in signature.parameters or key == "return"
    }


class _Holder:
    """Carries one annotation for ``typing.get_type_hints``."""

    def __init__(self, key: str, annotation: Any) -> None:
        self.__annotations__ = {key: annotation}


def _engine(method: str, param: str, annotation: Any) -> str | None:
    """Who converts values of ``annotation``: None (anything goes), msgspec or pydantic."""
    if annotation in _FREE:
        return None
    if _is_pydantic(annotation):
        return "pydantic"
    try:
        msgspec.json.schema(annotation)
    except (TypeError, ValueError) as exc:
        where = "its result" if param == "return" else f"parameter {param!r}"
        reason = str(exc).strip().splitlines()[-1]
        raise StartupError(
            f"method {method!r}: the annotation of {where}, {annotation!r}, is not a type JSON "
            f"can carry ({reason}); use Any to accept any JSON value"
        ) from None
    return "msgspec"


def _param_structure(name: str, signature: inspect.Signature) -> str:
    """``by-name``, ``by-position`` or ``either``: the params shapes that can call it."""
    params = signature.parameters.values()
    keyword_only = [p for p in params if p.kind is p.KEYWORD_ONLY]
    positional_only = [p for p in params if p.kind is p.POSITIONAL_ONLY]
    by_name = all(p.default is not p.empty for p in positional_only)
    by_position = all(p.default is not p.empty for p in keyword_only)
    if keyword_only and by_name:
        return "by-name"
    if positional_only and by_position:
        return "by-position"
    if by_name and by_position:
        return "either"
    raise StartupError(
        f"method {name!r} has required positional-only and required keyword-only parameters: "
        "neither a params array nor a params object can call it"
    )
