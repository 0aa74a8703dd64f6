"""The service the client tests call: ``serve tests.clients.service:CasesService``.

The suite's own, not an example of services/ (which a project removes as soon as it has its
own services), with what every client case needs: arithmetic by position or by name, a method
that refuses a bad argument with ``-32602`` and a reason in ``data``, and a private method that
takes the token as ``X-Api-Token`` or ``Authorization: Bearer``.
"""

from __future__ import annotations

from service_template import (
    BearerStrategy,
    HeaderStrategy,
    InvalidParams,
    MicroService,
    private_api_method,
    public_method,
)


class CasesService(MicroService):
    """Arithmetic for third-party clients."""

    name = "cases"
    # The token as X-Api-Token (the default) or as a bearer token: clients send either.
    validation_strategies = (HeaderStrategy(), BearerStrategy())

    @public_method
    async def add(self, a: float, b: float) -> float:
        """Return a + b."""
        return a + b

    @public_method
    async def multiply(self, a: float, b: float) -> float:
        """Return a * b."""
        return a * b

    @public_method
    async def fibonacci(self, n: int) -> int:
        """Return the n-th Fibonacci number; ``n`` from 0 to 10000, else -32602 with data."""
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 10_000:
            raise InvalidParams(data={"reason": "n must be an integer from 0 to 10000"})
        a, b = 0, 1
        for _ in range(n):
            a, b = b, a + b
        return a

    @public_method
    async def greet(self, name: str, punctuation: str = "!") -> str:
        """Return a greeting (a string parameter, and one with a default)."""
        return f"hello {name}{punctuation}"

    @private_api_method
    async def reset(self) -> bool:
        """A private no-op: needs the token."""
        return True
