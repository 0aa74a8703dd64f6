"""A test kit for services built on this runtime: start one, call it, stop it cleanly.

    from service_template.testing import ServiceFactory, serve_in_thread

    def test_greets() -> None:
        with serve_in_thread(BillingService, token="t") as running:
            assert running.client().methods.greet("ada") == "hello ada"

For pytest, a fixture is a ``with`` block around ``yield``; everything it started is stopped
at the end of the test, even when the test fails::

    @pytest.fixture
    def services() -> Iterator[ServiceFactory]:
        with ServiceFactory() as factory:
            yield factory

    def test_it(services: ServiceFactory) -> None:
        hello = services.in_process(HelloService)           # a thread of this process
        gateway = services.process("services.gateway:GatewayService",   # a real subprocess
                                   env={"SERVICE_PEERS": f"hello={hello.url}"})
        with services.client(gateway.url) as client: ...

Both kinds listen on 127.0.0.1 on a free port (port 0: no races); a subprocess is stopped with
SIGTERM and must exit, an in-process one drains as on SIGTERM. Nothing here imports pytest.
"""

from __future__ import annotations

import contextlib
import secrets
from types import TracebackType
from typing import Any

from ..client import RemoteClient
from ..service import MicroService
from .inprocess import RunningService, serve_in_thread
from .process import ServiceProcess, start_process, wait_http, wait_until

__all__ = [
    "RunningService",
    "ServiceFactory",
    "ServiceProcess",
    "make_token",
    "serve_in_thread",
    "start_process",
    "wait_http",
    "wait_until",
]


def make_token() -> str:
    """A fresh random API token (URL-safe text), for one test's services and clients."""
    return secrets.token_urlsafe(24)


class ServiceFactory:
    """Starts services and clients for one test and stops every one of them at the end.

    All services it starts share ``token`` (a fresh one unless given), so they can call each
    other's private methods, and ``client()`` sends it unless told otherwise.
    """

    def __init__(self, token: str | None = None) -> None:
        self.token = token or make_token()
        self._stack = contextlib.ExitStack()
        self.processes: list[ServiceProcess] = []

    def __enter__(self) -> ServiceFactory:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop everything started so far, newest first (clients before the services)."""
        self._stack.close()

    def in_process(
        self, target: type[MicroService] | MicroService | str, **settings: Any
    ) -> RunningService:
        """``serve_in_thread(target, token=self.token, **settings)``, stopped at the end."""
        settings.setdefault("token", self.token)
        return self._stack.enter_context(serve_in_thread(target, **settings))

    def process(self, target: str, **options: Any) -> ServiceProcess:
        """``start_process(target, token=self.token, **options)``, stopped at the end
        (SIGTERM, then SIGKILL if it will not stop within 10 s)."""
        options.setdefault("token", self.token)
        started = start_process(target, **options)
        self.processes.append(started)
        self._stack.callback(_stop, started)
        return started

    def client(
        self, url: str, token: str | None = None, *, anonymous: bool = False, **options: Any
    ) -> RemoteClient:
        """A ``RemoteClient`` for ``url`` sending ``token``, else the factory's; ``anonymous=True``
        sends none. Closed at the end."""
        sent = None if anonymous else token or self.token
        client = RemoteClient(url, token=sent, **options)
        self._stack.callback(client.close)
        return client


def _stop(service: ServiceProcess) -> None:
    try:
        service.stop(timeout=10)
    except Exception:
        service.kill()
