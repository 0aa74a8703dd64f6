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
Each client keeps one connection pool (keep-alive) and gives every request a timeout. The async
client's pool runs on asyncio and httptools, the server's own core (``pool.py``,
``connection.py``: at most 100 connections, idle ones closed after 5 s, answers bounded to 32 MiB,
the timeout covering the whole exchange); the blocking client's is httpx's (the timeout applied
to each phase: connect, write, every read). ``transport`` is the seam for tests: pass an
``httpx.MockTransport`` (the async client then goes through httpx too). Requests are built and
answers checked by shared functions; the two classes differ only in how they wait.

Calls declared idempotent by the caller, ``client.idempotent.get_user(1)``, are retried on a
connection error or overload, with jittered exponential backoff, honouring ``Retry-After``, within
the current call's deadline and a retry budget (``retry=RetryPolicy(...)``, ``None`` for none;
``client.retry_stats`` counts them; see ``retry.py``). Anything else is sent exactly once. A
client given ``metrics=`` (``MicroService.get_service`` gives its service's) reports each attempt,
retry and breaker change to that service's ``/metrics`` (``instruments.py``); without it, as in a
plain script, it runs no extra code. Called
from inside a service's method, every request carries what remains of that call's deadline
(``X-Timeout-Ms``) and waits no longer (``protocol/deadline.py``), and the call's request id
(``X-Request-Id``, unless ``headers`` sets one), so its log lines can be followed across hops.

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

      - ``PeerFailing``: not sent, the peer failed repeatedly just now (``breaker.py``).
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

from .aio import AsyncRemoteClient
from .batches import AsyncBatch, Batch, BatchResult
from .breaker import BreakerPolicy, PeerFailing
from .errors import (
    ClientError,
    ConnectError,
    HTTPStatusError,
    ProtocolError,
    RequestTimeout,
    ServerOverloaded,
    TransportError,
)
from .exchange import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from .replies import Health
from .retry import RetryPolicy, RetryStats
from .sync import RemoteClient

__all__ = [
    "AsyncBatch",
    "AsyncRemoteClient",
    "Batch",
    "BatchResult",
    "BreakerPolicy",
    "ClientError",
    "ConnectError",
    "HTTPStatusError",
    "Health",
    "PeerFailing",
    "ProtocolError",
    "RemoteClient",
    "RequestTimeout",
    "RetryPolicy",
    "RetryStats",
    "ServerOverloaded",
    "TransportError",
]
