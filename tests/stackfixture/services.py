"""The services of the tests' own stack (tests/stackfixture/compose.yaml): a greeter and an
adder behind a front service that calls both by name (its SERVICE_PEERS)."""

from __future__ import annotations

import asyncio
from typing import Any

from service_template import MicroService, private_api_method, public_method, readiness_check
from service_template.client import ClientError


class GreeterService(MicroService):
    """Greets; the private greeting needs the token."""

    name = "greeter"

    @public_method
    async def say_hello(self, name: str) -> str:
        return f"hello {name}"

    @private_api_method
    async def say_private_hello(self, name: str) -> str:
        return f"this is secret: hello {name}"


class AdderService(MicroService):
    """Adds."""

    name = "adder"

    @public_method
    async def add(self, a: float, b: float) -> float:
        return a + b


class FrontService(MicroService):
    """Calls both peers; ready only when they are."""

    name = "front"

    @public_method
    async def greet_and_add(self, name: str, a: float, b: float) -> dict[str, Any]:
        greeting = await self.get_service("greeter").call("say_hello", name)
        total = await self.get_service("adder").call("add", a, b)
        return {"greeting": greeting, "sum": total}

    @readiness_check
    async def peers(self) -> bool:
        probes = [self.get_service(peer).health("readyz") for peer in self.settings.peers]
        try:
            return all(result.ok for result in await asyncio.gather(*probes))
        except ClientError:
            return False
