"""Generating a project from the template with copier, for the tests that check the result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import missing_tool
from tests.scratch_copies import copy_worktree

COPIER = Path(sys.executable).parent / "copier"
GIT_ID = ["-c", "user.email=test@example.com", "-c", "user.name=test"]


def run(*argv: str | Path, cwd: Path, timeout: float = 300, **env: str) -> str:
    """Run a command; fail with its output unless it succeeds. Returns stdout + stderr."""
    # The caller's SERVICE_* settings must not reach a stack (it rejects unknown ones).
    base = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    done = subprocess.run(
        [str(arg) for arg in argv],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def commit_all(repo: Path, message: str) -> None:
    run("git", "add", "-A", cwd=repo)
    run("git", *GIT_ID, "commit", "-qm", message, cwd=repo)


def make_template(dest: Path) -> Path:
    """This working tree committed into a scratch repository (copier reads git templates)."""
    if not COPIER.exists():
        missing_tool("copier is not installed: python3 scripts/dev.py bootstrap")
    repo = copy_worktree(dest)
    run("git", "init", "-q", "-b", "main", cwd=repo)
    commit_all(repo, "the template")
    return repo


def generate(template: Path, project: Path, slug: str, image: str, title: str) -> Path:
    """``copier copy`` the template's HEAD into ``project`` (a new git repository)."""
    run(
        COPIER, "copy", "--trust", "--defaults", "--vcs-ref", "HEAD",
        "--data", f"project_slug={slug}", "--data", f"image={image}",
        "--data", f"project_title={title}",
        template, project, cwd=template.parent,
    )  # fmt: skip
    run("git", "init", "-q", "-b", "main", cwd=project)
    commit_all(project, "generated from the template")
    return project
