"""What a server process holds, read from outside: RSS and open file descriptors from /proc,
and the errors it logged.

Linux only (``/proc``), like the machines the tests run on.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from tests.conftest import ServiceProcess

# An exception that escaped to asyncio's handler, or any traceback printed outside our logger.
_ESCAPED = ("Traceback (most recent call last)", "Exception in callback", "Task exception")


class ProcessWatch:
    """Resource and log checks on one service subprocess."""

    def __init__(self, service: ServiceProcess) -> None:
        self.service = service
        self.proc = Path(f"/proc/{service.proc.pid}")
        self.seen = 0  # log lines already looked at

    def rss_mib(self) -> float:
        """Resident memory now (VmRSS), in MiB."""
        for line in (self.proc / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS in /proc status")

    def open_fds(self) -> int:
        """File descriptors the process holds now."""
        return len(os.listdir(self.proc / "fd"))

    def wait_fds_at_most(self, limit: int, within: float) -> int:
        """Poll until the process holds at most ``limit`` descriptors; fail after ``within`` s."""
        deadline = time.monotonic() + within
        while (count := self.open_fds()) > limit:
            if time.monotonic() > deadline:
                raise AssertionError(f"{count} descriptors open after {within}s (at most {limit})")
            time.sleep(0.1)
        return count

    def errors_logged(self) -> list[str]:
        """Log lines since the last call that show a server fault: level error or worse, or an
        exception that escaped (a traceback)."""
        self.service.logs()  # collects the lines that arrived meanwhile into .lines
        lines = self.service.lines
        start, self.seen = self.seen, len(lines)
        bad = [
            line
            for line in lines[start:]
            if any(marker in line for marker in _ESCAPED)
            or any(f'"level":"{level}"' in line.replace(" ", "") for level in ("error", "critical"))
        ]
        return bad

    def assert_no_errors_logged(self) -> None:
        bad = self.errors_logged()
        # The first lines are enough to see what happened; a whole traceback drowns the report.
        assert not bad, "server logged errors:\n" + "\n".join(line[:800] for line in bad[:3])
