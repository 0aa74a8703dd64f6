"""Benchmark peer: this runtime's gateway, answering add(a, b) by calling a backend's add.

Run by ``python -m service_template serve bench/servers/twohop_gateway.py:GatewayService`` with
``SERVICE_PEERS=backend=http://127.0.0.1:P/api`` (bench/run.py does, for its ``twohop``
workload). The call goes through ``MicroService.get_service``, the async client a real gateway
uses (services/gateway.py), with one client and its connection pool for the life of the
service.
"""

from typing import Any

from service_template import MicroService, RPCError, public_method
from service_template.client import ClientError


class GatewayService(MicroService):
    """The gateway example's shape, reduced to the one benchmarked call."""

    name = "gateway"

    @public_method
    async def add(self, a: float, b: float) -> Any:
        """Return the backend's a + b."""
        try:
            return await self.get_service("backend").call("add", a, b)
        except ClientError as exc:
            raise RPCError(-32010, "backend is unavailable", {"peer": "backend"}) from exc
