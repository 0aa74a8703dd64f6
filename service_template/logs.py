"""Structured logs: one JSON object per line, and the per-call access line.

Secrets never reach a log: parameters whose names are listed as sensitive are replaced by
``"***"`` (in named params, nested objects, and positional params by their declared name).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from .protocol import NO_ID, codec

REDACTED = "***"
CALL_LOGGER = "service_template.calls"


class JSONFormatter(logging.Formatter):
    """Formats a record as one JSON line; ``extra={"fields": {...}}`` adds top-level fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        try:
            return codec.dumps(line).decode()
        except (TypeError, ValueError):  # a field that is not JSON: show it, never drop the line
            return json.dumps(line, default=repr, ensure_ascii=False)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record to ``stream`` (stdout) as JSON lines, replacing other handlers."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Tornado's own access log would duplicate ours; its warnings and errors still come through.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)


def redact(value: Any, sensitive: frozenset[str]) -> Any:
    """A copy of ``value`` with every object member named in ``sensitive`` masked."""
    if isinstance(value, dict):
        return {
            key: REDACTED if key.lower() in sensitive else redact(item, sensitive)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item, sensitive) for item in value]
    return value


def redact_params(
    params: list[Any] | dict[str, Any] | None,
    sensitive: frozenset[str],
    positional_names: Iterable[str] = (),
) -> Any:
    """Redact call params; positional ones by the name of the parameter they bind to."""
    if isinstance(params, list):
        names = list(positional_names)
        return [
            REDACTED if i < len(names) and names[i].lower() in sensitive else redact(v, sensitive)
            for i, v in enumerate(params)
        ]
    return redact(params, sensitive)


class CallLog:
    """Writes the per-call line: method, id, duration, outcome, request id, redacted params."""

    def __init__(self, sensitive: Iterable[str], positional: Mapping[str, tuple[str, ...]]) -> None:
        self.logger = logging.getLogger(CALL_LOGGER)
        self.sensitive = frozenset(name.lower() for name in sensitive)
        self.positional = positional

    def __call__(
        self,
        method: str,
        request_id: Any,
        params: Any,
        code: int | None,
        seconds: float,
        *,
        http_request_id: str,
    ) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        fields = {
            "method": method,
            "id": None if request_id is NO_ID else request_id,
            "notification": request_id is NO_ID,
            "duration_ms": round(seconds * 1000, 3),
            "outcome": "ok" if code is None else code,
            "request_id": http_request_id,
            "params": redact_params(params, self.sensitive, self.positional.get(method, ())),
        }
        self.logger.info("call", extra={"fields": fields})
