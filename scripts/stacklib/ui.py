"""What the user sees: progress lines and errors on stderr, tables and results on stdout.

Progress goes to stderr so that stdout carries only what a script would parse (the table, a
call's JSON result), as the service CLI does.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Sequence
from typing import TextIO

PREFIX = "stack"


class UI:
    """Writes progress, errors and tables; the streams are parameters so tests can capture."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def _write(self, text: str, stream: TextIO) -> None:
        # A reader that went away (`stack.py up | head`) must not stop a stop half-way: the
        # rest of the output is dropped, the work goes on.
        try:
            print(text, file=stream, flush=True)
        except (BrokenPipeError, ValueError):
            if stream is self.out:
                self.out = io.StringIO()
            else:
                self.err = io.StringIO()

    def say(self, message: str) -> None:
        """One progress line."""
        self._write(f"{PREFIX}: {message}", self.err)

    def detail(self, line: str) -> None:
        """An indented line under the last message (build output, a log tail)."""
        self._write(f"  | {line}", self.err)

    def error(self, message: str, details: Sequence[str] = ()) -> None:
        """The one-line error, then any details (a service's last log lines) below it."""
        self._write(f"{PREFIX}: error: {message}", self.err)
        for line in details:
            self.detail(line)

    def print(self, text: str = "") -> None:
        self._write(text, self.out)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """Columns padded to their widest cell; the last column is never padded."""
        all_rows = [list(headers), *[list(row) for row in rows]]
        widths = [max(len(row[i]) for row in all_rows) for i in range(len(headers) - 1)]
        for row in all_rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.print("  ".join([*cells, row[-1]]).rstrip())


def tail(text: str, lines: int = 20) -> list[str]:
    """The last ``lines`` non-empty lines of ``text``."""
    return [line for line in text.splitlines() if line.strip()][-lines:]


def seconds(value: float) -> str:
    return f"{value:.1f} s"
