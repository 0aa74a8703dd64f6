"""The type model of an exposed method: one source for checking its params and describing them.

``build_contract(name, func)`` runs once per method when the service starts. It resolves the
annotations and keeps them, with the converter built from them (``conversion``), in a
``Contract``; ``openrpc`` makes the published schemas from the same annotations. The document
and the behaviour come from the same types, so they cannot disagree
(tests/unit/test_contract_agreement.py puts values through both).

- Unannotated, ``Any`` and ``object`` parameters accept any JSON value, unconverted (``object``
  inside a container, as in ``dict[str, object]``, is read as ``Any`` too); a method with only
  such parameters has no converter at all and costs nothing extra. A ``float`` parameter takes
  an integer as it is (``int | float``, as Python's typing reads ``float``).
- Other parameters are converted by msgspec, strictly, into the declared type; a pydantic model
  (when pydantic is installed) by pydantic's own ``TypeAdapter``, in pydantic's strict JSON
  mode whatever the model's configuration (lax mode would turn ``"5"`` into ``5``, which the
  published schema refuses).
- An invalid value is ``InvalidParams`` (-32602) whose ``data`` is
  ``{"param": name, "path": "$.items[2].qty", "reason": "Expected `int`, got `str`"}`` (plus
  ``"expected": "int"`` when the reason names one type): ``param`` is the parameter, ``path`` a
  JSONPath into that parameter's value (``"$"`` is the value itself).

A parameter whose annotation msgspec cannot convert but pydantic can (a union msgspec cannot
tell apart, such as two dataclasses or ``str | UUID``) is converted and described by pydantic
when it is installed, that parameter only, said in the log. A parameter whose annotation cannot
be resolved, or that JSON cannot carry (a plain class), is a ``StartupError`` naming the method
and the parameter: the service does not start with a contract it cannot keep. A result
annotation that cannot be resolved stops the start too; one JSON cannot describe (a result is
never converted) is published as ``{}`` with a warning in the log naming the method.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import operator
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec

from .conversion import Converter, Param, is_pydantic
from .errors import StartupError
from .protocol import RPCError

__all__ = ["Contract", "DeclaredError", "Param", "build_contract", "declared_errors"]

log = logging.getLogger("service_template.contracts")

_EMPTY: Final = inspect.Parameter.empty
_FREE: Final = (Any, object, _EMPTY)
"""Annotations that accept any JSON value: no conversion, schema ``{}``."""


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
            self.convert = Converter(name, params).convert


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
        annotation = _loosen(hints.get(param.name, _EMPTY))
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
    result = _loosen(hints.get("return", _EMPTY))
    try:
        _engine(name, "return", result)
    except StartupError as exc:  # results are not converted: describe them as anything
        log.warning("%s; its result is published as any JSON value", exc)
        result = Any
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


def _loosen(annotation: Any) -> Any:
    """``annotation`` as JSON values map to Python ones, in containers and unions too:
    ``object`` is ``Any`` (``dict[str, object]``, which msgspec would refuse), and ``float``
    is ``int | float``, as Python's typing reads it: an integer stays an integer (``add(1, 2)``
    of ``a: float, b: float`` answers 3, not 3.0), and the schema says "number" either way."""
    if annotation is object:
        return Any
    if annotation is float:
        return int | float
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    deep = _deep(args)
    if origin in (typing.Literal, typing.Annotated) or (object not in deep and float not in deep):
        return annotation
    loosened = tuple(_loosen(arg) if arg is not Ellipsis else arg for arg in args)
    if origin in (typing.Union, types.UnionType):
        return functools.reduce(operator.or_, loosened)
    return origin[loosened]


def _deep(args: tuple[Any, ...]) -> list[Any]:
    """Every type argument at any depth (to decide whether there is anything to loosen)."""
    found: list[Any] = []
    for arg in args:
        found.append(arg)
        if typing.get_origin(arg) is not typing.Literal:
            found.extend(_deep(typing.get_args(arg)))
    return found


def _engine(method: str, param: str, annotation: Any) -> str | None:
    """Who converts values of ``annotation``: None (anything goes), msgspec or pydantic."""
    if annotation in _FREE:
        return None
    if is_pydantic(annotation):
        return "pydantic"
    try:
        msgspec.json.schema(annotation)
    except (TypeError, ValueError) as exc:
        where = "its result" if param == "return" else f"parameter {param!r}"
        reason = str(exc).strip().splitlines()[-1]
        installed = importlib.util.find_spec("pydantic") is not None
        if param != "return" and installed and _pydantic_takes(annotation):
            log.info(
                "method %r: %s, %r, is converted and described by pydantic (msgspec cannot: %s)",
                method,
                where,
                annotation,
                reason,
            )
            return "pydantic"
        raise StartupError(
            f"method {method!r}: the annotation of {where}, {annotation!r}, is not a type JSON "
            f"can carry ({reason}); use Any to accept any JSON value"
            + ("" if param == "return" or installed else ", or install pydantic to convert it")
        ) from None
    return "msgspec"


def _pydantic_takes(annotation: Any) -> bool:
    """Whether pydantic (installed) converts and describes ``annotation``: what msgspec
    refuses and pydantic takes is mostly a union msgspec cannot tell apart (two dataclasses,
    ``str | UUID``, ``datetime | date``, ``list[int] | tuple[int, str]``). Pydantic is imported
    only when a method needs it."""
    from pydantic import TypeAdapter

    try:
        TypeAdapter(annotation).json_schema()
    except Exception:  # any refusal (no schema, no validator) means "no"
        return False
    return True


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
