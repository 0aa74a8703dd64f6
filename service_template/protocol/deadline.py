"""A call's deadline, carried from service to service.

While a method runs, ``DEADLINE`` holds the ``time.monotonic()`` instant its call must end by
(the runtime sets it). A client making a call from inside it sends what remains, in whole
milliseconds, in the ``X-Timeout-Ms`` header (the convention of Connect's ``Connect-Timeout-Ms``
and gRPC's ``grpc-timeout``), waits no longer than that, and makes no call at all once nothing
remains. The service that receives the header caps its own deadline for the call by it, and
answers -32002 at once when it arrives with nothing left: a gateway call with 2 s left never
starts a 30 s backend call.

A header that is not a whole number of milliseconds is ignored (the service's own deadline
applies); it cannot lengthen a deadline, only shorten it.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Mapping

HEADER = "X-Timeout-Ms"
_HEADER_KEY = HEADER.lower()
_MAX_MS = 10**12  # about 31 years: past this a value is noise, not a deadline

DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "service_template.deadline", default=None
)


_fallback: Callable[[], float | None] | None = None


def use_fallback(limit_of_current_call: Callable[[], float | None]) -> None:
    """Where ``remaining`` looks when ``DEADLINE`` is not set: the runtime gives the whole limit
    of the call that has only just started (an async method's first step runs without
    ``DEADLINE``, so that a call that calls nobody pays nothing for it)."""
    global _fallback  # noqa: PLW0603 (one hook, set by the runtime, read on the client's path)
    _fallback = limit_of_current_call


def remaining() -> float | None:
    """Seconds left before the current call's deadline (may be <= 0), or None outside a call."""
    deadline = DEADLINE.get()
    if deadline is not None:
        return deadline - time.monotonic()
    return _fallback() if _fallback is not None else None


def header_value(seconds: float) -> str:
    """The header's value for ``seconds`` left (at least 1 ms: 0 would mean expired)."""
    return str(max(1, int(seconds * 1000)))


def asked(headers: Mapping[str, str]) -> float | None:
    """Seconds the caller gave this call (``X-Timeout-Ms``; names lower-case), or None."""
    value = headers.get(_HEADER_KEY)
    if value is None or not value.isascii() or not value.isdigit() or len(value) > 13:
        return None
    ms = int(value)
    return ms / 1000 if ms <= _MAX_MS else None
