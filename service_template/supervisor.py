"""``serve --workers N``: N processes sharing one listening socket (pre-fork).

Nothing here is HTTP: the runner passes the bound sockets and the function each worker runs.
The parent forks the workers and then only supervises: it forwards SIGTERM and
SIGINT to every worker, so each drains its own in-flight calls, and exits 0 once all have exited
cleanly. A worker that dies on its own is replaced, within a restart budget that is a rate
(``MAX_RESTARTS`` per ``RESTART_WINDOW`` seconds): a worker that crashes once a day is replaced
for ever, one that crashes in a loop stops the whole server with status 1. Metrics aggregate
across workers through prometheus_client's multiprocess mode; its directory is emptied at start
so counts from an earlier run never leak in.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import tempfile
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("service_template.workers")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
MAX_RESTARTS = 10
RESTART_WINDOW = 60.0


class RestartBudget:
    """At most ``limit`` restarts in any ``window`` seconds (a sliding window).

    ``clock`` is injectable for tests; it must be monotonic.
    """

    def __init__(
        self,
        limit: int = MAX_RESTARTS,
        window: float = RESTART_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._recent: deque[float] = deque()

    def spend(self) -> bool:
        """Record one restart and say whether it is allowed (False: too many too fast)."""
        now = self._clock()
        while self._recent and now - self._recent[0] >= self.window:
            self._recent.popleft()
        if len(self._recent) >= self.limit:
            return False
        self._recent.append(now)
        return True


def prepare_metrics_dir() -> tuple[Path, bool]:
    """Point prometheus_client at an empty multiprocess directory; True if it was made here
    (and so is removed again at exit)."""
    raw = os.environ.get(MULTIPROC_ENV)
    path = Path(raw) if raw else Path(tempfile.mkdtemp(prefix="service-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    return path, not raw


Serve = Callable[[list[socket.socket]], None]


def run_workers(workers: int, bind: Callable[[], list[socket.socket]], serve: Serve) -> int:
    """Fork ``workers`` processes that each run ``serve(sockets)`` on the sockets ``bind``
    made, and supervise them until a signal; the exit status. ``serve`` returns when its
    worker has drained; raising means the worker failed."""
    sockets = bind()
    metrics_dir, made_here = prepare_metrics_dir()
    port = sockets[0].getsockname()[1]
    log.info("starting workers", extra={"fields": {"workers": workers, "port": port}})
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            _kill(pid, signal.SIGTERM)

    children: dict[int, int] = {}
    for index in range(workers):
        children[_fork(serve, sockets, index)] = index
    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    budget, status = RestartBudget(), 0
    while children:
        try:
            pid, wait_status = os.wait()
        except ChildProcessError:
            break
        if pid not in children:
            continue
        index = children.pop(pid)
        _mark_dead(pid)
        code = os.waitstatus_to_exitcode(wait_status)
        if stopping:
            status = status or (1 if code != 0 else 0)
        elif budget.spend():
            log.error("worker %d (pid %d) exited with %d; replacing it", index, pid, code)
            children[_fork(serve, sockets, index)] = index
        else:
            log.error(
                "worker %d keeps dying (%d restarts within %g s); stopping every worker",
                index,
                budget.limit,
                budget.window,
            )
            forward(signal.SIGTERM, None)
            status = 1
    for sock in sockets:
        sock.close()
    if made_here:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return status


def _fork(serve: Serve, sockets: list[socket.socket], index: int) -> int:
    pid = os.fork()
    if pid:
        return pid
    # In the worker: default signal dispositions until serve() installs its own handlers.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    code = 0
    try:
        serve(sockets)  # os._exit below never waits on threads
    except BaseException:
        log.exception("worker %d failed", index)
        code = 1
    finally:
        logging.shutdown()
        os._exit(code)  # never return into the parent's code path


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # already gone
        os.kill(pid, signum)


def _mark_dead(pid: int) -> None:
    from .metrics import mark_process_dead

    mark_process_dead(pid)
