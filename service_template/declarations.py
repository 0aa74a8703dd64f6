"""How a service declares what it serves: the method decorators, the readiness-check mark, and
the method registry built from what they recorded.

Decorators only record a spec on the function and return it unchanged, so a method stays a
plain method that unit tests call directly. The registry is built when the service starts
(``MicroService.build_registry``): bad declarations fail there, with a message naming them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from .contracts import build_contract, declared_errors
from .errors import StartupError
from .protocol import Method

F = TypeVar("F", bound=Callable[..., Any])

_SPEC_ATTR = "__rpc_spec__"
_CHECK_ATTR = "__readiness_check__"
BUILTIN = "__service_template_builtin__"
# Dotted names are allowed (``users.get``); "rpc." is reserved by the specification (section 4).
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """What a decorator records on a function."""

    name: str | None
    private: bool
    timeout: float | None
    errors: tuple[Any, ...] = ()  # application errors it declares (contracts.declared_errors)
    blocking: bool = True
    idempotent: bool = False


def _mark(func: Any, spec: MethodSpec) -> Any:
    if not callable(func):
        raise StartupError(f"@public_method/@private_api_method need a function, got {func!r}")
    setattr(func, _SPEC_ATTR, spec)
    return func


@overload
def public_method(func: F, /) -> F: ...
@overload
def public_method(
    *,
    name: str | None = None,
    timeout: float | None = None,
    errors: Sequence[Any] = (),
    blocking: bool = True,
    idempotent: bool = False,
) -> Callable[[F], F]: ...
def public_method(
    func: Any = None,
    /,
    *,
    name: str | None = None,
    timeout: float | None = None,
    errors: Sequence[Any] = (),
    blocking: bool = True,
    idempotent: bool = False,
) -> Any:
    """Expose a method to every caller. ``name`` overrides the exposed name (dots allowed);
    ``timeout`` overrides the service's call deadline for this method, in seconds; ``errors``
    lists the application errors it may answer (``RPCError`` subclasses or instances), which
    the OpenRPC document publishes.

    ``blocking=False`` says a plain ``def`` method never blocks (pure computation, no I/O, no
    lock waits): it then runs on the event loop, saving the hop to the thread pool (a few
    microseconds; see the README's "Plain or async methods"). The default is safe: plain methods
    run in the thread pool, so one that waits holds a thread, never the server. A method marked
    ``blocking=False`` that does block stalls every call of the process meanwhile, and its
    deadline cannot interrupt it. No effect on ``async def`` methods (they run on the loop).

    ``idempotent=True`` promises that running a call twice with the same params does no more
    than running it once (a read, a pure computation, a put by key), so a caller may retry it
    when a connection broke mid-call. The OpenRPC document publishes it (``x-idempotent:
    true``); callers that know the contract send such calls as ``client.idempotent.name(...)``,
    which the client retries (``client/retry.py``). The runtime itself runs the method the same."""
    spec = MethodSpec(
        name,
        private=False,
        timeout=timeout,
        errors=tuple(errors),
        blocking=blocking,
        idempotent=idempotent,
    )
    return _mark(func, spec) if func is not None else lambda f: _mark(f, spec)


@overload
def private_api_method(func: F, /) -> F: ...
@overload
def private_api_method(
    *,
    name: str | None = None,
    timeout: float | None = None,
    errors: Sequence[Any] = (),
    blocking: bool = True,
    idempotent: bool = False,
) -> Callable[[F], F]: ...
def private_api_method(
    func: Any = None,
    /,
    *,
    name: str | None = None,
    timeout: float | None = None,
    errors: Sequence[Any] = (),
    blocking: bool = True,
    idempotent: bool = False,
) -> Any:
    """Expose a method only to callers whose token ``api_token_is_valid`` accepts.

    Fails closed: no token, an empty token or a rejected one gets -32001 "Access denied".
    ``name``, ``timeout``, ``errors``, ``blocking`` and ``idempotent`` as for ``public_method``."""
    spec = MethodSpec(
        name,
        private=True,
        timeout=timeout,
        errors=tuple(errors),
        blocking=blocking,
        idempotent=idempotent,
    )
    return _mark(func, spec) if func is not None else lambda f: _mark(f, spec)


def readiness_check(func: F) -> F:
    """Mark a method (sync or async, no arguments) as a readiness check; falsy or raising = fail."""
    setattr(func, _CHECK_ATTR, True)
    return func


def builtin(func: F) -> F:
    """Mark a method as MicroService's own default: the runtime tells an override (no mark)
    from it by ``is_builtin`` (access.py)."""
    setattr(func, BUILTIN, True)
    return func


def is_builtin(method: Callable[..., Any]) -> bool:
    """Whether ``method`` is MicroService's own, not a service's override (``builtin``)."""
    return getattr(method, BUILTIN, False) is True


def build_registry(service: object, timeouts: Mapping[str, float]) -> dict[str, Method]:
    """Collect ``service``'s decorated methods, bound to it, ``timeouts`` (``method_timeouts``)
    overriding their declared ones; raise ``StartupError`` listing every duplicate or invalid
    declaration, so a bad service fails at start, not on first call."""
    methods: dict[str, Method] = {}
    owners: dict[str, str] = {}
    problems: list[str] = []
    for attr, value in _members(type(service)):
        # Read through staticmethod/classmethod wrappers, so a decorator order that would
        # hide the spec is reported below instead of silently exposing nothing.
        func = value.__func__ if isinstance(value, staticmethod | classmethod) else value
        spec = getattr(value, _SPEC_ATTR, None) or getattr(func, _SPEC_ATTR, None)
        if not isinstance(spec, MethodSpec):
            continue
        name = attr if spec.name is None else spec.name
        where = f"{type(service).__name__}.{attr}"
        if not _NAME_RE.match(name):
            problems.append(f"{where}: {name!r} is not a valid method name")
            continue
        if name.startswith("rpc."):
            problems.append(f"{where}: names starting with 'rpc.' are reserved")
            continue
        if name in owners:
            problems.append(f"{where}: method name {name!r} is already used by {owners[name]}")
            continue
        if isinstance(value, staticmethod | classmethod):
            problems.append(f"{where}: expose instance methods, not static/class methods")
            continue
        timeout = timeouts.get(name, spec.timeout)
        if timeout is not None and timeout <= 0:
            problems.append(f"{where}: timeout must be positive, got {timeout}")
            continue
        if type(spec.blocking) is not bool:
            problems.append(f"{where}: blocking must be True or False, got {spec.blocking!r}")
            continue
        if type(spec.idempotent) is not bool:
            problems.append(f"{where}: idempotent must be True or False, got {spec.idempotent!r}")
            continue
        bound = getattr(service, attr)
        try:  # the type model: validation and the document's schemas (contracts.py)
            contract = build_contract(name, bound, declared_errors(where, spec.errors))
        except StartupError as exc:
            problems.append(f"{where}: {exc}")
            continue
        owners[name] = where
        methods[name] = Method(
            name,
            bound,
            spec.private,
            timeout,
            contract,
            blocking=spec.blocking,
            idempotent=spec.idempotent,
        )
    unknown = sorted(set(timeouts) - set(methods))
    if unknown:
        problems.append(f"method_timeouts names unknown methods: {', '.join(unknown)}")
    if problems:
        raise StartupError("invalid service declaration:\n  " + "\n  ".join(problems))
    return methods


def readiness_methods(service: object) -> dict[str, Callable[[], Any]]:
    """``service``'s ``@readiness_check`` methods, bound, by attribute name."""
    return {
        attr: getattr(service, attr)
        for attr, value in _members(type(service))
        if getattr(value, _CHECK_ATTR, False)
    }


def _members(cls: type) -> list[tuple[str, Any]]:
    """Attributes defined on the class and its bases (subclass wins), without triggering
    descriptors, in definition order."""
    seen: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for attr, value in vars(klass).items():
            seen[attr] = value
    return [(attr, value) for attr, value in seen.items() if not attr.startswith("__")]
