"""Attribute chaining that names a remote method: ``client.methods.users.get(id=1)``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
Invoke = Callable[[str, tuple[Any, ...], dict[str, Any]], T]


class Namespace(Generic[T]):
    """``ns.users.get(id=1)`` calls ``invoke("users.get", (), {"id": 1})``."""

    __slots__ = ("_invoke", "_name")

    def __init__(self, invoke: Invoke[T], name: str = "") -> None:
        self._invoke = invoke
        self._name = name

    def __getattr__(self, attr: str) -> Namespace[T]:
        # Leading underscores stay attributes so copy, pickle and IPython probes do not
        # become method names.
        if attr.startswith("_"):
            raise AttributeError(attr)
        return Namespace(self._invoke, f"{self._name}.{attr}" if self._name else attr)

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        if not self._name:
            raise TypeError("name a method first, e.g. client.methods.say_hello(...)")
        return self._invoke(self._name, args, kwargs)

    def __repr__(self) -> str:
        return f"<JSON-RPC method {self._name!r}>" if self._name else "<JSON-RPC methods>"
