"""Notes: the example of a service with a database (PostgreSQL, through asyncpg's pool).

The pattern to copy for a service of your own that needs a backing service:

- **Its settings**: ``NotesSettings`` declares the database URL as a ``Secret`` (shown as ``***``
  everywhere, never logged; ``SERVICE_DATABASE_URL`` or a file named by
  ``SERVICE_DATABASE_URL_FILE``) and, optionally, the password on its own
  (``SERVICE_DATABASE_PASSWORD_FILE``: Compose hands the database and the service one secret file).
- **Its pool**: opened in ``lifespan`` before the port opens, closed after the drain. It opens no
  connection up front (``min_size=0``), so the service starts while the database is still coming
  up or is down, and says so on ``/readyz`` instead of crash-looping.
- **Its readiness**: the check ``database`` runs ``SELECT 1`` on a pooled connection. A service
  that cannot answer any call without its database is not ready without it (unlike the gateway,
  whose calls fail one peer at a time: see services/gateway.py).
- **Its errors**: a call while the database cannot be reached fails fast with ``-32010 database
  is unavailable``; the reason (never the URL) goes to the log.

The driver is async (asyncpg) on purpose: every method here runs on the event loop, where a
blocking driver would stall every other call; a blocking one (psycopg 2, say) belongs in plain
methods, which the runtime runs in its thread pool. The table is created when first needed
(``CREATE TABLE IF NOT EXISTS``); a real service would run migrations (Alembic, ...) instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from service_template import MicroService, RPCError, Secret, Settings, public_method, setting

DATABASE_UNAVAILABLE = -32010  # as the gateway's "<peer> is unavailable"
NOT_FOUND = 404
INVALID_PARAMS = -32602
MAX_TEXT = 10_000
log = logging.getLogger("services.notes")

SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id bigserial PRIMARY KEY,
    text text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""
# What a failure to reach the database looks like from asyncpg: a refused or dropped socket, a
# connect that timed out, a server shutting down, a connection the pool had to give up.
UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
)


class NotesSettings(Settings):
    """The runtime's settings and the database's."""

    database_url: Secret = setting(
        help="PostgreSQL URL `postgresql://user[:password]@host:5432/db` (a secret)"
    )
    database_password: Secret | None = setting(
        default=None, help="database password, if not in the URL (usually from a _FILE)"
    )
    database_pool_size: int = setting(
        default=5, low=1, high=100, help="most connections open to the database"
    )
    database_timeout: float = setting(
        default=3.0, low=0.1, high=60.0, help="seconds to connect to the database"
    )

    def check(self) -> Iterable[str]:
        yield from super().check()
        # The value is never quoted: it may carry a password.
        try:
            parts = urlsplit(self.database_url.reveal())
            valid = parts.scheme in ("postgresql", "postgres") and bool(parts.hostname)
        except ValueError:
            valid = False
        if not valid:
            yield "database_url: not a postgresql://user@host/db URL (value not shown)"


class NotesService(MicroService):
    """Short notes kept in PostgreSQL: add one, read one, list the newest, delete one."""

    name = "notes"
    settings_class = NotesSettings
    settings: NotesSettings

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        settings = self.settings
        password = settings.database_password
        self.pool = await asyncpg.create_pool(
            settings.database_url.reveal(),
            password=password.reveal() if password else None,
            min_size=0,  # connect on first use: start (not ready) while the database is down
            max_size=settings.database_pool_size,
            timeout=settings.database_timeout,
        )
        self._schema_ready = False
        self._database_up: bool | None = None  # as the last readiness check saw it
        self._schema_lock = asyncio.Lock()
        self.add_readiness_check("database", self.database_is_ready)
        try:
            yield
        finally:
            try:
                await asyncio.wait_for(self.pool.close(), timeout=10)
            except TimeoutError:
                log.warning("database connections still busy after 10 s: closed by force")
                self.pool.terminate()

    async def database_is_ready(self) -> bool:
        """The readiness check: a pooled connection answers ``SELECT 1``."""
        try:
            async with self.pool.acquire() as connection:
                up = bool(await connection.fetchval("SELECT 1") == 1)
            reason = "" if up else "SELECT 1 answered something else"
        except UNREACHABLE as exc:
            up, reason = False, _reason(exc)
        # One log line per change, not per probe (a kubelet probes every few seconds).
        if up != self._database_up:
            if up:
                log.info("database is ready")
            else:
                log.warning("database is not ready: %s", reason)
            self._database_up = up
        return up

    @contextlib.asynccontextmanager
    async def _database(self) -> AsyncIterator[Any]:
        """A connection with the schema in place, or ``-32010 database is unavailable``."""
        try:
            async with self.pool.acquire() as connection:
                if not self._schema_ready:
                    async with self._schema_lock:  # one CREATE at a time: they race otherwise
                        if not self._schema_ready:
                            await connection.execute(SCHEMA)
                            self._schema_ready = True
                yield connection
        except UNREACHABLE as exc:
            log.warning("database is unavailable: %s", _reason(exc))
            raise RPCError(
                DATABASE_UNAVAILABLE, "database is unavailable", {"peer": "database"}
            ) from exc

    @public_method
    async def add(self, text: str) -> dict[str, Any]:
        """Store a note; returns it with its ``id`` and ``created_at`` (ISO 8601)."""
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise RPCError(INVALID_PARAMS, f"text must be 1 to {MAX_TEXT} characters")
        async with self._database() as db:
            row = await db.fetchrow(
                "INSERT INTO notes (text) VALUES ($1) RETURNING id, text, created_at", text
            )
        return _note(row)

    @public_method
    async def get(self, note_id: int) -> dict[str, Any]:
        """The note ``note_id``; error 404 when there is none."""
        _check_id(note_id)
        async with self._database() as db:
            row = await db.fetchrow("SELECT id, text, created_at FROM notes WHERE id = $1", note_id)
        if row is None:
            raise RPCError(NOT_FOUND, "note not found", {"id": note_id})
        return _note(row)

    @public_method
    async def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest notes first, at most ``limit`` (1 to 100)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            raise RPCError(INVALID_PARAMS, "limit must be an integer from 1 to 100")
        async with self._database() as db:
            rows = await db.fetch(
                "SELECT id, text, created_at FROM notes ORDER BY id DESC LIMIT $1", limit
            )
        return [_note(row) for row in rows]

    @public_method
    async def delete(self, note_id: int) -> bool:
        """Delete the note ``note_id``; False when there was none."""
        _check_id(note_id)
        async with self._database() as db:
            status = await db.execute("DELETE FROM notes WHERE id = $1", note_id)
        return bool(status == "DELETE 1")


def _check_id(note_id: Any) -> None:
    if isinstance(note_id, bool) or not isinstance(note_id, int) or not 0 < note_id < 2**63:
        raise RPCError(INVALID_PARAMS, "note_id must be a positive integer")


def _note(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "text": row["text"], "created_at": row["created_at"].isoformat()}


def _reason(exc: BaseException) -> str:
    # The exception's class and text: asyncpg's never hold the URL or the password.
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
