"""What every command works with: the repository's paths, the output, the environment."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import adopt, model, rendered
from . import state as st
from .docker_backend import DockerBackend
from .errors import StackError
from .local import LocalBackend
from .ui import UI

SCRIPT = "python3 scripts/stack.py"


@dataclass
class Context:
    """One command's surroundings; backends are made on demand and then kept."""

    paths: st.Paths
    ui: UI
    environ: Mapping[str, str]
    _local: LocalBackend | None = field(default=None, repr=False)
    _docker: DockerBackend | None = field(default=None, repr=False)
    rendering: dict[str, Any] = field(default_factory=dict, repr=False)  # Compose's own JSON

    def compose(self, extra: Mapping[str, str] | None = None) -> model.Compose:
        """The Compose file as Compose renders it, now (a StackError says what is wrong);
        ``extra`` are variables a backend set for Compose (a generated token file)."""
        compose, self.rendering = rendered.load(
            rendered.compose_command(),
            self.paths.compose_file,
            {**self.environ, **(extra or {})},
        )
        return compose

    @property
    def local(self) -> LocalBackend:
        if self._local is None:
            self._local = LocalBackend(self.paths, self.ui, self.environ)
        return self._local

    @property
    def docker(self) -> DockerBackend:
        if self._docker is None:
            self._docker = DockerBackend(self.paths, self.ui, self.environ)
        return self._docker

    def running_state(self) -> st.State:
        """The recorded stack, or a StackError saying how to start one."""
        recorded = st.load(self.paths) or self.adopted()
        if recorded is None:
            raise StackError(f"no stack is running; start it with `{SCRIPT} up`")
        return recorded

    def adopted(self) -> st.State | None:
        """The checkout's Compose project that the raw Compose commands started, now recorded
        (adopt.py); None when none runs."""
        return adopt.unrecorded(self.paths, dict(self.environ), self.ui)


def unknown_service(name: str, known: list[str]) -> StackError:
    """The error for a service name the stack does not have, with a suggestion."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    listed = ", ".join(sorted(known)) or "none"
    return StackError(
        f"no service named {name!r} in the stack (services: {listed}){hint}", status=2
    )


def started(recorded: st.State) -> str:
    return datetime.fromtimestamp(recorded.started_at).strftime("%H:%M:%S")
