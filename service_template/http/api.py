"""The lean path for ``POST /api``: Tornado's HTTP server hands the body straight to the
protocol layer, without ``tornado.web.RequestHandler`` (which alone costs more per call than
all the JSON-RPC work).

Per request: check method, media type and size as the headers arrive; count the body as it
streams in (413 at once when Content-Length or the running total passes the limit, chunked
bodies included); admit or refuse (503 + Retry-After) against the concurrency limit; dispatch;
answer 200 with the reply or 204 when there is none (notifications).
"""

from __future__ import annotations

import logging
import os
import re
from typing import TYPE_CHECKING, Any

from tornado import httputil

from ..auth import extract_token
from ..protocol import codec
from ..protocol.errors import (
    InternalError,
    InvalidRequest,
    RPCError,
    ServerOverloaded,
)
from ..protocol.methods import Params

if TYPE_CHECKING:
    from ..runtime import Runtime

log = logging.getLogger("service_template.http")

API_PATH = "/api"
JSON_TYPES = frozenset({"application/json", "application/json-rpc", "application/jsonrequest"})
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
_REASONS = {
    200: "OK",
    204: "No Content",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    503: "Service Unavailable",
}


def _error_body(error: RPCError) -> bytes:
    return codec.dumps({"jsonrpc": "2.0", "error": error.to_dict(), "id": None})


class APIRequest(httputil.HTTPMessageDelegate):
    """One request to ``/api``."""

    __slots__ = (
        "_admitted",
        "_chunks",
        "_done",
        "_pending",
        "_reject",
        "_size",
        "conn",
        "headers",
        "request_id",
        "runtime",
    )

    def __init__(self, runtime: Runtime, conn: httputil.HTTPConnection) -> None:
        self.runtime = runtime
        self.conn = conn
        self._chunks: list[bytes] = []
        self._size = 0
        self._admitted = False
        self._done = False
        self._reject: tuple[int, RPCError, dict[str, str]] | None = None
        self.request_id = ""

    # -- HTTPMessageDelegate --------------------------------------------------------------------

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> None:
        assert isinstance(start_line, httputil.RequestStartLine)
        self.headers = headers
        given = headers.get("X-Request-Id")
        self.request_id = given if given and _REQUEST_ID_RE.match(given) else os.urandom(8).hex()
        limit = self.runtime.settings.max_body_bytes
        if start_line.method != "POST":
            self._reject = (405, InvalidRequest("Method not allowed; use POST"), {"Allow": "POST"})
            return
        media = headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if media not in JSON_TYPES:
            self._reject = (415, InvalidRequest("Content-Type must be application/json"), {})
            return
        length = headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > limit:
            self._too_large(limit)  # at once: no point reading a body we will refuse
            return
        if not self.runtime.admit():
            self._reject = (503, ServerOverloaded(data={"retry_after": 1}), {"Retry-After": "1"})
            return
        self._admitted = True

    def data_received(self, chunk: bytes) -> None:
        if self._done or self._reject is not None:
            return  # refused already: drop the rest of the body
        self._size += len(chunk)
        limit = self.runtime.settings.max_body_bytes
        if self._size > limit:
            self._chunks.clear()
            self._too_large(limit)
            return
        self._chunks.append(chunk)

    def finish(self) -> None:
        if self._done:
            return
        if self._reject is not None:
            status, error, extra = self._reject
            self._reply(status, _error_body(error), extra)
            return
        body = b"".join(self._chunks)
        self._chunks.clear()
        self.runtime.spawn(self._dispatch(body))

    def on_connection_close(self) -> None:
        # The client left before the body was complete: nothing will be dispatched.
        if self._admitted and not self._done and self._chunks is not None:
            self._release()
            self._done = True

    # -- work -----------------------------------------------------------------------------------

    async def _dispatch(self, body: bytes) -> None:
        self._done = True  # from here on the slot is released by this coroutine only
        try:
            reply = await self.runtime.dispatcher.dispatch(body, self)
        except Exception:
            # A bug in this framework, not the client's fault and not a method's (the dispatcher
            # catches those): log it and still answer with a JSON-RPC error.
            log.exception("dispatch failed")
            reply = _error_body(InternalError())
        finally:
            self._release()
        if reply is None:
            self._write(204, None, {})
        else:
            self._write(200, reply, {})

    def _too_large(self, limit: int) -> None:
        self._release()
        self._done = True
        error = InvalidRequest("Request body too large", data={"limit_bytes": limit})
        self.runtime.count_rejection(413)
        self._write(413, _error_body(error), {})

    def _reply(self, status: int, body: bytes, extra: dict[str, str]) -> None:
        self._done = True
        self.runtime.count_rejection(status)
        self._write(status, body, extra)

    def _release(self) -> None:
        if self._admitted:
            self._admitted = False
            self.runtime.release()

    def _write(self, status: int, body: bytes | None, extra: dict[str, str]) -> None:
        headers = httputil.HTTPHeaders(extra)
        headers["X-Request-Id"] = self.request_id
        if body is not None:
            headers["Content-Type"] = "application/json"
            headers["Content-Length"] = str(len(body))
        closing = self.runtime.draining
        if closing:
            # Tell keep-alive clients to reconnect (elsewhere) and close once this is written.
            headers["Connection"] = "close"
        conn = self.conn
        written = conn.write_headers(
            httputil.ResponseStartLine("HTTP/1.1", status, _REASONS.get(status, "")), headers, body
        )
        conn.finish()
        if closing:
            written.add_done_callback(lambda _: conn.close())  # type: ignore[attr-defined]

    # -- CallContext (protocol seam) ------------------------------------------------------------

    async def authorized(self) -> bool:
        token = extract_token(self.runtime.service.validation_strategies, self.headers)
        return await self.runtime.authorized(token)

    def record(
        self, method: str, request_id: Any, params: Params, code: int | None, seconds: float
    ) -> None:
        self.runtime.record(
            method, request_id, params, code, seconds, http_request_id=self.request_id
        )
