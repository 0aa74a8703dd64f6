"""A service in this process, on a free loopback port, served from a background thread.

The service runs on its own event loop in a thread, through the same start and drain as
``serve`` (``runner.running``), so a test talks to it over real HTTP with any client, sync or
async, while the test's own code stays synchronous.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..client import RemoteClient
from ..config import Settings
from ..loader import load_service_class
from ..service import MicroService

__all__ = ["RunningService", "serve_in_thread"]

START_LIMIT = 30.0  # seconds for on_start and the listener
STOP_LIMIT = 30.0  # seconds for the drain and on_stop


@dataclass
class RunningService:
    """A service served in this process: where it listens and how to call it."""

    service: MicroService
    url: str
    token: str | None = None
    _clients: list[RemoteClient] = field(default_factory=list, repr=False)

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``: add ``/livez``, ``/readyz``, ``/metrics``."""
        return self.url.removesuffix("/api")

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or 0

    def client(
        self, token: str | None = None, *, anonymous: bool = False, **options: Any
    ) -> RemoteClient:
        """A ``RemoteClient`` bound to this service, closed when the service stops. It sends
        ``token``, else the service's own; ``anonymous=True`` sends none."""
        sent = None if anonymous else token or self.token
        client = RemoteClient(self.url, token=sent, **options)
        self._clients.append(client)
        return client


def _settings(
    cls: type[MicroService], token: str | None, environ: Mapping[str, str], given: dict[str, Any]
) -> Settings:
    overrides: dict[str, Any] = {"host": "127.0.0.1", "port": 0, **given}
    if token is not None:
        overrides["api_token"] = token
    return cls.load_settings(environ, None, overrides)  # the service's own settings_class


@contextlib.contextmanager
def serve_in_thread(
    target: type[MicroService] | MicroService | str,
    *,
    token: str | None = None,
    environ: Mapping[str, str] | None = None,
    **settings: Any,
) -> Iterator[RunningService]:
    """Serve ``target`` (a class, an instance, or ``module:Class``) until the block ends.

    A class or target is built with settings from ``environ`` (default: none, so the caller's
    ``SERVICE_*`` variables never leak in) and ``settings`` (``call_timeout=2`` ...), on
    127.0.0.1 and a free port; ``token`` becomes its API token. At the end of the block it
    drains and stops as on SIGTERM, and every client made with ``client()`` is closed.
    """
    if isinstance(target, MicroService):
        service = target
    else:
        cls = load_service_class(target) if isinstance(target, str) else target
        service = cls(_settings(cls, token, environ or {}, settings))
    from ..runner import running

    started = threading.Event()
    box: dict[str, Any] = {}

    async def body() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        stopper: Callable[[], object] = lambda: loop.call_soon_threadsafe(stop.set)  # noqa: E731
        box["stop"] = stopper
        try:
            async with running(service, stop=stop) as url:
                box["url"] = url
                started.set()
                await stop.wait()
        except BaseException as exc:  # reported to the test's thread, which re-raises it
            box["error"] = exc
        finally:
            started.set()

    thread = threading.Thread(target=asyncio.run, args=(body(),), daemon=True)
    thread.start()
    if not started.wait(START_LIMIT):
        raise AssertionError(f"{service.service_name} did not start within {START_LIMIT}s")
    if "error" in box:
        thread.join(STOP_LIMIT)
        raise box["error"]
    running_service = RunningService(service, box["url"], token)
    try:
        yield running_service
    finally:
        for client in running_service._clients:
            client.close()
        box["stop"]()
        thread.join(STOP_LIMIT)
        if thread.is_alive():
            raise AssertionError(f"{service.service_name} did not stop within {STOP_LIMIT}s")
        if "error" in box:
            raise box["error"]
