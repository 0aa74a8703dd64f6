"""``scripts/rename.py``: a project renamed to any name the script accepts still passes its own
linters, and a name it cannot use is refused with nothing changed.

The product's name sits inside Python and YAML lines, so its length moves their width: a short
name lets ruff join a call it had split, a long one pushes a line past 100 columns. Renaming to
the shortest and the longest accepted names, then running the project's linters on the result,
finds each such line.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import missing_tool
from tests.scratch_copies import copy_worktree, snapshot

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
SHORTEST = "a"
LONGEST = "a" + "b" * 38 + "c"  # 40 characters, the most rename.py accepts


def renamed_copy(tmp_path: Path, *args: str) -> tuple[Path, subprocess.CompletedProcess[str]]:
    repo = copy_worktree(tmp_path / "repo")
    for git in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *git], cwd=repo, check=True, capture_output=True, timeout=60)
    done = subprocess.run(
        [sys.executable, "scripts/rename.py", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return repo, done


@pytest.mark.parametrize("slug", [SHORTEST, LONGEST])
def test_a_renamed_project_passes_its_linters(tmp_path: Path, slug: str) -> None:
    tools = [BIN / "ruff", BIN / "yamllint"]
    if not all(tool.is_file() for tool in tools):
        missing_tool("ruff and yamllint are needed: python3 scripts/dev.py bootstrap")
    repo, done = renamed_copy(tmp_path, slug)
    assert done.returncode == 0, done.stderr
    for argv in (
        [BIN / "ruff", "format", "--check", "."],
        [BIN / "ruff", "check", "."],
        [BIN / "yamllint", "--strict", "."],
    ):
        lint = subprocess.run(
            [str(arg) for arg in argv],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert lint.returncode == 0, f"{argv[0].name}:\n{lint.stdout[-4000:]}{lint.stderr}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Acme"], "'Acme' is not a usable name"),
        (["a" * 41], "at most 40 characters"),
        (["acme", "--image", "Registry/Acme"], "is not an image repository"),
    ],
)
def test_a_name_it_cannot_use_is_refused_and_nothing_changes(
    tmp_path: Path, args: list[str], message: str
) -> None:
    repo = copy_worktree(tmp_path / "repo")
    before = snapshot(repo)
    done = subprocess.run(
        [sys.executable, "scripts/rename.py", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("rename: error: ") and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(repo) == before


def test_a_dry_run_lists_the_files_and_changes_nothing(tmp_path: Path) -> None:
    repo = copy_worktree(tmp_path / "repo")
    before = snapshot(repo)
    done = subprocess.run(
        [sys.executable, "scripts/rename.py", "acme-billing", "--dry-run"],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "would rewrite pyproject.toml" in done.stdout
    assert "would rewrite compose/compose.yaml" in done.stdout
    assert snapshot(repo) == before
