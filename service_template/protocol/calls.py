"""The call in progress: what a method or a hook can know about it, and who made it.

The dispatcher puts a ``CallInfo`` in a context variable before it runs each call (each batch
member gets its own) and takes it out after, so ``current_call()`` answers inside async
methods, plain methods (the runtime copies the context into its thread pool) and hooks.

Authentication is per request, not per call: a batch asks the transport once, whatever number
of members need it (``Authentication``), and every member sees the same principal.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Final, Protocol


class _NoId:
    """Marks a request without an ``id`` member: a notification (section 4.1).

    Kept apart from ``None`` because ``"id": null`` is a call that gets a response.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_ID"


NO_ID: Final = _NoId()


class Transport(Protocol):
    """What a call needs from the request that carried it (``dispatch.CallContext``)."""

    @property
    def request_id(self) -> str:
        """The transport's id of the request (HTTP: ``X-Request-Id``)."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The request's headers, names in lower case."""
        ...

    async def authenticate(self) -> Any:
        """The caller's principal, or None when the request proves no identity."""
        ...


class HeaderView(Mapping[str, str]):
    """Read-only, case-insensitive view of a request's headers: ``view["X-Tenant"]`` and
    ``get`` give a field's first value, ``get_list`` every value of a field sent twice."""

    __slots__ = ("_headers", "_repeated")

    def __init__(
        self, headers: Mapping[str, str], repeated: Sequence[tuple[str, str]] | None = None
    ) -> None:
        """``headers``: lower-case name -> first value; ``repeated``: (name, value) of the
        later values of fields sent more than once."""
        self._headers = headers
        self._repeated = repeated

    def __getitem__(self, name: str) -> str:
        return self._headers[name.lower()]

    def get(self, name: str, default: Any = None) -> Any:
        return self._headers.get(name.lower(), default)

    def get_list(self, name: str) -> list[str]:
        key = name.lower()
        first = self._headers.get(key)
        if first is None:
            return []
        return [first, *(value for other, value in self._repeated or () if other == key)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._headers

    def __iter__(self) -> Iterator[str]:
        return iter(self._headers)

    def __len__(self) -> int:
        return len(self._headers)

    def __repr__(self) -> str:
        return f"HeaderView({len(self._headers)} headers)"


class Authentication:
    """The principal of one request, asked of the transport at most once, on first need."""

    __slots__ = ("_transport", "_verdict")

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._verdict: asyncio.Future[Any] | None = None

    async def principal(self) -> Any:
        """The principal, or None: concurrent batch members share one answer."""
        if self._verdict is None:
            self._verdict = asyncio.ensure_future(self._transport.authenticate())
        return await asyncio.shield(self._verdict)

    def abandon(self) -> None:
        """The request is answered: stop an authentication still running (past its deadline)."""
        if self._verdict is not None and not self._verdict.done():
            self._verdict.cancel()

    def known(self) -> Any:
        """The principal if authentication has finished, else None (never waits)."""
        verdict = self._verdict
        if verdict is None or not verdict.done() or verdict.cancelled():
            return None
        return verdict.result()


class CallInfo:
    """One JSON-RPC call, as the method and the hooks see it (read it, do not keep it).

    - ``method``: the method name; ``id``: the request id (None for a notification, which
      ``is_notification`` tells apart from ``"id": null``);
    - ``request_id``: the HTTP request id (``X-Request-Id``), shared by a batch's members;
    - ``headers``: the request headers, read-only, names case-insensitive;
    - ``principal``: who the caller is, once authenticated (always before a private method
      runs); ``await call.authenticate()`` asks for it where it is not yet known.
    """

    __slots__ = ("_auth", "_transport", "id", "is_notification", "method")

    def __init__(
        self, method: str, request_id: Any, transport: Transport, auth: Authentication
    ) -> None:
        """``request_id`` is ``NO_ID`` for a notification."""
        self.method = method
        self.is_notification = request_id is NO_ID
        self.id = None if self.is_notification else request_id
        self._transport = transport
        self._auth = auth

    @property
    def request_id(self) -> str:
        return self._transport.request_id

    @property
    def headers(self) -> HeaderView:
        return HeaderView(self._transport.headers)

    @property
    def principal(self) -> Any:
        return self._auth.known()

    async def authenticate(self) -> Any:
        """Authenticate the request now (once per request) and return its principal or None."""
        return await self._auth.principal()

    def __repr__(self) -> str:
        return f"<CallInfo {self.method} id={self.id!r} request_id={self.request_id}>"


Proceed = Callable[[], Awaitable[Any]]
"""Runs the rest of a call (later hooks, authentication, the method); returns its result."""

Around = Callable[[CallInfo, Proceed], Awaitable[Any]]
"""Wraps every call: ``await around(call, proceed)`` returns the result or raises."""

# The call being run. Without hooks the dispatcher stores only the arguments of its CallInfo
# (a tuple costs a fifth of an object), and current_call() makes the object on first use.
CURRENT: contextvars.ContextVar[CallInfo | tuple[str, Any, Transport, Authentication]] = (
    contextvars.ContextVar("service_template.call")
)


def current_call() -> CallInfo:
    """The call being run: inside a method (async or plain) or a hook.

    Raises ``LookupError`` elsewhere, e.g. when a unit test calls a method directly.
    """
    try:
        call = CURRENT.get()
    except LookupError:
        raise LookupError("current_call() is only available while a call runs") from None
    if type(call) is tuple:
        call = CallInfo(*call)
        CURRENT.set(call)  # the same object for the rest of this call (the caller resets)
    assert isinstance(call, CallInfo)
    return call
