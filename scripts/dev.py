#!/usr/bin/env python3
"""Developer entry point that needs nothing but Python 3.11+: makes the project's virtual
environment on first use, then runs what you ask for inside it.

    python3 scripts/dev.py test                 lint (ruff, mypy --strict), then every test tier
    python3 scripts/dev.py test PATH... [ARGS]  just those tests (pytest ARGS such as -k, -x)
    python3 scripts/dev.py lint                 ruff check, ruff format --check, mypy --strict
    python3 scripts/dev.py fix                  apply ruff's fixes and format the code
    python3 scripts/dev.py serve [NAME|TARGET]  run one service of services/ (NAME: its module)
    python3 scripts/dev.py bootstrap            only make/refresh .venv
    python3 scripts/dev.py lock [--upgrade]     re-resolve the lock files in requirements/

.venv is installed from the lock (requirements/dev.txt, every file checked against its hash) and
refreshed when pyproject.toml or the lock changes (their hash is kept in .venv). After editing
the dependencies in pyproject.toml, run `lock`: it keeps every pin it can and resolves only what
changed; `lock --upgrade` moves every pin to the newest version the ranges allow.
"""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import sys
import tomllib
import venv
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".pyproject.sha256"
LOCKS = REPO / "requirements"
# Every lock holds one resolution for all platforms (uv's --universal) from Python 3.11 up, with
# the hash of every file of each pinned version, so one lock serves Linux, macOS and Windows.
LOCK_PYTHON = "3.11"
SERVICES = REPO / "services"  # where the project's services live (`stack.py new` adds one)


def say(message: str) -> None:
    print(f"dev: {message}", file=sys.stderr, flush=True)


def bootstrap(check: bool = True) -> None:
    """Create .venv and install the locked dev environment plus the project, only when needed.

    ``check``: fail with a one-line hint when the lock no longer covers pyproject.toml (``lock``
    itself passes False, since it is the command that fixes that).
    """
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs under any python3
        sys.exit("dev: Python 3.11 or newer is required")
    lock = LOCKS / "dev.txt"
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes())
    digest.update(lock.read_bytes())
    wanted = digest.hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not PYTHON.exists():
        say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    say(f"installing {lock.relative_to(REPO)} (hash-checked) and the project into .venv")
    pip = [str(PYTHON), "-m", "pip", "--disable-pip-version-check"]
    # The lock holds the build backend too, so the editable install needs no isolated build
    # environment (which would fetch an unpinned setuptools).
    subprocess.run([*pip, "install", "--quiet", "--require-hashes", "-r", str(lock)], check=True)
    # Its output is setuptools' notice about editable installs: shown only when it fails.
    editable = subprocess.run(
        [*pip, "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", str(REPO)],
        capture_output=True,
        text=True,
        check=False,
    )
    if editable.returncode != 0:
        sys.exit(f"{editable.stdout}{editable.stderr}dev: installing the project failed")
    # A dependency added to pyproject.toml but not to the lock shows up here as "not installed".
    missing = subprocess.run([*pip, "check"], capture_output=True, text=True, check=False)
    if missing.returncode != 0 and check:
        first = (missing.stdout.strip().splitlines() or ["pip check failed"])[0]
        sys.exit(f"dev: the lock does not cover pyproject.toml ({first}); run: {LOCK_COMMAND}")
    STAMP.write_text(wanted + "\n")


