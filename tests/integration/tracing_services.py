"""Services for the tracing tests: methods that show which span is current where they run,
that call a peer from a plain method (blocking client, pool thread) and from an async one, and
that fail with an error code or a crash; and the end of a chain of calls. They are the suite's
own, so the tests hold whichever example services the project keeps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opentelemetry import trace

from service_template import CallInfo, MicroService, RPCError, public_method
from service_template.client import RemoteClient
from service_template.hooks import Hook, Proceed

REFUSED = -32050
GATED = -32051


def current_span_ids() -> dict[str, str]:
    """The trace and span id the OpenTelemetry API sees as current, in hex."""
    context = trace.get_current_span().get_span_context()
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


async def gate(call: CallInfo, proceed: Proceed) -> Any:
    """The service's own hook: stops ``gated`` calls, telling which span it ran in."""
    if call.method == "gated":
        raise RPCError(GATED, "stopped by the service's hook", current_span_ids())
    return await proceed()


class RelayService(MicroService):
    """Greets through its peer ``hello``; shows its spans."""

    name = "relay"

    def call_hooks(self) -> Sequence[Hook]:
        return (gate,)

    @public_method
    def say_hello(self, name: str) -> str:
        """A plain method (a pool thread) calling hello with the blocking client."""
        with RemoteClient(self.settings.peers["hello"], peer="hello") as hello:
            return f"relayed: {hello.call('say_hello', name)}"

    @public_method
    async def say_hello_async(self, name: str) -> str:
        """The same from an async method, with the service's async client."""
        return f"relayed: {await self.get_service('hello').call('say_hello', name)}"

    @public_method
    def plain_span(self) -> dict[str, str]:
        return current_span_ids()

    @public_method
    async def async_span(self) -> dict[str, str]:
        return current_span_ids()

    @public_method
    async def refuse(self) -> Any:
        raise RPCError(REFUSED, "refused on purpose", {"why": "a test"})

    @public_method
    async def gated(self) -> None:
        """Never runs: the service's hook refuses it."""

    @public_method
    def crash(self) -> Any:
        raise ValueError("a secret the caller must not see")


class HelloEndService(MicroService):
    """The last hop of a chain of relays: answers ``say_hello`` as the hello example does."""

    name = "hello"

    @public_method
    async def say_hello(self, name: str) -> str:
        return f"hello {name}"
