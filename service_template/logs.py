"""Structured logs: one JSON object per line, and the per-call access line.

Secrets never reach a log: parameters whose names look secret (``redaction``: by pattern, plus
the names a service adds) are replaced by ``"***"``, in named params, nested objects, and
positional params by their declared name.

With tracing on (``tracing``), each call line also carries the ``trace_id`` and ``span_id`` of
its call's span, so a line leads to its trace and a trace to its lines.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, BinaryIO, TextIO

from .logtext import TextFormatter, call_line, colour_wanted, text_wanted
from .protocol import NO_ID, codec
from .redaction import REDACTED, Redactor

__all__ = ["CALL_LOGGER", "REDACTED", "CallLog", "JSONFormatter", "LineWriter", "configure_logging"]
CALL_LOGGER = "service_template.calls"
ROUTE_LOGGER = "service_template.routes"
_route_log = logging.getLogger(ROUTE_LOGGER)


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


def configure_logging(
    level: str = "INFO", stream: TextIO | None = None, log_format: str = "json"
) -> None:
    """Send every log record to ``stream`` (stdout), replacing other handlers: as JSON lines,
    or as text for a person (``log_format``: ``json``, ``text``, or ``auto`` for text on a
    terminal; see ``logtext``)."""
    stream = stream or sys.stdout
    handler = logging.StreamHandler(stream)
    if text_wanted(log_format, stream):
        handler.setFormatter(TextFormatter(colour=colour_wanted(stream)))
    else:
        handler.setFormatter(JSONFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Tornado's own access log would duplicate ours; its warnings and errors still come through.
    logging.getLogger("tornado.access").setLevel(logging.WARNING)


class LineWriter:
    """Buffers log lines and writes them once per event-loop iteration.

    A write (and, unbuffered, a syscall) per call costs more than the call itself on the hot
    path; one write per loop iteration keeps every line, in order, at a fraction of the cost.
    Outside a running loop each line is written at once. ``flush()`` runs at shutdown.

    A source (``add_source``) holds its lines back as data and formats them at the flush, in
    one pass: the call log does, because formatting its lines together, after the iteration's
    calls, costs less than formatting each in the middle of its call.
    """

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdout.buffer
        self._lines: list[bytes] = []
        self._scheduled = False
        self._sources: list[Callable[[list[bytes]], None]] = []

    def add_source(self, render: Callable[[list[bytes]], None]) -> None:
        """At each flush, ``render(lines)`` appends the lines it held back (after the lines
        written directly); the source calls ``wake()`` when it holds one."""
        self._sources.append(render)

    def write(self, line: bytes) -> None:
        self._lines.append(line)
        self.wake()

    def wake(self) -> None:
        """Make sure a flush comes: at the end of this loop iteration, or now without a loop."""
        if self._scheduled:
            return
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no running loop: nothing would flush later
            self.flush()
            return
        self._scheduled = True

    def flush(self) -> None:
        self._scheduled = False
        for render in self._sources:
            render(self._lines)
        if not self._lines:
            return
        data = b"".join(self._lines)
        self._lines.clear()
        try:
            self.stream.write(data)
            self.stream.flush()
        except (OSError, ValueError):  # stdout closed or gone: logs must never break serving
            pass


class CallLog:
    """Writes the per-call line: method, id, duration, outcome, request id, redacted params.

    The line carries the fields every other log line has (``JSONFormatter``) but skips the
    ``logging`` machinery and builds most of its bytes once per method, because on the hot path
    the log line would otherwise cost more than the call. The logger
    ``service_template.calls`` still decides: below INFO there are no call lines.

    A call is recorded as data and its line formatted at the end of the loop iteration, with
    the others of that iteration (``LineWriter.add_source``): 13 % of the server's CPU per
    request of an ``async def`` method, single call or batch (bench/README.md). The line
    carries the time and span of the call; its params are read at the flush, so a method that
    keeps its params and changes them before then changes its line (redaction still applies).
    """

    def __init__(
        self,
        sensitive: Iterable[str],
        positional: Mapping[str, tuple[str, ...]],
        writer: LineWriter | None = None,
        *,
        log_format: str = "json",
        trace_ids: Callable[[], tuple[str, str] | None] | None = None,
    ) -> None:
        """``trace_ids``: with tracing on, gives the (trace id, span id) of the call whose line
        is being written, or None for a call without a span."""
        self.enabled = logging.getLogger(CALL_LOGGER).isEnabledFor(logging.INFO)
        # Text for a person at a terminal (logtext); JSON, the fast path, for everyone else.
        self.text = text_wanted(log_format, sys.stdout)
        self.colour = self.text and colour_wanted(sys.stdout)
        self.redactor = Redactor(sensitive)
        self.writer = writer or LineWriter()
        self.trace_ids = trace_ids
        # Calls recorded this loop iteration, as data: the writer formats them at its flush.
        self._pending: list[tuple[Any, ...]] = []
        self.writer.add_source(self._render)
        self._prefixes: dict[str, bytes] = {}
        # Per method, computed once here: which positional parameters have secret names.
        self._secret_positions = {
            method: self.redactor.positions(names) for method, names in positional.items()
        }

    def _prefix(self, method: str) -> bytes:
        prefix = self._prefixes.get(method)
        if prefix is None:
            constant = {
                "level": "info",
                "logger": CALL_LOGGER,
                "pid": os.getpid(),
                "msg": "call",
                "method": method,
            }
            prefix = codec.dumps(constant)[:-1]  # without the closing brace
            if len(self._prefixes) < 10_000:  # labels are bounded; this is a safety net
                self._prefixes[method] = prefix
        return prefix

    def _redacted(self, method: str, params: Any) -> Any:
        if params is None:
            return None
        if isinstance(params, list):
            positions = self._secret_positions.get(method, _NONE)
            if not positions and not _has_containers(params):
                return params  # nothing that could hold a secret: no copy needed
            return self.redactor.redact_params(params, positions)
        if not self.redactor.any_secret(params) and not _has_containers(params.values()):
            return params
        return self.redactor.redact(params)

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
        """Record one call; its line is formatted and written at the end of the loop iteration
        (at once outside a loop), with the time and trace ids of now."""
        if not self.enabled:
            return
        ids = self.trace_ids() if self.trace_ids is not None else None
        self._pending.append(
            (method, request_id, params, code, seconds, http_request_id, ids, time.time())
        )
        self.writer.wake()

    def _render(self, lines: list[bytes]) -> None:
        """The writer's source: every call recorded since the last flush, as lines, in order."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        line = self._line
        for call in pending:
            try:
                lines.append(line(call))
            except (TypeError, ValueError, RecursionError):
                # Params that neither encoder can write (a method made them circular after the
                # call): the line still says the call happened, without them.
                lines.append(line((*call[:2], REDACTED, *call[3:])))

    def _line(self, call: tuple[Any, ...]) -> bytes:
        """One recorded call (``__call__``'s tuple) as its line."""
        method, request_id, params, code, seconds, http_request_id, ids, now = call
        if self.text:
            return call_line(
                method,
                request_id=request_id,
                notification=request_id is NO_ID,
                params=self._redacted(method, params),
                code=code,
                seconds=seconds,
                http_request_id=http_request_id,
                colour=self.colour,
                trace_ids=ids,
                now=now,
            )
        if request_id is NO_ID:
            ident = b',"id":null,"notification":true'
        elif type(request_id) is int:
            ident = b',"id":%d,"notification":false' % request_id
        else:
            ident = b',"id":' + _json(request_id) + b',"notification":false'
        # http_request_id is either validated ([A-Za-z0-9._:-]) or generated hex: no escaping;
        # so are trace and span ids (hex).
        traced = b"" if ids is None else _TRACED % (ids[0].encode(), ids[1].encode())
        return _LINE % (
            self._prefixes.get(method) or self._prefix(method),
            now,
            ident,
            seconds * 1000,
            b'"ok"' if code is None else b"%d" % code,
            http_request_id.encode("ascii", "replace"),
            traced,
            self._params(method, params),
        )

    def _params(self, method: str, params: Any) -> bytes:
        """The params as JSON, secrets masked. Encoded first: a secret can only be a value
        under a secret name, so params with no secret position, no secret top-level name and
        no object inside (no ``{`` after the first byte) need no copy and no walk."""
        if params is None:
            return b"null"
        try:
            data: bytes = _encode(params)
        except (TypeError, ValueError):
            return _json(self._redacted(method, params))
        if data.find(b"{", 1) >= 0:
            return _json(self._redacted(method, params))
        if type(params) is list:
            if self._secret_positions.get(method, _NONE):
                return _json(self._redacted(method, params))
        elif self.redactor.any_secret(params):
            return _json(self._redacted(method, params))
        return data

    def flush(self) -> None:
        self.writer.flush()


