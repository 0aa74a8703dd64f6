"""One exposed method: its callable, its signature and how params bind to it.

Binding happens *before* the call (``inspect.Signature.bind``), so a ``TypeError`` raised inside
a method is an internal error, never mistaken for invalid params (gemstone matched TypeError text).
Then, when the method has a ``contract`` (``service_template.contracts``, attached when a service
builds its registry), its converter turns the bound JSON values into the declared types or
raises ``InvalidParams``; this module only calls it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import InvalidParams

Params = list[Any] | dict[str, Any] | None
Bound = tuple[tuple[Any, ...], dict[str, Any]]


class Contract(Protocol):
    """What binding needs of a method's type model: a converter, or None when every
    parameter accepts any JSON value. It takes and returns ``(args, kwargs)`` and raises
    ``InvalidParams`` for a value of the wrong type."""

    @property
    def convert(self) -> Callable[[tuple[Any, ...], dict[str, Any]], Bound] | None: ...


@dataclass(frozen=True, slots=True)
class Method:
    """An exposed method. ``func`` is already bound to its service instance."""

    name: str
    func: Callable[..., Any]
    requires_auth: bool = False
    timeout: float | None = None
    contract: Contract | None = None
    # False: a plain method that never blocks, run on the event loop (``blocking=False``).
    blocking: bool = True
    # Declared safe to run twice (``idempotent=True``): published for callers, who may retry it.
    idempotent: bool = False
    is_async: bool = field(init=False)
    signature: inspect.Signature = field(init=False)
    # Names of a plain signature (no defaults, no *args/**kwargs, no keyword-only or
    # positional-only parameters); None when the general binder is needed.
    _plain_names: tuple[str, ...] | None = field(init=False)
    _convert: Callable[[tuple[Any, ...], dict[str, Any]], Bound] | None = field(init=False)

    def __post_init__(self) -> None:
        signature = inspect.signature(self.func)
        plain = all(
            p.kind is p.POSITIONAL_OR_KEYWORD and p.default is p.empty
            for p in signature.parameters.values()
        )
        object.__setattr__(self, "signature", signature)
        object.__setattr__(self, "is_async", inspect.iscoroutinefunction(self.func))
        object.__setattr__(self, "_plain_names", tuple(signature.parameters) if plain else None)
        convert = self.contract.convert if self.contract is not None else None
        object.__setattr__(self, "_convert", convert)

    def bind(self, params: Params) -> Bound:
        """Return ``(args, kwargs)`` for the call, or raise ``InvalidParams`` saying why."""
        convert = self._convert
        if convert is None:
            return self._bind(params)
        args, kwargs = self._bind(params)
        return convert(args, kwargs)

    def _bind(self, params: Params) -> Bound:
        names = self._plain_names
        if names is not None:  # fast path, same verdicts as Signature.bind
            if params is None:
                if not names:
                    return (), {}
            elif isinstance(params, list):
                if len(params) == len(names):
                    return tuple(params), {}
            elif params.keys() == set(names):
                return (), params
        try:
            if params is None:
                bound = self.signature.bind()
            elif isinstance(params, list):
                bound = self.signature.bind(*params)
            else:
                bound = self.signature.bind(**params)
        except TypeError as exc:
            # Signature.bind's messages describe the caller's params, never server internals.
            raise InvalidParams(data={"reason": str(exc)}) from None
        return bound.args, bound.kwargs
