"""``breakpoint()`` in a service that may have no terminal.

The local stack (``scripts/stack.py up``) starts every service with
``PYTHONBREAKPOINT=service_template.breakpoints.stop_or_skip``. With a terminal on stdin
(``stack.py attach SERVICE``), pdb stops at the call as usual. Without one (a background
process reads /dev/null), pdb would read an end of file at once and quit by raising BdbQuit
inside the method, so a forgotten ``breakpoint()`` failed the call with -32603; here the call
goes on, and a warning names the file and line and how to stop there.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("service_template")


def _on_a_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # stdin closed
        return False


def stop_or_skip(*_args: object, **_kwargs: object) -> None:
    """``sys.breakpointhook``: pdb at the caller's line on a terminal, else a warning."""
    caller = sys._getframe(1)
    if _on_a_terminal():
        import pdb

        pdb.Pdb().set_trace(caller)
        return
    log.warning(
        "breakpoint() at %s:%d skipped: stdin is not a terminal (in a local stack, "
        "`python3 scripts/stack.py attach SERVICE` runs the service in one)",
        caller.f_code.co_filename,
        caller.f_lineno,
    )
