"""The OpenRPC 1.x document of a service, built once at start from its methods' contracts.

Every schema comes from the same type model that converts params on each call
(``contracts``): msgspec's JSON Schema for the annotations, pydantic's for pydantic models.
Named types (dataclasses, TypedDicts, enums, structs, models) are published once under
``components.schemas`` and referenced from the methods. Per method: each parameter with its
``default``; ``paramStructure`` as the signature allows (``by-name`` with keyword-only
parameters, ``by-position`` with positional-only ones, ``either`` otherwise); ``*args`` and
``**kwargs`` as the extensions ``x-var-positional`` and ``x-var-keyword`` (a content descriptor
of one item each, since OpenRPC has no variadic params); the application ``errors`` it declares;
docs from docstrings; ``x-requires-token: true`` for private methods; ``x-idempotent: true``
for methods declared ``idempotent=True``, which a caller may retry (absent otherwise). OpenRPC
allows such ``x-`` fields on every object ("Specification Extensions"); its meta-schema
accepts them.
"""

from __future__ import annotations

import contextlib
import inspect
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec

from .contracts import Contract, Param, build_contract
from .protocol import Method, codec
from .version import project_version

OPENRPC_VERSION = "1.3.2"
REF_TEMPLATE = "#/components/schemas/{name}"

# A Host header's value that may stand in a published URL: a name or address, maybe a port.
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")


def schema_for(annotation: Any) -> dict[str, Any]:
    """A JSON Schema for one annotation, as the runtime accepts it (named types under
    ``$defs``); ``{}`` (anything) for ``Any``, ``object`` or no annotation."""
    if annotation in (Any, object, inspect.Parameter.empty):
        return {}
    schema: dict[str, Any] = _accepted(msgspec.json.schema(annotation))
    return schema


def contract_of(method: Method) -> Contract:
    """The contract attached when the registry was built, else one built now."""
    contract = method.contract
    if isinstance(contract, Contract):
        return contract
    return build_contract(method.name, method.func)


class _Schemas:
    """Schemas of many annotations made in one pass, so named types appear once."""

    def __init__(self, contracts: Sequence[Contract]) -> None:
        wanted: list[Any] = []
        pydantic: list[Any] = []
        for contract in contracts:
            for param in contract.params:
                target = pydantic if param.engine == "pydantic" else wanted
                target.append(param.annotation)
            wanted.append(contract.result)
        self.components: dict[str, Any] = {}
        self._known: dict[int, dict[str, Any]] = {}
        plain = [a for a in wanted if a is not Any]
        if plain:
            schemas, components = msgspec.json.schema_components(plain, ref_template=REF_TEMPLATE)
            self.components.update(_accepted(components))
            for annotation, schema in zip(plain, schemas, strict=True):
                self._known[id(annotation)] = _accepted(schema)
        for annotation in pydantic:
            self._known[id(annotation)] = self._pydantic(annotation)

    def _pydantic(self, annotation: Any) -> dict[str, Any]:
        from pydantic import TypeAdapter

        schema: dict[str, Any] = TypeAdapter(annotation).json_schema(
            ref_template=REF_TEMPLATE.replace("{name}", "{model}")
        )
        defs: dict[str, Any] = _accepted(schema.pop("$defs", {}))
        accepted: dict[str, Any] = _accepted(schema)  # as for msgspec: a set takes repeats
        renames = self._free_names(defs)
        if renames:
            defs = {renames.get(name, name): _renamed(d, renames) for name, d in defs.items()}
            accepted = _renamed(accepted, renames)
        self.components.update(defs)
        return accepted

    def _free_names(self, defs: dict[str, Any]) -> dict[str, str]:
        """New names for the named types of a pydantic schema whose names the document already
        gives another schema (another class of that name, or msgspec's schema of the class), so
        that no ``$ref`` ends up pointing at the wrong type."""
        renames: dict[str, str] = {}
        changed = True
        while changed:  # a renamed type changes the schemas that refer to it: look again
            changed = False
            for name, definition in defs.items():
                existing = self.components.get(name)
                if name in renames or existing in (None, _renamed(definition, renames)):
                    continue
                number = 2
                while f"{name}{number}" in self.components or f"{name}{number}" in defs:
                    number += 1
                renames[name] = f"{name}{number}"
                changed = True
        return renames

    def of(self, annotation: Any) -> dict[str, Any]:
        if annotation is Any:
            return {}
        return dict(self._known[id(annotation)])


def _renamed(schema: Any, renames: dict[str, str]) -> Any:
    """``schema`` with its ``$ref``s to the named types in ``renames`` pointing at the new
    names."""
    if isinstance(schema, list):
        return [_renamed(item, renames) for item in schema]
    if not isinstance(schema, dict):
        return schema
    copied = {key: _renamed(value, renames) for key, value in schema.items()}
    ref, prefix = schema.get("$ref"), REF_TEMPLATE.format(name="")
    if isinstance(ref, str) and ref.startswith(prefix) and ref[len(prefix) :] in renames:
        copied["$ref"] = prefix + renames[ref[len(prefix) :]]
    return copied


