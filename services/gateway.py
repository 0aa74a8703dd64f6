"""The gateway: one public entry point that calls ``hello`` and ``compute`` by service name.

Its peers are declared once, as ``SERVICE_PEERS`` on the gateway in ``compose/compose.yaml``
(``hello=http://hello:8000/api,...``): a Compose or Kubernetes service name is all it needs, and
the code names no list of its own.

Failure stays local. The gateway is ready while a backend is down: a call that needs that
backend fails fast with ``-32010 <peer> is unavailable`` (naming the peer, never its address),
and a call that needs only the other backend keeps working. Its readiness does not follow its
peers' by default because readiness is what a load balancer acts on: were it to follow them, one
dead backend would take every gateway pod out of its Service at once, and callers would get
"connection refused" instead of that clear error. A peer the gateway truly cannot work without
is named in ``SERVICE_REQUIRED_PEERS`` (``required_peers``): only then does its readiness follow
that peer's ``/readyz``.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from service_template import (
    MicroService,
    RPCError,
    Settings,
    private_api_method,
    public_method,
    setting,
)
from service_template.client import ClientError

BACKEND_UNAVAILABLE = -32010
log = logging.getLogger("services.gateway")


class GatewaySettings(Settings):
    """The runtime's settings and the peers the gateway cannot work without."""

    required_peers: frozenset[str] = setting(
        default=frozenset(),
        help="peers without which the gateway is not ready (by default none: it stays ready)",
    )

    def check(self) -> Iterable[str]:
        yield from super().check()
        unknown = sorted(self.required_peers - set(self.peers))
        if unknown:
            known = ", ".join(sorted(self.peers)) or "none"
            yield f"required_peers: {', '.join(unknown)} not in peers (known: {known})"


class GatewayService(MicroService):
    """Greets and computes by calling the hello and compute services."""

    name = "gateway"
    settings_class = GatewaySettings
    settings: GatewaySettings

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        # One named check per required peer, so /readyz says which one is missing.
        for peer in sorted(self.settings.required_peers):
            self.add_readiness_check(f"peer:{peer}", functools.partial(self.peer_is_ready, peer))
        yield

    async def peer_is_ready(self, peer: str) -> bool:
        """Whether ``peer`` answers its readiness probe (a peer out of reach is not ready)."""
        try:
            return (await self.get_service(peer).health("readyz")).ok
        except ClientError:
            return False

    async def _call(self, peer: str, method: str, *args: Any, idempotent: bool = False) -> Any:
        client = self.get_service(peer)
        # An idempotent call (the peer's OpenRPC document marks it ``x-idempotent``) is retried
        # on a connection error or overload; any other is sent once (client/retry.py).
        namespace = client.idempotent if idempotent else client.methods
        try:
            return await getattr(namespace, method)(*args)
        except RPCError:
            raise  # the backend's own error passes through unchanged
        except Exception as exc:
            # Callers may be anyone: they learn which peer failed, by name only. Why it failed
            # (which says where the peer lives) is for the operator's log.
            log.warning(
                "%s is unavailable: %s",
                peer,
                exc,
                extra={"fields": {"peer": peer, "url": getattr(exc, "url", None)}},
            )
            raise RPCError(BACKEND_UNAVAILABLE, f"{peer} is unavailable", {"peer": peer}) from exc

    @public_method
    async def greet(self, name: str) -> str:
        """Return the hello service's greeting for ``name``."""
        return await self._call("hello", "say_hello", name, idempotent=True)  # type: ignore[no-any-return]

    @public_method
    async def add(self, a: float, b: float) -> float:
        """Return a + b, computed by the compute service."""
        return await self._call("compute", "add", a, b, idempotent=True)  # type: ignore[no-any-return]

    @public_method
    async def greet_and_add(self, name: str, a: float, b: float) -> dict[str, Any]:
        """Call both backends and return both answers."""
        return {"greeting": await self.greet(name), "sum": await self.add(a, b)}

    @private_api_method
    async def private_greet(self, name: str) -> str:
        """Forward to hello's private method with hello's token (``SERVICE_PEER_TOKEN_FILES``)."""
        return await self._call("hello", "say_private_hello", name)  # type: ignore[no-any-return]
