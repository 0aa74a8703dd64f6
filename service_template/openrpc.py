"""The OpenRPC 1.x document of a service, built once at start from its method table.

Param schemas come from annotations (``int`` -> integer, ``list[str]`` -> array of string,
``X | None`` -> anyOf, ...); docs from docstrings. Private methods carry the specification
extension ``x-requires-token: true``.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Iterable
from typing import Any

from .protocol import Method

OPENRPC_VERSION = "1.3.2"

_SCALARS: dict[Any, dict[str, Any]] = {
    int: {"type": "integer"},
    float: {"type": "number"},
    str: {"type": "string"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    bytes: {"type": "string"},
}


def schema_for(annotation: Any) -> dict[str, Any]:  # noqa: PLR0911 (one return per kind)
    """A JSON Schema for a Python annotation; ``{}`` (anything) where it cannot tell."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return {}
    if annotation in _SCALARS:
        return dict(_SCALARS[annotation])
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [schema_for(arg) for arg in args]}
    if annotation in (list, tuple, set, frozenset) or origin in (list, tuple, set, frozenset):
        schema: dict[str, Any] = {"type": "array"}
        if args and origin is not tuple:
            schema["items"] = schema_for(args[0])
        return schema
    if annotation is dict or origin is dict:
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = schema_for(args[1])
        return schema
    if origin is typing.Literal:
        return {"enum": list(args)}
    return {}


def describe_method(method: Method) -> dict[str, Any]:
    """The OpenRPC Method Object for one method."""
    try:
        hints = typing.get_type_hints(method.func)
    except Exception:  # unresolvable forward references: fall back to raw annotations
        hints = {}
    doc = inspect.getdoc(method.func) or ""
    summary, _, description = doc.partition("\n")
    params = []
    for param in method.signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        params.append(
            {
                "name": param.name,
                "required": param.default is param.empty,
                "schema": schema_for(hints.get(param.name, param.annotation)),
            }
        )
    entry: dict[str, Any] = {
        "name": method.name,
        "params": params,
        "result": {
            "name": "result",
            "schema": schema_for(hints.get("return", inspect.Parameter.empty)),
        },
        "paramStructure": "either",
        "x-requires-token": method.requires_auth,
    }
    if summary.strip():
        entry["summary"] = summary.strip()
    if description.strip():
        entry["description"] = description.strip()
    return entry


def build_document(
    name: str, version: str, methods: Iterable[Method], description: str | None = None
) -> dict[str, Any]:
    """The service's OpenRPC document."""
    info: dict[str, Any] = {"title": name, "version": version}
    if description:
        info["description"] = description
    return {
        "openrpc": OPENRPC_VERSION,
        "info": info,
        "methods": [describe_method(method) for method in sorted(methods, key=lambda m: m.name)],
    }
