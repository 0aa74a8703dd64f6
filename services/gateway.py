"""The gateway: one public entry point that calls ``hello`` and ``compute`` by service name.

Its peers are declared once, as ``SERVICE_PEERS`` on the gateway in ``compose/compose.yaml``
(``hello=http://hello:8000/api,...``): a Compose or Kubernetes service name is all it needs, and
the code names no list of its own. Its readiness is theirs: when a configured peer is not ready,
neither is the gateway, and calls that need it fail fast with a clear error.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from service_template import MicroService, RPCError, private_api_method, public_method
from service_template.client import ClientError
from service_template.service import readiness_check

BACKEND_UNAVAILABLE = -32010
log = logging.getLogger("services.gateway")


class GatewayService(MicroService):
    """Greets and computes by calling the hello and compute services."""

    name = "gateway"

    async def _call(self, peer: str, method: str, *args: Any) -> Any:
        client = self.get_service(peer)
        try:
            return await client.call(method, *args)
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
        return await self._call("hello", "say_hello", name)  # type: ignore[no-any-return]

    @public_method
    async def add(self, a: float, b: float) -> float:
        """Return a + b, computed by the compute service."""
        return await self._call("compute", "add", a, b)  # type: ignore[no-any-return]

    @public_method
    async def greet_and_add(self, name: str, a: float, b: float) -> dict[str, Any]:
        """Call both backends and return both answers."""
        return {"greeting": await self.greet(name), "sum": await self.add(a, b)}

    @private_api_method
    async def private_greet(self, name: str) -> str:
        """Forward to hello's private method with hello's token (``SERVICE_PEER_TOKEN_FILES``)."""
        return await self._call("hello", "say_private_hello", name)  # type: ignore[no-any-return]

    @readiness_check
    async def backends(self) -> bool:
        """Ready when every configured peer (``SERVICE_PEERS``) answers its readiness probe."""
        probes = [self.get_service(peer).health("readyz") for peer in self.settings.peers]
        try:
            return all(result.ok for result in await asyncio.gather(*probes))
        except ClientError:
            return False  # a backend that cannot be reached is simply not ready
