"""A small compute service: the benchmark's target and an example of typed methods.

Cheap arithmetic is ``async def`` (it never blocks, so it runs on the event loop with no thread
hop); ``fibonacci`` does real CPU work and is a plain method, so it runs in the thread pool.
"""

from service_template import InvalidParams, MicroService, private_api_method, public_method


def _number(value: object, name: str) -> float:
    # type() rather than isinstance(): bool is an int in Python but not a number in JSON terms.
    if type(value) not in (int, float):
        raise InvalidParams(data={"reason": f"{name} must be a number"})
    return value  # type: ignore[return-value]


class ComputeService(MicroService):
    """Arithmetic over JSON-RPC."""

    name = "compute"

    @public_method(idempotent=True)
    async def add(self, a: float, b: float) -> float:
        """Return a + b."""
        return _number(a, "a") + _number(b, "b")

    @public_method(idempotent=True)
    async def multiply(self, a: float, b: float) -> float:
        """Return a * b."""
        return _number(a, "a") * _number(b, "b")

    @public_method(name="stats.sum", idempotent=True)
    async def total(self, values: list[float]) -> float:
        """Return the sum of a list of numbers."""
        if not isinstance(values, list):
            raise InvalidParams(data={"reason": "values must be an array"})
        return sum(_number(v, "values[]") for v in values)

    @public_method(timeout=5.0, idempotent=True)
    def fibonacci(self, n: int) -> int:
        """Return the n-th Fibonacci number (CPU work, runs in the thread pool)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= 10_000:
            raise InvalidParams(data={"reason": "n must be an integer from 0 to 10000"})
        a, b = 0, 1
        for _ in range(n):
            a, b = b, a + b
        return a

    @private_api_method
    async def reset(self) -> bool:
        """An administrative no-op that shows a private method; needs the token."""
        return True
