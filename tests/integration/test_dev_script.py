"""``scripts/dev.py``, the developer's everyday commands: help, fix, and one test file alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.scratch_copies import copy_worktree

pytestmark = pytest.mark.integration


def dev(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["python3", str(root / "scripts" / "dev.py"), *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of the repository sharing this .venv (same pyproject and lock: no reinstall)."""
    root = copy_worktree(tmp_path / "repo")
    (root / ".venv").symlink_to(Path(sys.prefix))
    return root


def test_help_lists_every_command() -> None:
    done = dev(REPO, "--help")
    assert done.returncode == 0
    for command in ("test", "lint", "fix", "serve", "bootstrap", "lock"):
        assert f"scripts/dev.py {command}" in done.stdout


def test_an_unknown_command_points_at_help() -> None:
    done = dev(REPO, "tset")
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "dev: unknown command 'tset'; `python3 scripts/dev.py --help` lists them"
    )


def test_one_test_file_runs_alone_without_the_lint(checkout: Path) -> None:
    done = dev(checkout, "test", "tests/unit/test_project_files.py", "-q", "-p", "no:cacheprovider")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "dev: ruff" not in done.stderr and "dev: mypy" not in done.stderr
    assert " passed" in done.stdout
    assert "test_k8s" not in done.stdout  # nothing else ran


def test_fix_formats_and_fixes_then_lints(checkout: Path) -> None:
    messy = checkout / "services" / "messy.py"
    messy.write_text("import os\nimport sys\ndef  f( x ):\n  return x\n")
    done = dev(checkout, "fix")
    assert messy.read_text() == "def f(x):\n    return x\n", done.stderr
    assert "dev: ruff check --fix ." in done.stderr and "dev: ruff format ." in done.stderr
