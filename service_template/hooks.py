"""Per-call hooks: functions around every call, composed in the order a service lists them.

A hook is ``async def hook(call: CallInfo, proceed) -> result``. It runs before and after
everything else of the call (later hooks, authentication of private methods, parameter
binding, the method under its deadline): ``await proceed()`` returns the result or raises what
the call raised. So one hook can

- refuse the call: raise ``RPCError`` (the caller sees it) instead of calling ``proceed``;
- observe it: time ``await proceed()``, catch and re-raise its exception, read the result;
- authenticate: ``await call.authenticate()`` gives the principal (once per request).

The first hook listed is the outermost. With tracing on, the runtime's own hook (one span per
call, ``tracing.server``) comes before them all, so the span covers them and the span is current
while they run. Hooks are not called for unknown method names or
invalid requests, and run on the event loop: they must not block.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

from .protocol.calls import Around, CallInfo, Proceed

__all__ = ["CallInfo", "Hook", "Proceed", "compose"]

Hook = Around
"""``async def hook(call: CallInfo, proceed: Proceed) -> Any``"""


def compose(hooks: Sequence[Hook]) -> Around | None:
    """One ``around`` function that runs ``hooks`` nested, the first outermost; None for none
    (the dispatcher then takes its fast path). Raises ``TypeError`` naming a hook that is
    not an ``async def`` function."""
    for hook in hooks:
        if not _is_async(hook):
            raise TypeError(f"call hook {hook!r} must be an async function (call, proceed)")
    if not hooks:
        return None
    around = hooks[-1]
    for outer in reversed(hooks[:-1]):
        around = _nest(outer, around)
    return around


def _nest(outer: Hook, inner: Around) -> Around:
    async def nested(call: CallInfo, proceed: Proceed) -> object:
        return await outer(call, lambda: inner(call, proceed))

    nested.__qualname__ = f"{getattr(outer, '__qualname__', outer)} > ..."
    return nested


def _is_async(hook: object) -> bool:
    return inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(
        getattr(hook, "__call__", None)  # noqa: B004 - an object with an async __call__
    )
