"""The ``/api`` endpoint: HTTP policy around JSON-RPC dispatch.

Before the body is read: only POST, a JSON ``Content-Type`` (or none: see ``check``), no
``Content-Encoding`` (the server does not decode bodies, and would rather refuse one than parse
compressed bytes as JSON). Once it is read: admission against ``max_concurrency``, then
dispatch (which holds a reply to ``max_response_bytes``: see ``Dispatcher``'s ``max_reply``).
With ``cors_origins`` set, the answers carry CORS headers and a preflight from a listed origin
is answered ``204`` (``cors.py``); without, nothing about it changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..protocol.calls import HeaderView
from ..protocol.errors import InternalError, InvalidRequest, ServerOverloaded
from ..protocol.methods import Params
from .cors import CORSPolicy, make_policy
from .framing import Headers, Refusal, error_body
from .limits import Limits

if TYPE_CHECKING:
    from ..runtime import Runtime
    from .request import Request
    from .wire import Connection

log = logging.getLogger("service_template.http")

API_PATH = "/api"
JSON_TYPES = frozenset({"application/json", "application/json-rpc", "application/jsonrequest"})
_RETRY = (("Retry-After", "1"),)
_NOT_POST = Refusal.of(405, InvalidRequest("Method not allowed; use POST"), (("Allow", "POST"),))
_NOT_JSON = Refusal.of(415, InvalidRequest("Content-Type must be application/json"))
_ENCODED = Refusal.of(
    415, InvalidRequest("Content-Encoding is not supported; send the body uncompressed")
)


class APIEndpoint:
    """Answers ``POST /api`` (a ``request.Handler``)."""

    def __init__(self, runtime: Runtime, limits: Limits) -> None:
        self.runtime = runtime
        self.limits = limits
        settings = runtime.settings
        self.cors: CORSPolicy | None = make_policy(
            settings.cors_origins,
            runtime.service.validation_strategies,
            max_age=settings.cors_max_age,
            credentials=settings.cors_allow_credentials,
        )

    def body_limit(self, request: Request) -> int:
        return self.limits.max_body_bytes

    def check(self, request: Request) -> Refusal | None:
        refusal = self._refusal(request)
        if refusal is None or self.cors is None:
            return refusal
        # A browser shows the page a refusal only when it carries the CORS headers.
        cors = self.cors.headers_for(_origin(request))
        return Refusal(refusal.status, refusal.body, refusal.headers + cors, refusal.final)

    def _refusal(self, request: Request) -> Refusal | None:
        if request.method != "POST":
            if self._preflight(request) is not None:
                return None  # answered by serve
            return _NOT_POST
        headers = request.headers
        media = headers.get("content-type")
        # No Content-Type at all is read as JSON: some clients send none (tinyrpc's HTTP
        # transport, as its documentation shows it; tests/clients/test_python_clients.py). A
        # type that says something else, or two of them, is still refused.
        if media is not None and (
            media.partition(";")[0].strip().lower() not in JSON_TYPES
            or (request.repeated is not None and _repeated(request, "content-type"))
        ):
            return _NOT_JSON
        if "content-encoding" in headers:
            codings = request.get_list("content-encoding")
            if any(
                c.strip().lower() not in ("", "identity") for v in codings for c in v.split(",")
            ):
                return _ENCODED
        return None

    def serve(self, request: Request, conn: Connection) -> None:
        if request.method != "POST":  # only an allowed preflight passes ``check``
            conn.respond(request, 204, None, self._preflight(request) or ())
            return
        # Admission happens here, when the request's turn comes, not on arrival: a client's
        # own pipelined requests wait their turn and do not count against the limit.
        runtime = self.runtime
        if not runtime.admit():
            runtime.count_rejection(503)
            body = error_body(ServerOverloaded(data={"retry_after": 1}))
            conn.respond(request, 503, body, _RETRY + self._cors_headers(request))
            return
        runtime.spawn(self._dispatch(request, conn), conn)

    def _preflight(self, request: Request) -> Headers | None:
        """The headers of the answer to a CORS preflight to allow; None for any other
        request."""
        if self.cors is None or request.method != "OPTIONS":
            return None
        wanted = request.get_list("access-control-request-method")
        return self.cors.preflight(_origin(request), wanted[0] if len(wanted) == 1 else None)

    def _cors_headers(self, request: Request) -> Headers:
        return () if self.cors is None else self.cors.headers_for(_origin(request))

    async def _dispatch(self, request: Request, conn: Connection) -> None:
        runtime = self.runtime
        try:
            try:
                reply = await runtime.dispatcher.dispatch(request.body, _Call(request, runtime))
            except Exception:
                # A bug in this framework (the dispatcher catches methods' errors): log it and
                # still answer with a JSON-RPC error, never a 5xx the client cannot read.
                log.exception("dispatch failed")
                reply = error_body(InternalError())
            finally:
                runtime.release()
            extra = () if self.cors is None else self.cors.headers_for(_origin(request))
            if reply is None:
                conn.respond(request, 204, None, extra)
                return
            conn.respond(request, 200, reply, extra)
        except asyncio.CancelledError:
            # By code that cancels every task, or a loop shutting down: no answer will come, so
            # the connection closes rather than keep the client (and the drain) waiting for one.
            # Cancelled before it ran, this never runs: the runtime abandons it (``spawn``).
            conn.abandon()
            raise
        finally:
            runtime.ended()


class _Call:
    """The protocol's ``CallContext`` for one /api request."""

    __slots__ = ("headers", "request", "request_id", "runtime")

    def __init__(self, request: Request, runtime: Runtime) -> None:
        self.request = request
        self.runtime = runtime
        # Copied, not properties: read on every call (the deadline looks at the headers), and
        # both are final once the request is dispatched.
        self.request_id: str = request.request_id
        self.headers: Mapping[str, str] = request.headers

    async def authenticate(self) -> Any:
        # With the repeats: a credential sent twice is refused, never resolved by picking one.
        request = self.request
        return await self.runtime.access.authenticate(HeaderView(request.headers, request.repeated))

    def record(
        self, method: str, request_id: Any, params: Params, code: int | None, seconds: float
    ) -> None:
        runtime = self.runtime
        if runtime.metrics is not None:
            runtime.metrics.observe_call(method, code, seconds)
        if runtime.call_log is not None:
            runtime.call_log(
                method, request_id, params, code, seconds, http_request_id=self.request_id
            )


def _origin(request: Request) -> str | None:
    """The request's ``Origin``; None when absent or sent twice (then nothing is allowed)."""
    origins = request.get_list("origin")
    return origins[0] if len(origins) == 1 else None


def _repeated(request: Request, name: str) -> bool:
    return len(request.get_list(name)) > 1
