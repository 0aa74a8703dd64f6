#!/usr/bin/env python3
"""Developer entry point that needs nothing but Python 3.11+: makes the project's virtual
environment on first use, then runs what you ask for inside it.

    python3 scripts/dev.py test [PYTEST ARGS]   lint (ruff, mypy --strict), then every test tier
    python3 scripts/dev.py lint                 ruff check, ruff format --check, mypy --strict
    python3 scripts/dev.py serve [NAME|TARGET]  run one service of services/ (NAME: its module)
    python3 scripts/dev.py bootstrap            only make/refresh .venv

The environment is refreshed when pyproject.toml changes (its hash is kept in .venv).
"""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"
PYTHON = VENV / "bin" / "python"
STAMP = VENV / ".pyproject.sha256"
SERVICES = REPO / "services"  # where the project's services live (`stack.py new` adds one)


def say(message: str) -> None:
    print(f"dev: {message}", file=sys.stderr, flush=True)


def bootstrap() -> None:
    """Create .venv and install the project with its dev tools, only when needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script runs under any python3
        sys.exit("dev: Python 3.11 or newer is required")
    wanted = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()
    if PYTHON.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return
    if not PYTHON.exists():
        say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    say("installing the project and its dev tools into .venv")
    pip = [str(PYTHON), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{REPO}[dev]"], check=True)
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


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("test", [])
    bootstrap()
    if command == "bootstrap":
        return 0
    if command == "lint":
        return lint()
    if command == "test":
        status = lint()
        if status:
            return status
        return run(str(PYTHON), "-m", "pytest", *rest)
    if command == "serve":
        target = serve_target(rest[0] if rest else None)
        if "SERVICE_API_TOKEN" not in os.environ and "SERVICE_API_TOKEN_FILE" not in os.environ:
            # A throwaway token for local trials only; your own is never echoed.
            os.environ["SERVICE_API_TOKEN"] = "dev-token-change-me"  # noqa: S105 - dev only
            say("private methods take X-Api-Token: dev-token-change-me (set SERVICE_API_TOKEN)")
        say(f"serving {target}")
        os.execv(PYTHON, [str(PYTHON), "-m", "service_template", "serve", target, *rest[1:]])
    say(f"unknown command {command!r}; see the docstring: {__file__}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
