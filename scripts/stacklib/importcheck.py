"""Run as a script: import a ``module:Class`` target the way ``serve`` would, and say where it
fails. The reloader runs it before it replaces a running service, so a broken save never takes
down the process that still serves.

    python importcheck.py services.hello:HelloService
    python importcheck.py --standby GO ANSWER -- serve services.hello:HelloService ...

Exit status 0 when the target imports; 1 with one line ``FILE:LINE: Error: message`` (the
innermost frame in the failing code) on stderr, then the traceback.

``--standby`` is the reloader's fast path: the new process imports the code (the check) while
the old one still serves, writes ``ready`` (or the error) to the file descriptor ANSWER, and
waits for ``go`` on GO, sent once the old process has stopped; then it runs the service
command line, already imported. Anything but ``go`` (the reloader gave up) ends it.
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


def report(exc: BaseException) -> str:
    """``FILE:LINE: Error: message``, then the traceback."""
    message = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, SyntaxError):
        message = exc.msg
    lines = traceback.format_exception(exc)
    return f"{where(exc)}: {type(exc).__name__}: {message}\n" + "".join(lines)


def problem(target: str) -> str | None:
    """The error report when ``target`` does not import, else None."""
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        if attribute and not hasattr(module, attribute):
            return f"{module.__file__}:1: {module_name} has no {attribute!r}\n"
    except BaseException as exc:  # whatever the import raises is the answer
        return report(exc)
    return None


def preload() -> str | None:
    """Import the serving machinery too, before ``ready``: after ``go`` the old process is
    gone and the port is dark until the new one listens, so that wait holds no imports. The
    error report if it fails (an edit of the runtime's own files)."""
    try:
        from service_template import runner

        runner.preload()
    except BaseException as exc:
        return report(exc)
    return None


def check(target: str) -> int:
    failed = problem(target)
    if failed is not None:
        sys.stderr.write(failed)
        return 1
    return 0


def standby(go: int, answer: int, command: list[str]) -> int:
    target = next((command[i + 1] for i, w in enumerate(command[:-1]) if w == "serve"), None)
    failed = (problem(target) if target else None) or preload()
    with os.fdopen(answer, "w") as out:
        out.write(failed if failed is not None else "ready\n")
    if failed is not None:
        return 1
    with os.fdopen(go) as signal_in:
        if signal_in.readline().strip() != "go":
            return 0
    from service_template.cli import main

    return main(command)


if __name__ == "__main__":
    # Import from the working directory (the repository), as `python -m service_template` does,
    # not from this script's folder.
    sys.path[0] = os.getcwd()
    if sys.argv[1] == "--standby":
        sys.exit(standby(int(sys.argv[2]), int(sys.argv[3]), sys.argv[5:]))
    sys.exit(check(sys.argv[1]))
