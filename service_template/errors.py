"""Why a service will not start: each error's message says what to fix, and nothing else.

``ConfigError`` lists every configuration problem at once; ``StartupError`` is anything else
found before the port opens (a bad declaration, a TARGET that does not load, a port in use).
Both are ``ValueError``s: the command line prints them as one ``error: ...`` and exits 2.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ConfigError", "StartupError"]


class ConfigError(ValueError):
    """Every configuration problem found, one per line, each naming where the value came from."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        header = f"invalid configuration ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([header, *(f"  {problem}" for problem in self.problems)])


class StartupError(ValueError):
    """A service that cannot start: the message says what to fix."""
