"""Where tracing plugs into the clients: ``SPANS`` is None unless tracing is on.

Standard library only: the clients look at one module attribute per request, and import
nothing of OpenTelemetry. ``service_template.tracing`` installs its ``ClientSpans`` here when a
process turns tracing on; each JSON-RPC request is then sent inside a CLIENT span, with the
span's ``traceparent`` in ``Exchange.extra``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from .exchange import Exchange

T = TypeVar("T")


class ClientSpans(Protocol):
    """Sends an exchange inside a span: ``send`` gets the exchange with the headers to add."""

    def sync(self, exchange: Exchange[T], send: Callable[[Exchange[T]], T]) -> T: ...

    async def aio(
        self, exchange: Exchange[T], send: Callable[[Exchange[T]], Awaitable[T]]
    ) -> T: ...


SPANS: ClientSpans | None = None


def install(spans: ClientSpans | None) -> None:
    """Send every client request through ``spans`` from now on (None: no spans)."""
    global SPANS  # noqa: PLW0603 (one seam, set when tracing starts, read per request)
    SPANS = spans
