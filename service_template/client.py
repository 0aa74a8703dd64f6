"""JSON-RPC 2.0 clients over HTTP: ``RemoteClient`` (blocking) and ``AsyncRemoteClient``.

::

    with RemoteClient("http://127.0.0.1:8000/api", token="s3cret") as client:
        client.methods.say_hello("world")      # "hello world"
        client.methods.users.get(id=1)         # dotted method "users.get", named params
        client.notifications.log("x")          # no id, no answer: returns None
        with client.batch() as batch:
            total = batch.methods.add(1, 2)
        total.result()                         # 3, or raises that call's error

Params are positional or named, never both (JSON-RPC carries one or the other). Attribute names
starting with ``_`` are not turned into methods; use ``client.call("_name")`` for those.
Each client keeps one connection pool (keep-alive) and gives every request a timeout, applied
by httpx to each phase (connect, write, every read). ``transport`` is the seam for tests: pass an
``httpx.MockTransport``. Requests are built and answers checked by shared functions; the two
classes differ only in how they wait.

Exceptions, in one place:

- ``RPCError`` and its subclasses (``service_template.protocol.errors``): the service answered
  with an error object; ``code``, ``message`` and ``data`` are as it sent them.

  - ``ServerOverloaded`` (this module, a ``protocol.errors.ServerOverloaded``): the service is
    over its concurrency limit (HTTP 503 with Retry-After, or code -32003); ``retry_after`` is
    the number of seconds it asked the client to wait, or None.

- ``ClientError``: no usable answer arrived.

  - ``TransportError``: the HTTP exchange failed; ``url`` names the endpoint (without any
    user name or password it held).

    - ``ConnectError`` (also a builtin ``ConnectionError``): cannot connect, connection lost.
    - ``RequestTimeout`` (also a builtin ``TimeoutError``): no answer within the timeout.
    - ``HTTPStatusError``: a non-2xx status without a JSON-RPC body; ``status_code``.

  - ``ProtocolError``: the answer is not a valid JSON-RPC response to the request sent (not
    JSON, malformed, or carrying another request's id).

``TransportError`` itself is not a ``ConnectionError``: a 404 or 502 is not a connection failure,
and an ``except OSError`` around unrelated code must not swallow it. Before anything is sent,
``TypeError`` reports params that cannot be sent and ``ValueError`` an unusable URL or timeout.

Messages name the endpoint by its URL, never with a password in it; a client made for a peer
(``peer="hello"``, as ``MicroService.get_service`` and ``discovery`` do) names it ``service
'hello'`` instead, so that a service passing an error on never shows its callers an internal
address.
"""

from __future__ import annotations

import builtins
import itertools
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Generic, TypeVar

import httpx

from service_template.protocol import codec, errors

__all__ = [
    "AsyncBatch",
    "AsyncRemoteClient",
    "Batch",
    "BatchResult",
    "ClientError",
    "ConnectError",
    "HTTPStatusError",
    "Health",
    "ProtocolError",
    "RemoteClient",
    "RequestTimeout",
    "ServerOverloaded",
    "TransportError",
]

DEFAULT_TIMEOUT = 10.0
T = TypeVar("T")
Invoke = Callable[[str, tuple[Any, ...], dict[str, Any]], T]


class ClientError(Exception):
    """No usable answer came back for a request."""


class TransportError(ClientError):
    """The HTTP exchange with ``url`` failed."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class ConnectError(TransportError, builtins.ConnectionError):
    """Could not connect to the service, or the connection broke before the answer."""


class RequestTimeout(TransportError, builtins.TimeoutError):
    """The service did not answer within the client's timeout."""


class HTTPStatusError(TransportError):
    """The service answered with a non-2xx status and no JSON-RPC body."""

    def __init__(self, message: str, *, url: str, status_code: int) -> None:
        super().__init__(message, url=url)
        self.status_code = status_code


class ProtocolError(ClientError):
    """The answer is not a valid JSON-RPC response to the request that was sent."""


