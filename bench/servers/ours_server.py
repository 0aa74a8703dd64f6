"""Benchmark peer: this runtime serving add(a, b) at POST /api, as the compute example does.

Run by ``python -m service_template serve bench/servers/ours_server.py:ComputeService`` (see
``OURS_COMMAND`` in bench/peers.py). It lives here, with the other peers, rather than importing
the template's compute example: the benchmark must keep working after a project deletes the
examples (``stack.py remove compute``).

Two styles of the same method, each a peer of its own: ``ComputeService`` writes it
``async def`` (runs on the event loop), ``PlainComputeService`` writes it as gemstone's example
does, a plain ``def`` (runs in the thread pool, the default for plain methods). Both annotate
``a: float, b: float``, which the runtime reads as ``int | float`` and converts (msgspec), and
both check the numbers by hand, as the compute example does.

Typed against untyped, both plain ``def`` (what most authors write): ``UntypedComputeService``
has no annotations at all (no converter, params reach ``add`` as decoded JSON), and
``TypedComputeService`` annotates ``a: int, b: int`` and leaves the checking to the runtime's
validation from the annotations (``service_template/contracts.py``). The pair measures what
validation costs a call (issue 14: within 15 %).
"""

from service_template import InvalidParams, MicroService, public_method


def _number(value: object, name: str) -> float:
    # type() rather than isinstance(): bool is an int in Python but not a number in JSON terms.
    if type(value) not in (int, float):
        raise InvalidParams(data={"reason": f"{name} must be a number"})
    return value  # type: ignore[return-value]


class ComputeService(MicroService):
    """The compute example, reduced to the one benchmarked method."""

    name = "compute"

    @public_method
    async def add(self, a: float, b: float) -> float:
        """Return a + b."""
        return _number(a, "a") + _number(b, "b")


class PlainComputeService(MicroService):
    """The same method as a plain ``def``: what most services (and gemstone's example) write."""

    name = "compute"

    @public_method
    def add(self, a: float, b: float) -> float:
        """Return a + b."""
        return _number(a, "a") + _number(b, "b")


class UntypedComputeService(MicroService):
    """``add`` with no annotations: nothing converted or checked before the call."""

    name = "compute"

    @public_method
    def add(self, a, b):  # type: ignore[no-untyped-def]
        """Return a + b."""
        return a + b


class TypedComputeService(MicroService):
    """The same ``add``, annotated: the runtime converts and checks both params (strict ints)."""

    name = "compute"

    @public_method
    def add(self, a: int, b: int) -> int:
        """Return a + b."""
        return a + b
