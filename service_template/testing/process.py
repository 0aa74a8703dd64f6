"""A service in a subprocess on a free loopback port: ``python -m service_template serve``.

The port comes from the service's own "listening" log line (it binds port 0, so there is no
race for a port and no sleep), and ``stop()`` sends SIGTERM as an orchestrator would.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ServiceProcess", "start_process", "wait_http", "wait_until"]

START_LIMIT = 30.0  # seconds a service may take to log "listening"


@dataclass
class ServiceProcess:
    """A service running in a subprocess; its output is collected line by line."""

    proc: subprocess.Popen[str]
    port: int
    token: str | None = None
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``: add ``/livez``, ``/readyz``, ``/metrics``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The JSON-RPC endpoint, for a ``RemoteClient``."""
        return f"{self.base}/api"

    def logs(self) -> list[dict[str, object]]:
        """Every JSON log line written so far (stdout and stderr)."""
        self._drain_queue()
        out = []
        for line in self.lines:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                out.append(entry)
        return out

    def _drain_queue(self) -> None:
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return
            if line is not None:
                self.lines.append(line)

    def wait_for_log(
        self, predicate: Callable[[dict[str, object]], bool], timeout: float = 10.0
    ) -> dict[str, object]:
        """The first log line ``predicate`` accepts; AssertionError after ``timeout``."""
        found: list[dict[str, object]] = []

        def seen() -> bool:
            found.extend(entry for entry in self.logs() if predicate(entry))
            return bool(found)

        try:
            wait_until(seen, timeout, "no matching log line")
        except AssertionError:
            raise AssertionError(
                f"no matching log line within {timeout}s; got:\n" + "\n".join(self.lines[-20:])
            ) from None
        return found[0]

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; the exit status (``subprocess.TimeoutExpired`` if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close_pipe()

    def stop_cleanly(self, timeout: float = 15.0) -> None:
        """SIGTERM, and fail unless the process exits 0 in time (killing it if it hangs)."""
        try:
            code = self.stop(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("service did not stop on SIGTERM") from None
        assert code == 0, "\n".join(self.lines[-20:])

    def kill(self) -> None:
        """SIGKILL and reap; safe to call on a process that has exited."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.close_pipe()

    def close_pipe(self) -> None:
        """After exit: collect the last lines and close the pipe (no ResourceWarning)."""
        if self.proc.poll() is None:
            return
        if self.reader is not None:
            self.reader.join(timeout=5)
        self._drain_queue()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def _read_lines(proc: subprocess.Popen[str], sink: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        sink.put(line.rstrip("\n"))
    sink.put(None)


def wait_until(predicate: Callable[[], bool], limit: float, what: str) -> None:
    """Poll ``predicate`` every 20 ms until it holds; AssertionError naming ``what`` after
    ``limit`` seconds. For waiting on a server, never a sleep."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {limit}s")
        time.sleep(0.02)


def wait_http(url: str, timeout: float = 20.0, status: int | None = 200) -> None:
    """Poll ``url`` until it answers (with ``status``, unless None for any answer)."""
    last: list[object] = [None]

    def answered() -> bool:
        try:
            # Only http(s) URLs reach here: start_process builds them, callers pass their own.
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                last[0] = response.status
                return status is None or response.status == status
        except urllib.error.HTTPError as exc:
            last[0] = exc.code
            return status is None
        except OSError as exc:
            last[0] = exc
            return False

    try:
        wait_until(answered, timeout, url)
    except AssertionError:
        raise AssertionError(
            f"{url} did not answer {status} within {timeout}s (last: {last[0]})"
        ) from None


def start_process(
    target: str,
    *,
    token: str | None = None,
    env: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
    cwd: str | os.PathLike[str] | None = None,
    ready: bool = True,
    python: str = sys.executable,
    command: Sequence[str] | None = None,
) -> ServiceProcess:
    """Start ``serve TARGET --port 0`` and wait until it listens (and, if ``ready``, is live).

    ``command`` runs instead of ``serve`` (a script whose ``__main__`` calls ``start()``, for
    one); its port then comes from ``env``, e.g. ``SERVICE_PORT=0``.

    The child gets this process's environment without any ``SERVICE_*`` variable (so the
    caller's settings never leak in), plus ``SERVICE_API_TOKEN=token`` when given, plus ``env``.
    ``cwd`` decides where a ``package.module`` target is imported from. Stop it with ``stop()``
    or ``stop_cleanly()``; ``ServiceFactory.process`` does that for you.
    """
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    full_env["PYTHONUNBUFFERED"] = "1"
    if token is not None:
        full_env["SERVICE_API_TOKEN"] = token
    full_env.update(env or {})
    cmd = list(command or [python, "-m", "service_template", "serve", target, "--port", "0", *args])
    proc = subprocess.Popen(  # noqa: S603 - the caller's own target, no shell
        cmd,
        cwd=Path(cwd) if cwd is not None else None,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    sink: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc, sink), daemon=True)
    reader.start()
    service = ServiceProcess(proc, 0, token=token, reader=reader, _queue=sink)

    def listening() -> bool:
        for entry in service.logs():
            if entry.get("msg") == "listening" and "port" in entry:
                service.port = int(str(entry["port"]))
                return True
        return proc.poll() is not None

    with contextlib.suppress(AssertionError):  # judged below, with the process's output
        wait_until(listening, START_LIMIT, f"{target} to listen")
    if not service.port:
        service.kill()
        raise AssertionError(f"{target} did not start:\n" + "\n".join(service.lines[-30:]))
    if ready:
        wait_http(f"{service.base}/livez")
    return service