class ServerOverloaded(errors.ServerOverloaded):
    """The service is over its concurrency limit; wait ``retry_after`` seconds (if given)."""

    def __init__(
        self, message: str | None = None, data: Any = None, *, retry_after: float | None = None
    ) -> None:
        super().__init__(message, data)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Health:
    """One probe's answer (``livez`` or ``readyz``): HTTP status and its health+json body."""

    probe: str
    status_code: int
    status: str
    checks: dict[str, Any]

    @property
    def ok(self) -> bool:
        """True when the probe answered 2xx with status ``pass`` or ``warn``."""
        return 200 <= self.status_code < 300 and self.status in ("pass", "warn")


class _Namespace(Generic[T]):
    """``ns.users.get(id=1)`` calls ``invoke("users.get", (), {"id": 1})``."""

    __slots__ = ("_invoke", "_name")

    def __init__(self, invoke: Invoke[T], name: str = "") -> None:
        self._invoke = invoke
        self._name = name

    def __getattr__(self, attr: str) -> _Namespace[T]:
        # Leading underscores stay attributes so copy, pickle and IPython probes do not
        # become method names.
        if attr.startswith("_"):
            raise AttributeError(attr)
        return _Namespace(self._invoke, f"{self._name}.{attr}" if self._name else attr)

    def __call__(self, *args: Any, **kwargs: Any) -> T:
        if not self._name:
            raise TypeError("name a method first, e.g. client.methods.say_hello(...)")
        return self._invoke(self._name, args, kwargs)

    def __repr__(self) -> str:
        return f"<JSON-RPC method {self._name!r}>" if self._name else "<JSON-RPC methods>"


# ---- pure request building and answer checking, shared by both clients and batches ----


def _request(
    method: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], request_id: int | None
) -> bytes:
    """Encode one Request object; ``request_id`` None makes a notification (spec section 4.1)."""
    if not isinstance(method, str) or not method:
        raise TypeError("the method name must be a non-empty string")
    if args and kwargs:
        raise TypeError("JSON-RPC sends positional or named params, not both at once")
    request: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if args or kwargs:
        request["params"] = list(args) if args else dict(kwargs)
    if request_id is not None:
        request["id"] = request_id
    try:
        return codec.dumps(request)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"params of {method!r} cannot be sent as JSON: {exc}") from exc


def _is_int(value: Any) -> bool:
    # bool is an int in Python, and True == 1; a JSON true must never match id 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _decode(content: bytes) -> Any:
    """The JSON body, None when empty, or ``_NOT_JSON``."""
    if not content.strip():
        return None
    try:
        return codec.loads(content)
    except errors.ParseError:
        return _NOT_JSON


_NOT_JSON: Any = object()


def _read_body(response: httpx.Response, url: str, where: str) -> tuple[Any, float | None]:
    """The decoded JSON-RPC payload and Retry-After; raise for answers that carry none."""
    status = response.status_code
    retry_after = _retry_after(response.headers.get("retry-after"))
    payload = _decode(response.content)
    if status == 503 and retry_after is not None:
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            raise ServerOverloaded(error["message"], error.get("data"), retry_after=retry_after)
        raise ServerOverloaded(retry_after=retry_after)
    looks_rpc = isinstance(payload, list) or (isinstance(payload, dict) and "jsonrpc" in payload)
    if not response.is_success and not looks_rpc:
        reason = f" {response.reason_phrase}" if response.reason_phrase else ""
        raise HTTPStatusError(
            f"HTTP {status}{reason} from {where}", url=_safe_url(url), status_code=status
        )
    if payload is _NOT_JSON:
        raise ProtocolError(f"the answer from {where} is not JSON (HTTP {status})")
    return payload, retry_after


