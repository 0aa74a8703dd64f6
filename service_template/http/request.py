"""One HTTP request as the wire protocol received it, and the interfaces it is handed over by.

The wire protocol (``wire.py``) fills a ``Request`` from the parser's callbacks, asks the
server (``Host``) for the ``Handler`` of its path once its headers are in, and hands the
complete request to that handler, which answers it by calling ``Connection.respond`` exactly
once. Handlers: the ``/api`` endpoint (``api.py``) and the Tornado bridge (``bridge.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .framing import Refusal
    from .limits import Limits
    from .wire import Connection


class Request:
    """One HTTP request, from its first byte to its response.

    ``headers`` maps each lower-case field name to its first value; a name sent more than once
    also has its later values in ``repeated``, so nothing that arrives twice is silently
    resolved (``get_list`` returns them all). Trailer fields are never stored.
    """

    __slots__ = (
        "body",
        "chunks",
        "continue_owed",
        "handler",
        "headers",
        "keep_alive",
        "method",
        "path",
        "refusal",
        "repeated",
        "request_id",
        "size",
        "target",
        "url",
        "version",
    )

    def __init__(self) -> None:
        self.url = b""
        self.headers: dict[str, str] = {}
        self.repeated: list[tuple[str, str]] | None = None
        self.chunks: list[bytes] = []
        self.size = 0  # body bytes received
        self.method = ""
        self.version = ""
        self.target = ""  # origin form: path and query
        self.path = ""
        self.body = b""
        self.keep_alive = True
        self.request_id = ""
        self.continue_owed = False  # a 100 Continue is due once earlier responses are out
        self.refusal: Refusal | None = None
        self.handler: Handler | None = None

    def get(self, name: str, /) -> str | None:
        """The first value of a header (case-insensitive; the ``auth.Headers`` interface)."""
        return self.headers.get(name.lower())

    def get_list(self, name: str, /) -> list[str]:
        """Every value sent for a header, in order (empty if absent)."""
        key = name.lower()
        first = self.headers.get(key)
        if first is None:
            return []
        if self.repeated is None:
            return [first]
        return [first, *(value for other, value in self.repeated if other == key)]

    def all_headers(self) -> list[tuple[str, str]]:
        """Every header field (lower-case names), repeated ones included."""
        return [*self.headers.items(), *(self.repeated or ())]


class Handler(Protocol):
    """Answers the requests for some paths (Tornado's ``HTTPServerConnectionDelegate``)."""

    def body_limit(self, request: Request) -> int:
        """The largest body accepted for ``request`` (413 above)."""
        ...

    def check(self, request: Request) -> Refusal | None:
        """Called when the headers are in: a refusal, decided before the body is read."""
        ...

    def serve(self, request: Request, conn: Connection) -> None:
        """Answer a complete request: call ``conn.respond`` (or ``respond_raw``) once, now or
        later."""
        ...


class Host(Protocol):
    """What a connection needs from its server."""

    limits: Limits

    @property
    def draining(self) -> bool:
        """True once shutdown began: responses then carry ``Connection: close``."""
        ...

    def route(self, request: Request) -> Handler:
        """The handler for ``request.path``."""
        ...

    def count_rejection(self, status: int) -> None:
        """Observe a request refused before dispatch."""
        ...

    def opened(self, conn: Connection) -> bool:
        """Register a new connection; False when the per-process cap is reached."""
        ...

    def closed(self, conn: Connection) -> None:
        """Forget a connection."""
        ...

    def blocked(self, conn: Connection, blocked: bool) -> bool:
        """Note that ``conn``'s client stopped (or resumed) reading its output; True when the
        output all such connections leave unsent is now over ``limits.max_unsent_bytes``."""
        ...
