"""Batches: calls collected inside a block and sent as one JSON array when it ends."""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from service_template.protocol import errors

from . import replies
from .errors import ClientError
from .exchange import ClientBase, Exchange
from .proxy import Namespace

if TYPE_CHECKING:
    from .aio import AsyncRemoteClient
    from .sync import RemoteClient


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

    def __init__(self, client: ClientBase) -> None:
        self._client = client
        self._parts: list[bytes] = []
        self._results: list[BatchResult] = []
        self._open = True
        self.methods: Namespace[BatchResult] = Namespace(self._add_call)
        self.notifications: Namespace[None] = Namespace(self._add_notification)

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
        self._parts.append(replies.encode_request(method, args, kwargs, request_id))
        self._results.append(BatchResult(method, request_id))
        return self._results[-1]

    def _add_notification(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._check_open()
        self._parts.append(replies.encode_request(method, args, kwargs, None))

    def _close(self, send: bool) -> Exchange[None] | None:
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
        return self._client._rpc(body, self._settle, "__batch__")

    def _settle(self, payload: Any, retry_after: float | None) -> None:
        ids = [result.request_id for result in self._results]
        outcomes = replies.batch_reply(payload, ids, self._client.where, retry_after)
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