def log_route_request(
    route: str, method: str, status: int, seconds: float, request_id: str
) -> None:
    """The access line of a request to a service's own route. It names the declared route,
    not the path: a path may carry a secret (a webhook token) or an unbounded id."""
    _route_log.info(
        "request",
        extra={
            "fields": {
                "route": route,
                "http_method": method,
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "request_id": request_id,
            }
        },
    )


def _has_containers(values: Iterable[Any]) -> bool:
    for value in values:  # noqa: SIM110 - a plain loop is cheaper than any() over a generator
        if type(value) in _CONTAINERS:
            return True
    return False


_CONTAINERS = (dict, list)
_LINE = b'%s,"ts":%.6f%s,"duration_ms":%.3f,"outcome":%s,"request_id":"%s"%s,"params":%s}\n'
_TRACED = b',"trace_id":"%s","span_id":"%s"'  # with tracing on: the call's span (hex ids)
_NONE: frozenset[int] = frozenset()


_encode = codec.encode


def _json(value: Any) -> bytes:
    # encode, not dumps: params were decoded from strict JSON, so they hold no NaN or infinity
    # for dumps to look for (a walk per call); anything else would read as null, still JSON.
    try:
        return codec.encode(value)
    except (TypeError, ValueError):
        return json.dumps(value, default=repr).encode()