def _check_response(obj: Any, url: str) -> dict[str, Any]:
    """Validate one Response object (spec section 5): exactly one of result and error."""
    if (
        not isinstance(obj, dict)
        or obj.get("jsonrpc") != "2.0"
        or "id" not in obj
        or ("result" in obj) == ("error" in obj)
    ):
        raise ProtocolError(f"malformed JSON-RPC response from {url}: {_preview(obj)}")
    error = obj.get("error")
    if "error" in obj and not (
        isinstance(error, dict)
        and _is_int(error.get("code"))
        and isinstance(error.get("message"), str)
    ):
        raise ProtocolError(f"malformed error object from {url}: {_preview(error)}")
    return obj


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _rpc_error(error: dict[str, Any], retry_after: float | None) -> errors.RPCError:
    exc = errors.error_from_dict(error)
    if isinstance(exc, errors.ServerOverloaded):
        if retry_after is None and isinstance(exc.data, dict):
            # A batch member refused for want of a slot: the delay is in its data.
            given = exc.data.get("retry_after")
            if isinstance(given, int | float) and not isinstance(given, bool) and given >= 0:
                retry_after = float(given)
        return ServerOverloaded(exc.message, exc.data, retry_after=retry_after)
    return exc


def _outcome(obj: dict[str, Any], retry_after: float | None) -> tuple[Any, Exception | None]:
    if "error" in obj:
        return None, _rpc_error(obj["error"], retry_after)
    return obj["result"], None


def _call_reply(payload: Any, request_id: int, url: str, retry_after: float | None) -> Any:
    """The result of one call, or raise its error."""
    if payload is None:
        raise ProtocolError(f"{url} sent no answer to request id {request_id}")
    obj = _check_response(payload, url)
    # An error with id null means the server could not read the request's id (spec section 5).
    if not (obj["id"] is None and "error" in obj) and not (
        _is_int(obj["id"]) and obj["id"] == request_id
    ):
        raise ProtocolError(f"the answer from {url} has id {obj['id']!r}, expected {request_id}")
    value, error = _outcome(obj, retry_after)
    if error is not None:
        raise error
    return value


def _notification_reply(payload: Any, url: str, retry_after: float | None) -> None:
    """Nothing, unless the server refused the notification with an error object."""
    if isinstance(payload, dict) and "error" in payload:
        raise _rpc_error(_check_response(payload, url)["error"], retry_after)


def _batch_reply(
    payload: Any, ids: list[int], url: str, retry_after: float | None
) -> dict[int, tuple[Any, Exception | None]]:
    """Match a batch answer to request ids (by id, not order: spec section 6)."""
    if isinstance(payload, dict):  # the batch as a whole was refused
        obj = _check_response(payload, url)
        if "error" in obj:
            raise _rpc_error(obj["error"], retry_after)
        raise ProtocolError(f"{url} answered a batch with a single result")
    if payload is not None and not isinstance(payload, list):
        raise ProtocolError(f"malformed batch answer from {url}: {_preview(payload)}")
    wanted = set(ids)
    outcomes: dict[int, tuple[Any, Exception | None]] = {}
    unmatched: Exception | None = None
    for item in payload or ():
        obj = _check_response(item, url)
        request_id = obj["id"]
        if request_id is None and "error" in obj:
            unmatched = unmatched or _outcome(obj, retry_after)[1]
        elif not _is_int(request_id) or request_id not in wanted or request_id in outcomes:
            raise ProtocolError(f"the batch answer from {url} has unexpected id {request_id!r}")
        else:
            outcomes[request_id] = _outcome(obj, retry_after)
    for request_id in ids:
        if request_id not in outcomes:
            missing = ProtocolError(f"{url} sent no answer to request id {request_id}")
            outcomes[request_id] = (None, unmatched or missing)
    return outcomes


def _service_name(result: Any, url: str) -> str:
    info = result.get("info") if isinstance(result, dict) else None
    title = info.get("title") if isinstance(info, dict) else None
    if not isinstance(title, str):
        raise ProtocolError(f"rpc.discover at {url} returned no info.title")
    return title


def _health(probe: str, response: httpx.Response) -> Health:
    body = _decode(response.content)
    status = body.get("status") if isinstance(body, dict) else None
    checks = body.get("checks") if isinstance(body, dict) else None
    if not isinstance(status, str):
        status = "pass" if response.is_success else "fail"
    return Health(probe, response.status_code, status, checks if isinstance(checks, dict) else {})


