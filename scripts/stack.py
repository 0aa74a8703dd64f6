#!/usr/bin/env python3
"""Run the service stack, watch it, call it, tear it down, and create services; needs only
Python 3.11+ (the first run makes .venv, as scripts/dev.py does).

    python3 scripts/stack.py up                  the stack of compose/compose.yaml as local
                                                 processes; Ctrl-C stops it (-d: in the background)
    python3 scripts/stack.py up --docker         the same stack on Docker (docker compose)
    python3 scripts/stack.py status              health and call metrics of each service
    python3 scripts/stack.py logs [-f] [SERVICE...]
    python3 scripts/stack.py call gateway greet_and_add you 2 3
    python3 scripts/stack.py attach hello        one service in this terminal: breakpoint() works
    python3 scripts/stack.py smoke               /readyz and one call per service (CI)
    python3 scripts/stack.py down                stop everything, whatever started it
    python3 scripts/stack.py new billing         a new service: module, tests, Compose, k8s
    python3 scripts/stack.py remove hello        delete one everywhere (refused while called)
    python3 scripts/stack.py peers               the k8s copy of who calls whom, from Compose

The logic lives in scripts/stacklib/; `python3 scripts/stack.py COMMAND --help` for options.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent


def _in_a_virtual_environment() -> bool:
    return sys.prefix != getattr(sys, "base_prefix", sys.prefix)


if __name__ == "__main__":
    sys.path.insert(0, str(SCRIPTS))
    import dev

    in_a_venv = _in_a_virtual_environment()
    if not in_a_venv or Path(sys.prefix).resolve() == dev.VENV.resolve():
        dev.bootstrap()  # makes .venv, or refreshes it when pyproject.toml changed
    if not in_a_venv:
        # A system Python: run again inside .venv. Another virtual environment (a test runner's,
        # or one the caller chose) is used as it is, if it has what the project needs.
        os.execv(dev.PYTHON, [str(dev.PYTHON), str(Path(__file__).resolve()), *sys.argv[1:]])
    # This checkout's own runtime comes first, whichever environment runs the script.
    sys.path.insert(1, str(REPO))
    try:
        from stacklib.cli import main
    except ImportError as exc:
        sys.exit(
            f"stack: error: {sys.executable} lacks the project's packages ({exc}); run "
            "`python3 scripts/stack.py` with a system Python to use .venv"
        )
    sys.exit(main(sys.argv[1:], REPO))
