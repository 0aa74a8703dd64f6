"""Dependency order: which services start first, and which can start together.

Pure functions over ``name -> names it depends on``. Ties keep the order the services are
given in (the Compose file's), so the same file always starts the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .errors import StackError


class CycleError(StackError):
    """Services depend on each other in a circle; the message shows the circle."""


def layers(graph: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Services in start order, grouped: each group depends only on earlier groups.

    Dependencies on names outside ``graph`` are ignored (the caller decides what they mean).
    Raises ``CycleError`` naming one cycle, e.g. ``a -> b -> a``.
    """
    pending = {name: [d for d in deps if d in graph and d != name] for name, deps in graph.items()}
    for name, deps in graph.items():
        if name in deps:
            raise CycleError(f"dependency cycle: {name} -> {name}; remove it from depends_on")
    done: set[str] = set()
    result: list[list[str]] = []
    # Each round places at least one service, so len(graph) + 1 rounds always suffice.
    for _ in range(len(graph) + 1):
        if not pending:
            return result
        ready = [name for name, deps in pending.items() if all(d in done for d in deps)]
        if not ready:
            cycle = " -> ".join(_find_cycle(pending))
            raise CycleError(f"dependency cycle: {cycle}; break it in depends_on")
        result.append(ready)
        done.update(ready)
        for name in ready:
            del pending[name]
    raise AssertionError("unreachable: every round places a service")


def startup_order(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """Services in start order, one by one (``layers`` flattened)."""
    return [name for layer in layers(graph) for name in layer]


def _find_cycle(pending: Mapping[str, Sequence[str]]) -> list[str]:
    """One cycle among services that all still wait: follow first dependencies until a repeat."""
    path: list[str] = []
    seen: dict[str, int] = {}
    name = next(iter(pending))
    for _ in range(len(pending) + 1):
        if name in seen:
            return [*path[seen[name] :], name]
        seen[name] = len(path)
        path.append(name)
        # Every pending service waits on another pending one, or it would have been ready.
        name = next(d for d in pending[name] if d in pending)
    raise AssertionError("unreachable: a walk over n nodes repeats within n + 1 steps")