def _accepted(schema: Any) -> Any:
    """msgspec's schema, adjusted to what conversion accepts: a ``Decimal`` also from a number,
    a set from an array with repeated items (conversion keeps one of each); ``int | float``
    (a ``float`` parameter) as the one "number" it is."""
    if isinstance(schema, list):
        return [_accepted(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "string" and schema.get("format") == "decimal":
        return {"anyOf": [dict(schema), {"type": "number"}]}
    options = schema.get("anyOf")
    if (
        isinstance(options, list)
        and {"type": "integer"} in options
        and {"type": "number"} in options
    ):
        # int | float (what a float parameter accepts): "number" already includes integers.
        rest = [option for option in options if option != {"type": "integer"}]
        merged = {key: value for key, value in schema.items() if key != "anyOf"}
        if len(rest) == 1:
            return _accepted({**rest[0], **merged})
        return _accepted({**merged, "anyOf": rest})
    return {key: _accepted(value) for key, value in schema.items() if key != "uniqueItems"}


def _descriptor(param: Param, schemas: _Schemas) -> dict[str, Any]:
    schema = schemas.of(param.annotation)
    if param.default is not inspect.Parameter.empty:
        # As the wire would carry it (an Enum as its value, a date as a string); a default JSON
        # cannot show is still a default: the param stays optional, without "default".
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            schema["default"] = codec.loads(codec.dumps(param.default))
    return {"name": param.name, "required": param.required, "schema": schema}


def _describe(method: Method, contract: Contract, schemas: _Schemas) -> dict[str, Any]:
    doc = inspect.getdoc(method.func) or ""
    summary, _, description = doc.partition("\n")
    entry: dict[str, Any] = {
        "name": method.name,
        "params": [
            _descriptor(p, schemas)
            for p in contract.params
            if p.kind not in (p.kind.VAR_POSITIONAL, p.kind.VAR_KEYWORD)
        ],
        "result": {"name": "result", "schema": schemas.of(contract.result)},
        "paramStructure": contract.param_structure,
        "x-requires-token": method.requires_auth,
    }
    for param in contract.params:
        if param.kind is param.kind.VAR_POSITIONAL:
            entry["x-var-positional"] = _descriptor(param, schemas)
        elif param.kind is param.kind.VAR_KEYWORD:
            entry["x-var-keyword"] = _descriptor(param, schemas)
    if method.idempotent:
        entry["x-idempotent"] = True
    if contract.errors:
        entry["errors"] = [{"code": e.code, "message": e.message} for e in contract.errors]
    if summary.strip():
        entry["summary"] = summary.strip()
    if description.strip():
        entry["description"] = description.strip()
    return entry


def describe_method(method: Method) -> dict[str, Any]:
    """The OpenRPC Method Object for one method (its named types inlined under ``$defs`` is not
    done here: use ``build_document`` for a complete document)."""
    contract = contract_of(method)
    return _describe(method, contract, _Schemas([contract]))


def build_document(
    name: str,
    version: str,
    methods: Iterable[Method],
    description: str | None = None,
    servers: Sequence[dict[str, str]] = (),
) -> dict[str, Any]:
    """The service's OpenRPC document for ``methods`` (pass only the public ones for callers
    who may not see the private ones: the components then hold only the types those use)."""
    info: dict[str, Any] = {"title": name, "version": version}
    if description:
        info["description"] = description
    ordered = sorted(methods, key=lambda m: m.name)
    contracts = [contract_of(method) for method in ordered]
    schemas = _Schemas(contracts)
    document: dict[str, Any] = {"openrpc": OPENRPC_VERSION, "info": info}
    if servers:
        document["servers"] = [dict(server) for server in servers]
    document["methods"] = [
        _describe(method, contract, schemas)
        for method, contract in zip(ordered, contracts, strict=True)
    ]
    if schemas.components:
        document["components"] = {"schemas": schemas.components}
    return document


def service_documents(
    cls: type,
    name: str,
    methods: Mapping[str, Method],
    accessible_at: str | None,
    publish_private_methods: bool,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The documents of a service class serving ``methods``: the whole one, and the one an
    anonymous caller sees (the public methods only, unless ``publish_private_methods``; the
    same object when nothing is private).

    ``info.version`` is the class's ``version`` attribute, unless a method of that name hides it
    (a service may well expose a ``version`` method): then the project's version is published.
    ``info.description`` is the class's own docstring, never one inherited from MicroService.
    """
    declared = getattr(cls, "version", None)
    version = declared if isinstance(declared, str) else project_version()
    description = _own_doc(cls)
    servers = [{"name": name, "url": accessible_at}] if accessible_at else []
    document = build_document(name, version, methods.values(), description, servers)
    public = [method for method in methods.values() if not method.requires_auth]
    if publish_private_methods or len(public) == len(methods):
        return document, document
    return document, build_document(name, version, public, description, servers)


def addressed(document: dict[str, Any], name: str, headers: Mapping[str, str]) -> dict[str, Any]:
    """``document`` as served to a request: without a ``servers`` entry of its own (no
    ``accessible_at``), the address the request was sent to (its ``Host``, when that is one)."""
    if "servers" in document:
        return document
    host = headers.get("host", "")
    if not _HOST.fullmatch(host):
        return document
    scheme = "https" if headers.get("x-forwarded-proto") == "https" else "http"
    return {**document, "servers": [{"name": name, "url": f"{scheme}://{host}/api"}]}


def declared_error_codes(document: dict[str, Any]) -> set[int]:
    """The application error codes the OpenRPC document says the methods raise (each method's
    ``errors``, and the shared ones under ``components.errors`` that they may refer to): the
    metrics count these by value. One declaration, two readers."""
    errors: list[Any] = []
    for method in document.get("methods", ()):
        if isinstance(method, dict):
            errors.extend(method.get("errors", ()))
    components = document.get("components")
    if isinstance(components, dict) and isinstance(components.get("errors"), dict):
        errors.extend(components["errors"].values())
    codes = set()
    for error in errors:
        code = error.get("code") if isinstance(error, dict) else None
        if isinstance(code, int) and not isinstance(code, bool):
            codes.add(code)
    return codes


def _own_doc(cls: type) -> str | None:
    """The class's own docstring, not one inherited from MicroService."""
    doc = vars(cls).get("__doc__")
    return inspect.cleandoc(doc) if isinstance(doc, str) else None
