"""Local services' log files, merged and prefixed by service, once or followed.

Services write one JSON object per line with a ``ts`` field; merging orders lines by it (a line
without one, such as a traceback, keeps its place after the line before it in its own file).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

POLL = 0.2


def _timestamp(line: str, previous: float) -> float:
    if line.startswith("{"):
        try:
            value = json.loads(line).get("ts")
        except (ValueError, AttributeError):
            return previous
        if isinstance(value, int | float):
            return float(value)
    return previous


def merged(files: dict[str, Path], last: int | None = None) -> list[str]:
    """Every line of every file, ordered by time, each as ``service | line``."""
    width = max((len(name) for name in files), default=0)
    entries: list[tuple[float, int, int, str]] = []
    for index, (name, path) in enumerate(files.items()):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        stamp = 0.0
        for number, line in enumerate(text.splitlines()):
            stamp = _timestamp(line, stamp)
            entries.append((stamp, index, number, f"{name.ljust(width)} | {line}"))
    entries.sort()
    lines = [entry[3] for entry in entries]
    return lines[-last:] if last is not None else lines


class Follower:
    """Reads what was appended to the files since the last read (whole lines only)."""

    def __init__(self, files: dict[str, Path], from_end: bool = True) -> None:
        self.files = files
        self.width = max((len(name) for name in files), default=0)
        self.offsets = {
            name: (path.stat().st_size if from_end and path.exists() else 0)
            for name, path in files.items()
        }

    def read(self) -> list[str]:
        """New complete lines, prefixed by service."""
        lines: list[str] = []
        for name, path in self.files.items():
            try:
                with path.open("rb") as handle:
                    handle.seek(self.offsets[name])
                    chunk = handle.read()
            except FileNotFoundError:
                continue
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self.offsets[name] += len(complete)
            for line in complete.decode("utf-8", "replace").splitlines():
                lines.append(f"{name.ljust(self.width)} | {line}")
        return lines


def follow(
    files: dict[str, Path],
    emit: Callable[[str], None],
    keep_going: Callable[[], bool],
    wait: Callable[[float], None],
    backlog: Sequence[str] = (),
) -> None:
    """Print ``backlog``, then new lines as they come, while ``keep_going()`` holds.

    The loop ends with the stack (``keep_going`` turns false when no service runs any more or
    the stack was taken down) or with Ctrl-C; ``wait`` is how it pauses between reads.
    """
    _emit_all(backlog, emit)
    follower = Follower(files)
    while True:
        _emit_all(follower.read(), emit)
        if not keep_going():
            _emit_all(follower.read(), emit)
            return
        wait(POLL)


def _emit_all(lines: Iterable[str], emit: Callable[[str], None]) -> None:
    for line in lines:
        emit(line)
