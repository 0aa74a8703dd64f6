"""Benchmark peer: gemstone 0.12.0 serving add(a, b) at POST /api.

Usage: python gemstone_server.py PORT. gemstone 0.12 exports its API from `gemstone.core`;
methods are declared with `@exposed_method()` (a Tornado coroutine by default) and the endpoint
path is the class attribute `endpoint` ("/api" by default). Everything else is the library's
default, including `start()` turning on Tornado's pretty logging (one access line per request on
stderr), which is how a gemstone service ships.
"""

import sys

from gemstone.core import MicroService, exposed_method


class ComputeService(MicroService):  # type: ignore[misc]
    """The compute service, reduced to the one benchmarked method."""

    name = "bench.compute"
    host = "127.0.0.1"
    port = 8000
    endpoint = "/api"

    @exposed_method()  # type: ignore[misc]
    def add(self, a: int, b: int) -> int:
        """Return the sum of two numbers."""
        return a + b


def main() -> None:
    """Serve on 127.0.0.1 at the port given as the only argument."""
    # gemstone reads host/port from class attributes before the instance is made.
    ComputeService.port = int(sys.argv[1])
    ComputeService().start()


if __name__ == "__main__":
    main()