def service_targets() -> dict[str, str]:
    """Module name -> ``services.module:Class`` for each module of services/ that defines a
    MicroService subclass; read with ``ast``, so nothing is imported (or needs .venv)."""
    found = {}
    for path in sorted(SERVICES.glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            bases = [ast.unparse(base) for base in getattr(node, "bases", [])]
            if isinstance(node, ast.ClassDef) and any(b.endswith("MicroService") for b in bases):
                found[path.stem] = f"{SERVICES.name}.{path.stem}:{node.name}"
                break
    return found


def serve_target(wanted: str | None) -> str:
    """The target ``serve`` runs: TARGET as given, NAME's module, or the first service."""
    if wanted and ":" in wanted:
        return wanted
    targets = service_targets()
    if not targets:
        sys.exit("dev: no service in services/; make one with `python3 scripts/stack.py new NAME`")
    if wanted is None:
        return next(iter(targets.values()))
    if wanted not in targets:
        sys.exit(f"dev: no service {wanted!r} in services/ (there: {', '.join(targets)})")
    return targets[wanted]


LOCK_COMMAND = "python3 scripts/dev.py lock"


def build_requirements() -> str:
    """The build backend's requirements, from pyproject.toml (no second list to keep)."""
    with (REPO / "pyproject.toml").open("rb") as f:
        requires: list[str] = tomllib.load(f)["build-system"]["requires"]
    return "".join(f"{line}\n" for line in requires)


def lock(upgrade: bool) -> int:
    """Resolve every lock file in requirements/ with uv (from the dev lock itself).

    dev.txt is resolved first; the others are constrained by it, so a package pinned in two
    locks has the same version in both. checkov.txt is its own resolution: checkov lives in its
    own environment.
    """
    uv = str(VENV / "bin" / "uv")
    base = [uv, "pip", "compile", "--quiet", "--generate-hashes", "--universal"]
    base += ["--python-version", LOCK_PYTHON, "--custom-compile-command", LOCK_COMMAND]
    if upgrade:
        base.append("--upgrade")
    dev = ["-c", "requirements/dev.txt"]
    steps: list[tuple[str, list[str], str | None]] = [
        # The build backend comes in on stdin ("-"): the editable install needs it in .venv.
        ("dev.txt", ["pyproject.toml", "--extra", "dev", "-"], build_requirements()),
        (
            "runtime.txt",
            ["pyproject.toml", "--extra", "postgres", "--extra", "tracing", *dev],
            None,
        ),
        ("build.txt", ["-", *dev], build_requirements()),
        ("tools.txt", ["requirements/tools.in", *dev], None),
        ("clients.txt", ["requirements/clients.in", *dev], None),
        ("checkov.txt", ["requirements/checkov.in"], None),
    ]
    for name, args, stdin in steps:
        say(f"locking requirements/{name}")
        done = subprocess.run(
            [*base, *args, "-o", f"requirements/{name}"],
            cwd=REPO,
            input=stdin,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            return done.returncode
    return 0


def run(*cmd: str) -> int:
    return subprocess.run(cmd, cwd=REPO, check=False).returncode


def lint() -> int:
    bin_dir = VENV / "bin"
    for cmd in (
        (str(bin_dir / "ruff"), "check", "."),
        (str(bin_dir / "ruff"), "format", "--check", "."),
        (str(bin_dir / "mypy"),),
    ):
        say(" ".join(Path(cmd[0]).name if i == 0 else part for i, part in enumerate(cmd)))
        if run(*cmd) != 0:
            return 1
    return 0


def fix() -> int:
    """ruff's safe fixes, then its formatter: what `lint` would otherwise complain about."""
    ruff = str(VENV / "bin" / "ruff")
    for cmd in ((ruff, "check", "--fix", "."), (ruff, "format", ".")):
        say(" ".join(["ruff", *cmd[1:]]))
        run(*cmd)  # what is left unfixed, `lint` reports
    return lint()


def test(args: list[str]) -> int:
    """The whole suite lints first (as CI does); a run of chosen tests is the inner loop."""
    if not args:
        status = lint()
        if status:
            return status
    return run(str(PYTHON), "-m", "pytest", *args)


def serve(args: list[str]) -> int:
    target = serve_target(args[0] if args else None)
    if "SERVICE_API_TOKEN" not in os.environ and "SERVICE_API_TOKEN_FILE" not in os.environ:
        # A throwaway token for local trials only; your own is never echoed.
        os.environ["SERVICE_API_TOKEN"] = "dev-token-change-me"  # noqa: S105 - dev only
        say("private methods take X-Api-Token: dev-token-change-me (set SERVICE_API_TOKEN)")
    say(f"serving {target}")
    os.execv(PYTHON, [str(PYTHON), "-m", "service_template", "serve", target, *args[1:]])


def show_help() -> int:
    try:
        print(__doc__)
    except BrokenPipeError:  # `dev.py --help | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("test", [])
    commands: dict[str, Callable[[], int]] = {
        "bootstrap": lambda: 0,
        "lock": lambda: lock(upgrade="--upgrade" in rest),
        "lint": lint,
        "fix": fix,
        "test": lambda: test(rest),
        "serve": lambda: serve(rest),
    }
    if command in ("-h", "--help", "help"):
        return show_help()
    handler = commands.get(command)
    if handler is None:
        say(f"unknown command {command!r}; `python3 scripts/dev.py --help` lists them")
        return 2
    bootstrap(check=command != "lock")
    return handler()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
