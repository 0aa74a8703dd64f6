"""Explain a failed classic-builder ``docker build`` in one line, and list what it left behind.

    python3 scripts/stacklib/buildlog.py BUILD_LOG DOCKERFILE

Prints the reason on the first line, e.g.
``step 7/31 (Dockerfile line 52, RUN) failed: ERROR: THESE PACKAGES DO NOT MATCH THE HASHES``,
then the id of every image this build created (one a line, newest first) so the caller can
remove them: the classic builder keeps the image of each finished step, and after a failure
those are dangling images nobody will use. Images reused from the cache ("Using cache") were
there before the build and are not listed.

The line is plain text: terminal colour codes are stripped and the failing command is named by
its Dockerfile line, not quoted (a quoted RUN is long enough to be cut mid-command).
Standard library only and no package imports: scripts/ci/build-images.sh runs it as a script
with any python3, and the stack (docker_backend) imports it for `up --docker`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STEP = re.compile(r"^Step (\d+)/(\d+) : (\S+)")
IMAGE = re.compile(r"^ ---> ([0-9a-f]{12})$")
RUNNING = re.compile(r"^ ---> Running in ([0-9a-f]{12})$")
# The classic builder's own summary of a failed RUN: it quotes the whole command, so the reason
# is looked for in the step's output above it.
SUMMARY = re.compile(r"^The command .* returned a non-zero code: (\d+)$")
REASON = re.compile(r"^(error|fatal|failed)\b|\berror:", re.IGNORECASE)


def is_build_log(text: str) -> bool:
    """Whether ``text`` holds the classic builder's step lines (so ``explain`` applies)."""
    return any(STEP.match(ANSI.sub("", line)) for line in text.splitlines())


def failed_container(log: str) -> str | None:
    """The container of the step that failed, when the builder kept it.

    ``docker build --force-rm`` removes it; Compose's classic build does not, so the stack
    removes it by this id.
    """
    container = None
    for raw in log.splitlines():
        line = ANSI.sub("", raw).rstrip()
        running = RUNNING.match(line)
        if running:
            container = running[1]
        elif STEP.match(line) or IMAGE.match(line):
            container = None  # that step finished (its container was removed)
    return container


def instruction_lines(dockerfile: str) -> list[int]:
    """The line number of each instruction, in order (the builder's step N is entry N-1)."""
    numbers: list[int] = []
    continued = False
    for number, line in enumerate(dockerfile.splitlines(), start=1):
        text = line.strip()
        if not continued and text and not text.startswith("#"):
            numbers.append(number)
        if text.startswith("#") and continued:
            continue  # a comment inside a continued instruction does not end it
        continued = text.endswith("\\")
    return numbers


def explain(log: str, dockerfile: str) -> tuple[str, list[str]]:
    """The one-line reason and the ids of the images this build made (newest first)."""
    lines = [ANSI.sub("", line).rstrip() for line in log.splitlines()]
    step: tuple[int, int, str] | None = None
    step_output: list[str] = []
    made: list[str] = []
    cached = False
    for line in lines:
        match = STEP.match(line)
        if match:
            step = (int(match[1]), int(match[2]), match[3].upper())
            step_output, cached = [], False
            continue
        if line == " ---> Using cache":
            cached = True
            continue
        image = IMAGE.match(line)
        if image:
            if not cached:
                made.append(image[1])
            continue
        if line.strip() and not line.startswith(" ---> "):
            step_output.append(line.strip())
    exit_code = next((m[1] for m in map(SUMMARY.match, step_output) if m), None)
    output = [line for line in step_output if not SUMMARY.match(line)]
    reason = next((line for line in reversed(output) if REASON.search(line)), None)
    if reason is None:
        reason = output[-1] if output else "no output"
    if exit_code is not None:
        reason = f"{reason} (exit {exit_code})"
    if step is None:
        return f"failed before the first step: {reason}", made[::-1]
    number, total, keyword = step
    where = instruction_lines(dockerfile)
    line_no = f"Dockerfile line {where[number - 1]}, " if number <= len(where) else ""
    return f"step {number}/{total} ({line_no}{keyword}) failed: {reason}", made[::-1]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    log = Path(argv[0]).read_text(errors="replace")
    dockerfile = Path(argv[1]).read_text() if argv[1] != "-" else ""
    reason, made = explain(log, dockerfile)
    print(reason)
    print(*made, sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
