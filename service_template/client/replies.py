"""Requests encoded and answers checked: pure functions shared by both clients and batches.

An answer arrives as a ``Reply`` (status, headers, body), whatever transport carried it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

from service_template.protocol import codec, errors

from .errors import HTTPStatusError, ProtocolError, ServerOverloaded
from .urls import safe_url


class Reply(Protocol):
    """An HTTP answer as the checks read it (an ``httpx.Response`` is one)."""

    @property
    def status_code(self) -> int: ...
    @property
    def reason_phrase(self) -> str: ...
    @property
    def headers(self) -> Any: ...
    @property
    def content(self) -> bytes: ...
    @property
    def is_success(self) -> bool: ...


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


def encode_request(
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


def retry_after(value: str | None) -> float | None:
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


_NOT_JSON: Any = object()


def _decode(content: bytes) -> Any:
    """The JSON body, None when empty, or ``_NOT_JSON``."""
    if not content.strip():
        return None
    try:
        return codec.loads(content)
    except errors.ParseError:
        return _NOT_JSON


def read_body(response: Reply, url: str, where: str) -> tuple[Any, float | None]:
    """The decoded JSON-RPC payload and Retry-After; raise for answers that carry none."""
    status = response.status_code
    delay = retry_after(response.headers.get("retry-after"))
    payload = _decode(response.content)
    if status == 503 and delay is not None:
        error = payload.get("error") if isinstance(payload, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            raise ServerOverloaded(error["message"], error.get("data"), retry_after=delay)
        raise ServerOverloaded(retry_after=delay)
    looks_rpc = isinstance(payload, list) or (isinstance(payload, dict) and "jsonrpc" in payload)
    if not response.is_success and not looks_rpc:
        reason = f" {response.reason_phrase}" if response.reason_phrase else ""
        raise HTTPStatusError(
            f"HTTP {status}{reason} from {where}", url=safe_url(url), status_code=status
        )
    if payload is _NOT_JSON:
        raise ProtocolError(f"the answer from {where} is not JSON (HTTP {status})")
    return payload, delay


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


def _rpc_error(error: dict[str, Any], delay: float | None) -> errors.RPCError:
    exc = errors.error_from_dict(error)
    if isinstance(exc, errors.ServerOverloaded):
        if delay is None and isinstance(exc.data, dict):
            # A batch member refused for want of a slot: the delay is in its data.
            given = exc.data.get("retry_after")
            if isinstance(given, int | float) and not isinstance(given, bool) and given >= 0:
                delay = float(given)
        return ServerOverloaded(exc.message, exc.data, retry_after=delay)
    return exc


def _outcome(obj: dict[str, Any], delay: float | None) -> tuple[Any, Exception | None]:
    if "error" in obj:
        return None, _rpc_error(obj["error"], delay)
    return obj["result"], None


def call_reply(payload: Any, request_id: int, url: str, delay: float | None) -> Any:
    """The result of one call, or raise its error."""
    if payload is None:
        raise ProtocolError(f"{url} sent no answer to request id {request_id}")
    obj = _check_response(payload, url)
    # An error with id null means the server could not read the request's id (spec section 5).
    if not (obj["id"] is None and "error" in obj) and not (
        _is_int(obj["id"]) and obj["id"] == request_id
    ):
        raise ProtocolError(f"the answer from {url} has id {obj['id']!r}, expected {request_id}")
    value, error = _outcome(obj, delay)
    if error is not None:
        raise error
    return value


def notification_reply(payload: Any, url: str, delay: float | None) -> None:
    """Nothing, unless the server refused the notification with an error object."""
    if isinstance(payload, dict) and "error" in payload:
        raise _rpc_error(_check_response(payload, url)["error"], delay)


def batch_reply(
    payload: Any, ids: list[int], url: str, delay: float | None
) -> dict[int, tuple[Any, Exception | None]]:
    """Match a batch answer to request ids (by id, not order: spec section 6)."""
    if isinstance(payload, dict):  # the batch as a whole was refused
        obj = _check_response(payload, url)
        if "error" in obj:
            raise _rpc_error(obj["error"], delay)
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
            unmatched = unmatched or _outcome(obj, delay)[1]
        elif not _is_int(request_id) or request_id not in wanted or request_id in outcomes:
            raise ProtocolError(f"the batch answer from {url} has unexpected id {request_id!r}")
        else:
            outcomes[request_id] = _outcome(obj, delay)
    for request_id in ids:
        if request_id not in outcomes:
            missing = ProtocolError(f"{url} sent no answer to request id {request_id}")
            outcomes[request_id] = (None, unmatched or missing)
    return outcomes


def service_name(result: Any, url: str) -> str:
    """``info.title`` of an ``rpc.discover`` answer."""
    info = result.get("info") if isinstance(result, dict) else None
    title = info.get("title") if isinstance(info, dict) else None
    if not isinstance(title, str):
        raise ProtocolError(f"rpc.discover at {url} returned no info.title")
    return title


def health(probe: str, response: Reply) -> Health:
    """A probe's answer: its health+json body, or its status when the body says nothing."""
    body = _decode(response.content)
    status = body.get("status") if isinstance(body, dict) else None
    checks = body.get("checks") if isinstance(body, dict) else None
    if not isinstance(status, str):
        status = "pass" if response.is_success else "fail"
    return Health(probe, response.status_code, status, checks if isinstance(checks, dict) else {})