def _reason(exc: BaseException) -> str:
    """The operating system's words for a failure ("connection refused"), else the message."""
    cause: BaseException | None = exc
    for _ in range(8):  # bounded walk down the cause chain
        if cause is None:
            break
        if isinstance(cause, OSError) and (cause.errno or cause.strerror):
            # The system's words for the errno: asyncio's own strerror quotes the address
            # ("Connect call failed ('10.0.0.7', 8000)"), which a peer's message must not show.
            text = os.strerror(cause.errno) if cause.errno else str(cause.strerror)
            return text[:1].lower() + text[1:]
        cause = cause.__cause__ or cause.__context__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", str(exc)) or type(exc).__name__
    return text[:1].lower() + text[1:]


def _transport_error(
    exc: httpx.TransportError, exchange: _Exchange[Any], timeout: float
) -> TransportError:
    url, where = _safe_url(exchange.url), exchange.where
    if isinstance(exc, httpx.ConnectTimeout):
        return RequestTimeout(f"cannot connect to {where}: timed out after {timeout:g} s", url=url)
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeout(f"no answer from {where} within {timeout:g} s", url=url)
    if isinstance(exc, httpx.ConnectError):
        return ConnectError(f"cannot connect to {where}: {_reason(exc)}", url=url)
    if isinstance(exc, httpx.NetworkError | httpx.RemoteProtocolError):
        return ConnectError(f"connection to {where} failed: {_reason(exc)}", url=url)
    return TransportError(f"request to {where} failed: {_reason(exc)}", url=url)


def _safe_url(url: str) -> str:
    """``url`` without a user name or password, which must never reach a message or log."""
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else url


def _check_url(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise ValueError(f"invalid URL {url!r}: {exc}") from exc
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"invalid URL {url!r}: expected http(s)://host[:port]/path")
    return url


@dataclass(frozen=True, slots=True)
class _Exchange(Generic[T]):
    """One HTTP request to make and how to turn its response into a value."""

    method: str
    url: str
    body: bytes | None
    finish: Callable[[httpx.Response], T]
    where: str  # how messages name the service: its URL without credentials, or its peer name

    @property
    def headers(self) -> dict[str, str] | None:
        return {"Content-Type": "application/json"} if self.body is not None else None


