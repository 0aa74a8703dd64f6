"""Run as a script: import a ``module:Class`` target the way ``serve`` would, and say where it
fails. The reloader runs it in a fresh interpreter before it replaces a running service, so a
broken save never takes down the process that still serves.

    python importcheck.py services.hello:HelloService

Exit status 0 when the target imports; 1 with one line ``FILE:LINE: Error: message`` (the
innermost frame in the failing code) on stderr, then the traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback


def where(exc: BaseException) -> str:
    """``file:line`` of the code that failed: a SyntaxError's own position, else the innermost
    frame of the traceback."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    frames = traceback.extract_tb(exc.__traceback__)
    # Frames of importlib's own machinery say nothing about the user's code.
    own = [f for f in frames if not f.filename.startswith("<frozen")]
    frame = (own or frames)[-1] if frames else None
    return f"{frame.filename}:{frame.lineno}" if frame else "?"


def check(target: str) -> int:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        if attribute and not hasattr(module, attribute):
            print(f"{module.__file__}:1: {module_name} has no {attribute!r}", file=sys.stderr)
            return 1
    except BaseException as exc:  # whatever the import raises is the answer
        message = str(exc).splitlines()[0] if str(exc) else ""
        if isinstance(exc, SyntaxError):
            message = exc.msg
        print(f"{where(exc)}: {type(exc).__name__}: {message}", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Import from the working directory (the repository), as `python -m service_template` does,
    # not from this script's folder.
    sys.path[0] = os.getcwd()
    sys.exit(check(sys.argv[1]))
