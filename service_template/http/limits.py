"""Every bound the HTTP layer puts on what one client can make a server process hold.

One frozen ``Limits`` per server, built from ``Settings`` (every bound a deployment may want
to tune) plus the constants below (the GET routes' body limit, the linger after a refusal and
the chunk-framing allowance: bounds that only need to be finite). The wire protocol and the
endpoints read their bounds from here and nowhere else, so this module is the list to check
when asking "what can a hostile client make this process keep?" (the admin port, served by
Tornado's server, has its own in ``admin.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Settings

# The GET routes (health, metrics, OpenRPC) never need a body.
OTHER_ROUTES_MAX_BODY = 64 * 1024
# After refusing a request whose body it will not read, the server half-closes and discards
# what the client still sends for this long, so the client reads the answer instead of a reset.
LINGER_SECONDS = 2.0
# Bytes of chunk framing allowed per chunk of a chunked body (size line and CRLFs) before the
# framing itself counts against the header limit (it is held by the parser, not the body).
CHUNK_OVERHEAD = 64


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of one server; ``Limits.from_settings`` is the only constructor used."""

    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 1024 * 1024
    other_routes_max_body: int = OTHER_ROUTES_MAX_BODY
    # Enforced in dispatch, as the answers are made (``Dispatcher``'s ``max_reply``, given the
    # same setting by the runtime): a batch's answers are dropped once past it.
    max_response_bytes: int = 4 * 1024 * 1024
    max_connections: int = 1024
    # Requests a connection may have received and not yet had answered, beyond the one being
    # answered. Reading pauses as soon as one waits, so only requests that arrive in the same
    # read queue up; a request past this bound is answered 503 and the connection closes.
    max_pipelined: int = 64
    header_timeout: float = 10.0
    body_timeout: float = 15.0
    idle_timeout: float = 60.0
    write_timeout: float = 30.0
    linger_seconds: float = LINGER_SECONDS
    # Output buffered for a client above which the connection stops reading and dispatching,
    # and below which it resumes (asyncio's transport flow control).
    write_high_water: int = 256 * 1024
    write_low_water: int = 64 * 1024
    # Output left unsent summed over the process's connections that stopped reading; a
    # connection whose stop takes it past this is cut at once. Each such connection can hold
    # up to one whole answer past its high-water mark, so without this the process's memory
    # would be bounded only by max_connections times the largest answer.
    max_unsent_bytes: int = 64 * 1024 * 1024
    chunk_overhead: int = CHUNK_OVERHEAD

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_header_bytes=settings.max_header_bytes,
            max_body_bytes=settings.max_body_bytes,
            max_response_bytes=settings.max_response_bytes,
            max_connections=settings.max_connections,
            max_pipelined=settings.max_pipelined,
            write_high_water=settings.write_buffer_bytes,
            write_low_water=settings.write_buffer_bytes // 4,
            max_unsent_bytes=settings.max_unsent_bytes,
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            idle_timeout=settings.idle_timeout,
            write_timeout=settings.write_timeout,
        )