class _ClientBase:
    """Settings and request building shared by the blocking and the async client."""

    def __init__(
        self,
        url: str,
        token: str | None,
        timeout: float,
        token_header: str,
        headers: Mapping[str, str] | None,
        *,
        peer: str | None,
    ) -> None:
        if not (isinstance(timeout, int | float) and 0 < timeout < math.inf):
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        self.url = _check_url(url)
        self.peer = peer
        self.where = f"service {peer!r}" if peer else _safe_url(self.url)
        self.timeout = float(timeout)
        self._ids = itertools.count(1)
        self._name: str | None = None
        self._headers = {"Accept": "application/json", **(headers or {})}
        if token is not None:
            self._headers[token_header] = token

    def __repr__(self) -> str:  # never shows the token, nor a password in the URL
        return f"{type(self).__name__}({_safe_url(self.url)!r})"

    def _rpc(self, body: bytes, finish: Callable[[Any, float | None], T]) -> _Exchange[T]:
        url, where = self.url, self.where
        return _Exchange(
            "POST", url, body, lambda response: finish(*_read_body(response, url, where)), where
        )

    def _call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Exchange[Any]:
        request_id = next(self._ids)
        body = _request(method, args, kwargs, request_id)
        return self._rpc(body, lambda p, retry: _call_reply(p, request_id, self.where, retry))

    def _notify(
        self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> _Exchange[None]:
        body = _request(method, args, kwargs, None)
        return self._rpc(body, lambda p, retry: _notification_reply(p, self.where, retry))

    def _raw(self, body: bytes) -> _Exchange[Any]:
        return self._rpc(body, lambda payload, _retry: payload)

    def _discover_name(self) -> _Exchange[str]:
        call = self._call("rpc.discover", (), {})

        def finish(response: httpx.Response) -> str:
            self._name = _service_name(call.finish(response), self.where)
            return self._name

        return _Exchange(call.method, call.url, call.body, finish, call.where)

    def _health(self, probe: str) -> _Exchange[Health]:
        # The probes sit beside the JSON-RPC endpoint: .../api -> .../livez.
        base = httpx.URL(self.url)
        folder = base.path.rstrip("/").rpartition("/")[0]
        url = str(base.copy_with(path=f"{folder}/{probe}", query=None))
        where = self.where if self.peer else _safe_url(url)
        return _Exchange("GET", url, None, lambda response: _health(probe, response), where)


class BatchResult:
    """The answer to one call of a batch; read it with ``result()`` once the batch is sent."""

    __slots__ = ("_error", "_state", "_value", "method", "request_id")

    def __init__(self, method: str, request_id: int) -> None:
        self.method = method
        self.request_id = request_id
        self._state = "pending"
        self._value: Any = None
        self._error: BaseException | None = None

    def done(self) -> bool:
        """True once the batch has been answered (or has failed)."""
        return self._state == "done"

    def result(self) -> Any:
        """The call's result; raises its ``RPCError``, or the batch's ``ClientError``."""
        if self._state == "pending":
            raise RuntimeError("the batch has not been sent yet: read results after its block")
        if self._state == "discarded":
            raise RuntimeError("the batch was not sent: its block raised an exception")
        if self._error is not None:
            raise self._error
        return self._value

    def _settle(self, value: Any, error: BaseException | None) -> None:
        if self._state == "pending":
            self._state, self._value, self._error = "done", value, error


class _BatchBase:
    """Collects calls and notifications; sent as one JSON array when its block ends."""

    def __init__(self, client: _ClientBase) -> None:
        self._client = client
        self._parts: list[bytes] = []
        self._results: list[BatchResult] = []
        self._open = True
        self.methods: _Namespace[BatchResult] = _Namespace(self._add_call)
        self.notifications: _Namespace[None] = _Namespace(self._add_notification)

    def call(self, method: str, /, *args: Any, **kwargs: Any) -> BatchResult:
        """Add a call; its answer is in the returned ``BatchResult`` after the block."""
        return self._add_call(method, args, kwargs)

    def notify(self, method: str, /, *args: Any, **kwargs: Any) -> None:
        """Add a notification (no answer)."""
        self._add_notification(method, args, kwargs)

    def _check_open(self) -> None:
        if not self._open:
            raise RuntimeError("this batch has already been sent")

    def _add_call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> BatchResult:
        self._check_open()
        request_id = next(self._client._ids)
        self._parts.append(_request(method, args, kwargs, request_id))
        self._results.append(BatchResult(method, request_id))
        return self._results[-1]

    def _add_notification(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._check_open()
        self._parts.append(_request(method, args, kwargs, None))

    def _close(self, send: bool) -> _Exchange[None] | None:
        """The request to send, or None for an empty or abandoned batch."""
        self._check_open()
        self._open = False
        if not send:
            for result in self._results:
                result._state = "discarded"
            return None
        if not self._parts:  # an empty array is an invalid request (spec section 6)
            return None
        body = b"[" + b",".join(self._parts) + b"]"
        return self._client._rpc(body, self._settle)

    def _settle(self, payload: Any, retry_after: float | None) -> None:
        ids = [result.request_id for result in self._results]
        outcomes = _batch_reply(payload, ids, self._client.where, retry_after)
        for result in self._results:
            result._settle(*outcomes[result.request_id])

    def _fail(self, exc: BaseException) -> None:
        for result in self._results:
            result._settle(None, exc)


class Batch(_BatchBase):
    """A batch of a ``RemoteClient``: ``with client.batch() as batch: ...``."""

    _client: RemoteClient

    def __enter__(self) -> Batch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        exchange = self._close(send=exc_type is None)
        if exchange is not None:
            try:
                self._client._send(exchange)
            except (ClientError, errors.RPCError) as failure:
                self._fail(failure)
                raise


class AsyncBatch(_BatchBase):
    """A batch of an ``AsyncRemoteClient``: ``async with client.batch() as batch: ...``."""

    _client: AsyncRemoteClient

    async def __aenter__(self) -> AsyncBatch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        exchange = self._close(send=exc_type is None)
        if exchange is not None:
            try:
                await self._client._send(exchange)
            except (ClientError, errors.RPCError) as failure:
                self._fail(failure)
                raise


class RemoteClient(_ClientBase):
    """A blocking JSON-RPC client for one service endpoint (the ``.../api`` URL).

    ``peer`` names the service in error messages instead of its URL (see the module docstring).
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        token_header: str = "X-Api-Token",  # noqa: S107 (a header name, not a secret)
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        peer: str | None = None,
    ) -> None:
        super().__init__(url, token, timeout, token_header, headers, peer=peer)
        self._http = httpx.Client(transport=transport, timeout=self.timeout, headers=self._headers)
        self.methods: _Namespace[Any] = _Namespace(lambda m, a, k: self._send(self._call(m, a, k)))
        self.notifications: _Namespace[None] = _Namespace(
            lambda m, a, k: self._send(self._notify(m, a, k))
        )

    def _send(self, exchange: _Exchange[T]) -> T:
        try:
            response = self._http.request(
                exchange.method, exchange.url, content=exchange.body, headers=exchange.headers
            )
        except httpx.TransportError as exc:
            raise _transport_error(exc, exchange, self.timeout) from exc
        return exchange.finish(response)

    def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` and return its result; raise its error as an ``RPCError``."""
        return self._send(self._call(method, args, kwargs))

    def notify(self, method: str, /, *args: Any, **kwargs: Any) -> None:
        """Send ``method`` as a notification: no id, no result."""
        self._send(self._notify(method, args, kwargs))

    def send_raw(self, body: bytes) -> Any:
        """POST ``body`` as it is and return the decoded answer (None when there is none)."""
        return self._send(self._raw(body))

    @property
    def name(self) -> str:
        """The service's name (``info.title`` of ``rpc.discover``), asked once and cached."""
        return self._name if self._name is not None else self._send(self._discover_name())

    def health(self, probe: str = "readyz") -> Health:
        """GET the service's ``/livez`` or ``/readyz`` (beside the ``/api`` URL)."""
        return self._send(self._health(probe))

    def batch(self) -> Batch:
        """A batch: calls made on it inside its ``with`` block go out as one request."""
        return Batch(self)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> RemoteClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncRemoteClient(_ClientBase):
    """The asyncio twin of ``RemoteClient``: the same API, awaited (``peer`` as there)."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        token_header: str = "X-Api-Token",  # noqa: S107 (a header name, not a secret)
        transport: httpx.AsyncBaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
        peer: str | None = None,
    ) -> None:
        super().__init__(url, token, timeout, token_header, headers, peer=peer)
        self._http = httpx.AsyncClient(
            transport=transport, timeout=self.timeout, headers=self._headers
        )
        self.methods: _Namespace[Awaitable[Any]] = _Namespace(
            lambda m, a, k: self._send(self._call(m, a, k))
        )
        self.notifications: _Namespace[Awaitable[None]] = _Namespace(
            lambda m, a, k: self._send(self._notify(m, a, k))
        )

    async def _send(self, exchange: _Exchange[T]) -> T:
        try:
            response = await self._http.request(
                exchange.method, exchange.url, content=exchange.body, headers=exchange.headers
            )
        except httpx.TransportError as exc:
            raise _transport_error(exc, exchange, self.timeout) from exc
        return exchange.finish(response)

    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        """Call ``method`` and return its result; raise its error as an ``RPCError``."""
        return await self._send(self._call(method, args, kwargs))

    async def notify(self, method: str, /, *args: Any, **kwargs: Any) -> None:
        """Send ``method`` as a notification: no id, no result."""
        await self._send(self._notify(method, args, kwargs))

    async def send_raw(self, body: bytes) -> Any:
        """POST ``body`` as it is and return the decoded answer (None when there is none)."""
        return await self._send(self._raw(body))

    async def get_name(self) -> str:
        """The service's name (``info.title`` of ``rpc.discover``), asked once and cached."""
        return self._name if self._name is not None else await self._send(self._discover_name())

    async def health(self, probe: str = "readyz") -> Health:
        """GET the service's ``/livez`` or ``/readyz`` (beside the ``/api`` URL)."""
        return await self._send(self._health(probe))

    def batch(self) -> AsyncBatch:
        """A batch: calls made on it inside its ``async with`` block go out as one request."""
        return AsyncBatch(self)

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRemoteClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
