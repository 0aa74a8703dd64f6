"""The one exception the orchestrator raises for a problem the user can fix."""

from __future__ import annotations


class StackError(Exception):
    """A problem with a one-line message that names it and says what to do.

    ``details`` are extra lines (a service's last log lines) shown below the message;
    ``status`` is the process exit status (1 for a failure, 2 for a usage error).
    """

    def __init__(self, message: str, *, details: list[str] | None = None, status: int = 1) -> None:
        super().__init__(message)
        self.details = details or []
        self.status = status
