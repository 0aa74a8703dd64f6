"""Run a service: one process, or ``workers`` processes under the pre-fork supervisor.

``MicroService.start()`` and ``python -m service_template serve`` both come here (``run``), so
they read the same settings and stop the same way. Shutdown order on SIGTERM or SIGINT (or
``MicroService.stop()``): readiness fails at once, the listener closes, requests already
admitted finish (up to ``drain_timeout``), connections close, ``on_stop`` runs, ``lifespan``
exits, and the process exits 0.

This module never imports ``service`` (which imports it, for ``start()``): a service is passed
in, and its type is named for the type checker only.
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
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

from .errors import StartupError
from .logs import configure_logging

if TYPE_CHECKING:
    from .config import Settings
    from .service import MicroService

log = logging.getLogger("service_template")

__all__ = ["run", "running", "serve", "serve_forever"]


def run(make_service: Callable[[], MicroService], settings: Settings) -> int:
    """Serve until stopped; the process exit status: 0 after a drain, 2 when the service
    cannot start for a reason its owner must fix (printed as ``error: ...``), 1 when its own
    start-up code raised (logged with the traceback, after everything started was undone).

    ``make_service`` gives the instance to serve: called once, or once in each worker.
    """
    configure_logging(settings.log_level, log_format=settings.log_format)
    try:
        if settings.workers > 1:
            return _run_workers(make_service, settings)
        serve_forever(make_service())
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception:
        log.exception("the service failed")
        return 1
    return 0


def preload() -> None:
    """Import what ``run`` imports only when it starts serving (the HTTP server, the runtime).

    For a process that imports its code before it may listen (the local stack's reloader starts
    the new process while the old one still serves): called then, it shortens the time the port
    answers nothing by the cost of these imports, a few hundred milliseconds."""
    from .http import server  # noqa: F401
    from .runtime import Runtime  # noqa: F401


def _run_workers(make_service: Callable[[], MicroService], settings: Settings) -> int:
    from .supervisor import run_workers

    api: list[socket.socket] = []  # filled by listen() in the parent, inherited by each fork
    admin: list[socket.socket] = []

    def listen() -> list[socket.socket]:
        api[:] = _bind(settings.host, settings.port, "")
        if settings.admin_port is not None:  # every worker answers probes and /metrics there
            admin[:] = _bind(settings.host, settings.admin_port, " (admin_port)")
        return [*api, *admin]

    def serve_worker(_sockets: list[socket.socket]) -> None:
        asyncio.run(serve(make_service(), sockets=api, admin_sockets=admin or None))

    return run_workers(settings.workers, listen, serve_worker)


def _bind(host: str, port: int, what: str) -> list[socket.socket]:
    from .http.server import bind

    try:
        return bind(host, port)
    except OSError as exc:
        raise StartupError(f"cannot listen on {host}:{port}{what}: {exc.strerror or exc}") from exc


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

    What is set up is torn down in reverse, whichever step fails: ``lifespan`` is entered, then
    ``on_start`` runs, then the port opens; ``on_stop`` runs even if ``on_start`` failed
    halfway, and ``lifespan`` exits even if ``on_start`` or the listen failed. Tests use it to
    run a real server in-process on a free port (``port=0``).
    """
    from .http.server import Server
    from .runtime import Runtime

    runtime = Runtime(service, service.settings)
    server = Server(runtime)
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    service._stopper = lambda: loop.call_soon_threadsafe(stop.set)
    try:
        async with contextlib.AsyncExitStack() as resources:
            resources.push_async_callback(service.close_peers)
            await resources.enter_async_context(service.lifespan())
            resources.push_async_callback(service.on_stop)
            await service.on_start()
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
            # What start-up made lives as long as the process: freeze it, so that a full
            # garbage collection (which pauses every thread, the event loop's too) scans only
            # what requests made since. Measured: 30-90 ms pauses while a large body is
            # decoded, a few ms frozen.
            gc.collect()
            gc.freeze()
            try:
                yield service.url
            finally:
                log.info("draining", extra={"fields": {"in_flight": runtime.in_flight}})
                await server.drain()
    finally:
        service._clean_exit = runtime.close()
        if runtime.tracing is not None:  # the spans of the last calls go out before the exit
            runtime.tracing.flush()
        if runtime.call_log is not None:
            runtime.call_log.flush()
        service._stopper = None
        log.info("stopped", extra={"fields": {"service": runtime.name}})
