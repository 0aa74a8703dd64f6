"""Logs for a person at a terminal: one short line per record or call, colour when the terminal
has it, and tracebacks as tracebacks.

``log_format`` chooses: ``json`` (one JSON object per line, for collectors), ``text`` (this), or
``auto`` (the default: text when standard output is a terminal, JSON otherwise, so containers
and pipes keep JSON). ``NO_COLOR`` (https://no-color.org) turns the colour off.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, TextIO

__all__ = ["LOG_FORMATS", "TextFormatter", "call_line", "colour_wanted", "text_wanted"]

LOG_FORMATS = ("auto", "json", "text")

_RESET = "\x1b[0m"
_DIM = "\x1b[2m"
_COLOURS = {
    "DEBUG": "\x1b[2m",
    "INFO": "\x1b[36m",  # cyan
    "WARNING": "\x1b[33m",  # yellow
    "ERROR": "\x1b[31m",  # red
    "CRITICAL": "\x1b[1;31m",
    "ok": "\x1b[32m",  # green
    "client": "\x1b[33m",  # the caller's mistake: invalid params, unknown method, auth
    "server": "\x1b[31m",  # ours: internal error, deadline, overload
}


def text_wanted(log_format: str, stream: TextIO) -> bool:
    """Whether records go out as text: asked for, or ``auto`` on a terminal."""
    if log_format == "auto":
        return _is_terminal(stream)
    return log_format == "text"


def colour_wanted(stream: TextIO) -> bool:
    return _is_terminal(stream) and not os.environ.get("NO_COLOR")


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or a fake stream
        return False


def _clock(timestamp: float) -> str:
    return (
        time.strftime("%H:%M:%S", time.localtime(timestamp)) + f".{int(timestamp % 1 * 1000):03d}"
    )


def _paint(text: str, colour: str | None, enabled: bool) -> str:
    return f"{colour}{text}{_RESET}" if enabled and colour else text


class TextFormatter(logging.Formatter):
    """``12:00:01.234 INFO  logger  message  key=value ...``, then the traceback if any."""

    def __init__(self, colour: bool = False) -> None:
        super().__init__()
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        level = _paint(f"{record.levelname:<7}", _COLOURS.get(record.levelname), self.colour)
        parts = [_clock(record.created), level, _paint(record.name, _DIM, self.colour)]
        parts.append(record.getMessage())
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            parts.extend(f"{key}={_show(value)}" for key, value in fields.items())
        line = "  ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def call_line(
    method: str,
    *,
    request_id: Any,
    notification: bool,
    params: Any,
    code: int | None,
    seconds: float,
    http_request_id: str,
    colour: bool,
    trace_ids: tuple[str, str] | None = None,
    now: float | None = None,
) -> bytes:
    """One call as a person reads it: time (``now``, or the present), method, id, duration,
    outcome, request id, trace and span ids (with tracing on), params."""
    if code is None:
        outcome = _paint("ok", _COLOURS["ok"], colour)
    else:
        # -32000..-32099 are this server's own faults (deadline, overload...); -32603 too.
        ours = code == -32603 or -32099 <= code <= -32000
        outcome = _paint(str(code), _COLOURS["server" if ours else "client"], colour)
    ident = "notification" if notification else f"id={_show(request_id)}"
    parts = [
        _clock(time.time() if now is None else now),
        _paint("call   ", _COLOURS["INFO"], colour),
        method,
        ident,
        f"{seconds * 1000:.3f} ms",
        outcome,
        _paint(f"req={http_request_id}", _DIM, colour),
    ]
    if trace_ids is not None:
        parts.append(_paint(f"trace={trace_ids[0]} span={trace_ids[1]}", _DIM, colour))
    if params is not None:
        parts.append(f"params={_show(params)}")
    return ("  ".join(parts) + "\n").encode("utf-8", "replace")


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 200 else text[:197] + "..."
