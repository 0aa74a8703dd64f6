"""The service API: ``MicroService``, the base class a service subclasses.

Its methods are declared with the decorators of ``declarations.py`` (``public_method``,
``private_api_method``, ``readiness_check``), which only record a spec on the function; the
method registry is built from them when the service starts (``build_registry``).

The seams a service uses, each with one way in: its own settings (``settings_class``), its
resources (``lifespan``, and the ``on_start``/``on_stop`` hooks), its readiness checks
(``@readiness_check`` or ``add_readiness_check`` at any time), its metrics
(``metrics_registry``) and its peers (``get_service``). ``start()`` runs it exactly as
``python -m service_template serve`` does; the runtime behind it never imports this module.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, ClassVar

from .auth import HeaderStrategy, TokenStrategy, extract_token, tokens_match
from .config import Settings
from .context import API_TOKEN_PRINCIPAL, HeaderView
from .declarations import build_registry, builtin, readiness_methods
from .errors import ConfigError, StartupError
from .hooks import Hook
from .protocol import Method
from .routing import Route

if TYPE_CHECKING:
    from .client import AsyncRemoteClient
    from .client_metrics import ClientMetrics
    from .metrics import CollectorRegistry

__all__ = ["MicroService"]


class MicroService:
    """Base class of a service: subclass it, decorate methods, call ``start()``.

    Class attributes are defaults that configuration (file, environment, flags) overrides.
    ``settings_class`` names the service's own settings: a subclass of ``config.Settings``
    whose ``setting(...)`` fields are read like the runtime's (``SERVICE_<NAME>``, the YAML
    file, ``--set name=value``); annotate ``settings: ThatClass`` too, for type checkers.
    """

    name: ClassVar[str] = "service"
    host: ClassVar[str] = "127.0.0.1"
    port: ClassVar[int] = 8000
    accessible_at: ClassVar[str | None] = None
    # Published in the OpenRPC document; None means the project's version (pyproject.toml).
    version: ClassVar[str | None] = None
    validation_strategies: ClassVar[Sequence[TokenStrategy]] = (HeaderStrategy(),)
    settings_class: ClassVar[type[Settings]] = Settings
    routes: ClassVar[Sequence[Route | tuple[str, type]]] = ()
    """HTTP routes of this service, served next to ``/api`` (see ``routing``)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self._settings = settings
        self._peers: dict[str, AsyncRemoteClient] = {}
        self._extra_checks: dict[str, Callable[[], Any]] = {}
        self._metrics_registry: CollectorRegistry | None = None
        self._client_metrics: ClientMetrics | None = None
        self._stopper: Callable[[], Any] | None = None
        self._clean_exit = True  # False when serving ended with pool threads still running
        self.url: str | None = None  # where it answers once started (gemstone's accessible_at)

    # -- configuration -------------------------------------------------------------------------

    @classmethod
    def class_defaults(cls) -> dict[str, Any]:
        """The class attributes that configuration may override."""
        return {
            "name": cls.name,
            "host": cls.host,
            "port": cls.port,
            "accessible_at": cls.accessible_at,
        }

    @classmethod
    def load_settings(
        cls,
        environ: Mapping[str, str],
        config_file: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> Settings:
        """This service's settings (an instance of ``settings_class``) from every source;
        ``ConfigError`` lists every problem. ``serve`` and ``start()`` both read them here."""
        settings_class = cls.settings_class
        if not (isinstance(settings_class, type) and issubclass(settings_class, Settings)):
            raise StartupError(
                f"{cls.__qualname__}.settings_class must be a subclass of "
                f"service_template.Settings, got {settings_class!r}"
            )
        return settings_class.load(environ, config_file, overrides, cls.class_defaults())

    @property
    def settings(self) -> Settings:
        """Effective settings; loaded from the process environment on first use if none given."""
        if self._settings is None:
            self._settings = self.load_settings(os.environ)
        return self._settings

    @property
    def service_name(self) -> str:
        return self.settings.name or type(self).name

    # -- auth ----------------------------------------------------------------------------------

    @builtin  # cheap, so the runtime calls it on the event loop; an override runs in the pool
    def api_token_is_valid(self, api_token: str) -> bool:
        """Whether ``api_token`` may call private methods.

        The default compares it in constant time with the configured ``SERVICE_API_TOKEN``;
        with no token configured every call to a private method is refused. Override it to
        check tokens another way (it may be ``async def``; a plain one runs in a thread pool).
        """
        secret = self.settings.api_token
        return tokens_match(api_token, secret.reveal() if secret is not None else None)

    @builtin  # the runtime's token path; an override is called as declared
    def authenticate(self, headers: HeaderView) -> Any:
        """Who is calling: a principal (any object; ``context.Principal`` fits) or None (a falsy
        value counts as None).

        Private methods run only for a principal, and every method and hook of the request
        sees it as ``current_call().principal``. It is asked once per HTTP request, when a
        private method or a hook (``await call.authenticate()``) first needs it.

        The default reads a token with ``validation_strategies`` and returns
        ``API_TOKEN_PRINCIPAL`` when ``api_token_is_valid`` accepts it. Override it to check a
        JWT or a session instead (``async def``, or plain: a plain one runs in a small thread
        pool of its own, so a stuck identity store cannot take the methods' threads). Fails
        closed: an exception is logged and counts as None.
        """
        token = extract_token(self.validation_strategies, headers)
        return API_TOKEN_PRINCIPAL if token and self.api_token_is_valid(token) is True else None

    def call_hooks(self) -> Sequence[Hook]:
        """Hooks run around every call, the first outermost (see ``hooks``); none by default,
        which keeps the per-call cost at its minimum. Read once, when serving starts."""
        return ()

    # -- readiness -----------------------------------------------------------------------------

    def add_readiness_check(self, name: str, check: Callable[[], Any]) -> None:
        """Register a readiness check at any time (in ``lifespan``, ``on_start``, or later):
        ``/readyz`` reads the checks each time it is asked. ``check`` takes no arguments, may be
        ``async``, and fails by returning something falsy, raising, or passing its timeout."""
        self._extra_checks[name] = check

    def readiness_checks(self) -> dict[str, Callable[[], Any]]:
        """The checks ``/readyz`` runs now: the ``@readiness_check`` methods and those added."""
        checks = readiness_methods(self)
        checks.update(self._extra_checks)
        return checks

    # -- peers ---------------------------------------------------------------------------------

    def get_service(self, name: str) -> AsyncRemoteClient:
        """An async client for a peer service, found by name in ``settings.peers``.

        It sends the peer's own token (``settings.peer_token``: from ``peer_token_files``, or
        this service's ``api_token`` when those are not configured).

        One client per peer for the life of the service (connections are reused); closed when
        the service stops. Its calls, retries and breaker show on ``/metrics``
        (``client_metrics``), labelled with ``peer=name``.
        """
        client = self._peers.get(name)
        if client is None:
            from .client import AsyncRemoteClient
            from .discovery import resolve_url

            url = resolve_url(name, self.settings.peers)
            secret = self.settings.peer_token(name)
            # peer=name: its errors say "service 'hello'", never the internal URL, so a method
            # that passes one on cannot show callers the stack's addresses.
            client = AsyncRemoteClient(
                url,
                token=secret.reveal() if secret else None,
                peer=name,
                metrics=self._client_metrics,
            )
            self._peers[name] = client
        return client

    # -- metrics -------------------------------------------------------------------------------

    @property
    def metrics_registry(self) -> CollectorRegistry:
        """The registry to give your own prometheus_client instruments (``registry=``), so they
        appear on ``/metrics``, also with ``--workers N``. Given when the service starts: create
        instruments in ``lifespan`` or ``on_start``, not at import time (see the README)."""
        if self._metrics_registry is None:
            raise RuntimeError(
                "metrics_registry is given when the service starts: use it in lifespan or on_start"
            )
        return self._metrics_registry

    @property
    def client_metrics(self) -> ClientMetrics | None:
        """Where a client this service makes itself reports its calls, for ``/metrics``:
        ``AsyncRemoteClient(url, peer="billing", metrics=self.client_metrics)``
        (``get_service``'s clients already do). None before the service starts and with metrics
        off; a client given None reports nothing and costs nothing extra."""
        return self._client_metrics

    # -- lifecycle -----------------------------------------------------------------------------

    def lifespan(self) -> AbstractAsyncContextManager[None]:
        """The service's resources, open while it serves: override with an async context manager.

        Entered on the event loop before the port opens (before ``on_start``) and exited after
        the drain (after ``on_stop``), also when start-up fails after it was entered::

            @contextlib.asynccontextmanager
            async def lifespan(self) -> AsyncIterator[None]:
                self.pool = await open_pool(self.settings.database_url.reveal())
                try:
                    yield
                finally:
                    await self.pool.close()
        """
        return _nothing()

    async def on_start(self) -> None:
        """Called once on the event loop before the port opens, after ``lifespan`` is entered."""

    async def on_stop(self) -> None:
        """Called once after the drain, also when ``on_start`` failed halfway."""

    async def close_peers(self) -> None:
        clients, self._peers = list(self._peers.values()), {}
        for client in clients:
            await client.aclose()

    def build_registry(self) -> dict[str, Method]:
        """Collect the decorated methods, bound to this instance; raise ``StartupError`` on
        duplicate or invalid names, so a bad service fails at start, not on first call."""
        return build_registry(self, self.settings.method_timeouts)

    def start(self) -> None:
        """Serve until SIGTERM/SIGINT or ``stop()``, then drain and return: what
        ``python -m service_template serve`` does, with the same settings (environment and
        ``SERVICE_CONFIG_FILE``; flags are the command line's), ``workers`` included.

        A configuration or start-up problem is printed as ``error: ...`` and ends the process
        with status 2, as ``serve`` does.
        """
        import sys

        from .runner import run

        try:
            settings = self.settings
        except (ConfigError, StartupError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
        status = run(lambda: self, settings)
        if status:
            raise SystemExit(status)

    def stop(self) -> None:
        """Begin a graceful stop (safe from any thread); no-op when not serving."""
        if self._stopper is not None:
            self._stopper()


@contextlib.asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield
