"""A throwaway PostgreSQL server for the tests: Debian's own programs, a fresh data directory.

``Postgres`` runs ``initdb`` (a password-protected superuser, scram-sha-256 on loopback) and
``pg_ctl start``/``stop`` on 127.0.0.1 and a free port, as the ``postgres`` user when the tests
run as root (PostgreSQL refuses to run as root). The programs come from Debian's ``postgresql``
package (scripts/ci/install-tools.sh installs it); without them the test fails in CI and skips
elsewhere (``missing_tool``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import missing_tool

USER = "notes"


def _programs() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    missing_tool("PostgreSQL is not installed: apt-get install postgresql")
    raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Postgres:
    """One server: ``url`` (with the password), ``url_without_password``, ``password``;
    ``start()``, ``stop()``; the data directory survives a stop (removed by ``close()``)."""

    def __init__(self) -> None:
        self.bin = _programs()
        self.port = _free_port()
        self.password = secrets.token_urlsafe(18)
        # Outside pytest's temporary folders: those are private to the test's user, and the
        # server may run as another one.
        self.folder = Path(tempfile.mkdtemp(prefix="st-postgres-"))
        self.data = self.folder / "data"
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.folder, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        pwfile = self.folder / "pwfile"
        pwfile.write_text(self.password + "\n", encoding="utf-8")
        if self.as_user:
            os.chown(pwfile, pwd.getpwnam("postgres").pw_uid, -1)
        pwfile.chmod(0o600)
        self._run(
            "initdb", "-D", str(self.data), "-U", USER, f"--pwfile={pwfile}",
            "--auth=scram-sha-256", "--encoding=UTF8", "--no-instructions",
        )  # fmt: skip
        pwfile.unlink()

    @property
    def url(self) -> str:
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/postgres"

    @property
    def url_without_password(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        done = subprocess.run(
            [*self.as_user, str(self.bin / program), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"{program} failed:\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        """Start and wait until it accepts connections (``pg_ctl -w``)."""
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        log = self.folder / "server.log"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(log), "-w", "start")

    def stop(self) -> None:
        """Stop at once (``-m fast``: open connections are cut, as when a database dies)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(AssertionError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def postgres(*, started: bool = True) -> Iterator[Postgres]:
    """A fresh server for one test (started unless told otherwise), removed at the end."""
    server = Postgres()
    try:
        if started:
            server.start()
        yield server
    finally:
        server.close()
