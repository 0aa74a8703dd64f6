"""Run a service: resolve what to serve, start it, stop it gracefully.

Shutdown order on SIGTERM or SIGINT (or ``MicroService.stop()``): readiness fails at once, the
listener closes, requests already admitted finish (up to ``drain_timeout``), connections
close, ``on_stop`` runs, and the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Mapping
from typing import Any

from .config import Settings
from .loader import load_service_class
from .logs import configure_logging
from .service import MicroService, StartupError

log = logging.getLogger("service_template")

__all__ = ["StartupError", "resolve", "run", "running", "serve", "serve_forever"]


def resolve(
    target: str | None,
    environ: Mapping[str, str],
    config_file: str | None,
    overrides: Mapping[str, Any],
) -> tuple[type[MicroService], Settings]:
    """The service class and its effective settings (``ConfigError``/``StartupError``)."""
    first = Settings.load(environ, config_file, overrides)
    target = target or first.target
    if not target:
        raise StartupError(
            "nothing to serve: give TARGET (package.module:Class or path/to/file.py:Class) "
            "or set SERVICE_TARGET"
        )
    cls = load_service_class(target)
    return cls, Settings.load(environ, config_file, overrides, defaults=cls.class_defaults())


def run(cls: type[MicroService], settings: Settings) -> int:
    """Serve until stopped; the process exit status."""
    configure_logging(settings.log_level, log_format=settings.log_format)
    if settings.workers > 1:
        from .http.workers import run_workers

        return run_workers(cls, settings)
    try:
        serve_forever(cls(settings))
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def serve_forever(service: MicroService) -> None:
    """Serve on a fresh event loop until a signal or ``service.stop()``.

    If a plain method is still running in the thread pool after the drain (it passed its
    deadline and cannot be interrupted), the process exits at once instead of letting the
    interpreter wait for that thread: the drain deadline is a promise to the orchestrator.
    """
    if not asyncio.run(serve(service)):
        log.warning("exiting with a plain method still running in the thread pool")
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


async def serve(
    service: MicroService,
    *,
    sockets: list[socket.socket] | None = None,
    admin_sockets: list[socket.socket] | None = None,
) -> bool:
    """Serve on the running loop until a signal or ``service.stop()``, then drain.

    Returns False if work was left running in the thread pool (see ``serve_forever``)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(signum, stop.set)
    async with running(service, sockets=sockets, admin_sockets=admin_sockets, stop=stop):
        await stop.wait()
    return service._clean_exit


@contextlib.asynccontextmanager
async def running(
    service: MicroService,
    *,
    sockets: list[socket.socket] | None = None,
    admin_sockets: list[socket.socket] | None = None,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[str]:
    """Start ``service`` on the running loop and yield its URL; drain on exit.

    Tests use it to run a real server in-process on a free port (``port=0``).
    """
    from .http.server import Server
    from .runtime import Runtime

    runtime = Runtime(service, service.settings)
    server = Server(runtime)
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    service._stopper = lambda: loop.call_soon_threadsafe(stop.set)
    await service.on_start()
    try:
        try:
            port = await server.listen(sockets, admin_sockets)
        except OSError as exc:
            where = f"{service.settings.host}:{service.settings.port}"
            raise StartupError(f"cannot listen on {where}: {exc.strerror or exc}") from exc
        host = service.settings.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 - display only
        service.url = service.settings.accessible_at or f"http://{shown}:{port}/api"
        fields = {"service": runtime.name, "url": service.url, "host": host, "port": port}
        if server.admin_port is not None:
            fields["admin_port"] = server.admin_port
        log.info("listening", extra={"fields": fields})
        # What start-up made lives as long as the process: freeze it, so that a full garbage
        # collection (which pauses every thread, the event loop's too) scans only what requests
        # made since. Measured: 30-90 ms pauses while a large body is decoded, a few ms frozen.
        gc.collect()
        gc.freeze()
        try:
            yield service.url
        finally:
            log.info("draining", extra={"fields": {"in_flight": runtime.in_flight}})
            await server.drain()
    finally:
        await service.on_stop()
        await service.close_peers()
        service._clean_exit = runtime.close()
        if runtime.call_log is not None:
            runtime.call_log.flush()
        service._stopper = None
        log.info("stopped", extra={"fields": {"service": runtime.name}})
