"""Scratch copies of the project.

``copy_worktree`` copies the files as git sees them, for any test that changes the project as
its user would; ``snapshot`` reads a copy's bytes, to compare before and after. The rest builds
the copies changed as a user would for the tests that run a copy's own tiers
(``tests/integration/test_template_survives.py``: lint, unit, integration;
``tests/container/test_copy_tiers.py``: container and clients).

A copy reuses this virtual environment and what the CI scripts installed beside it (symlinks,
``INSTALLS``); ``environment(copy)`` puts the copy first on ``PYTHONPATH``, so its own
``service_template``, ``services`` and ``tests`` are the ones imported (an editable install would
point at this checkout instead).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, defined_stack, fresh_name


def copy_worktree(dest: Path) -> Path:
    """The repository's files as git sees them: tracked ones and new ones it does not ignore."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is skipped
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


NAME = fresh_name("billing")  # the service each changed copy adds with `stack.py new`
RENAMED = "acme-ledger"  # the generated copy's product name

# What the suite runs from outside the git tree (git ignores it) is shared, as on a developer's
# machine, relative to the project's root: the tool caches, the Python clients kept apart from
# .venv and the npm packages of the JavaScript clients. A copy links each one this checkout has.
INSTALLS = (
    Path(".cache/node-tools"),
    Path(".cache/checkov-venv"),
    Path(".cache/python-clients"),
    Path("tests/clients/js/node_modules"),
)

# This environment installs the checkout in editable mode, and its import hook answers
# `import services.hello` from the checkout when the copy has no such module: a copy's test of a
# removed example would pass on the checkout's file. This sitecustomize, first on every copy
# process's path, takes the hook out, so a copy imports only its own `service_template` and
# `services` (the distribution's metadata stays, for the version).
NO_EDITABLE_HOOK = """import sys

sys.meta_path[:] = [
    finder
    for finder in sys.meta_path
    if not getattr(finder, "__module__", "").startswith("__editable__")
]
"""


def site_dir(copy: Path) -> Path:
    """A folder beside the copy holding only NO_EDITABLE_HOOK as sitecustomize.py."""
    folder = copy.parent / "site"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(NO_EDITABLE_HOOK)
    return folder


def environment(copy: Path) -> dict[str, str]:
    """This process's environment for a command run in ``copy``, without SERVICE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    path = f"{copy}{os.pathsep}{site_dir(copy)}"
    return {**env, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}


def stack(copy: Path, *args: str) -> str:
    """Run the copy's ``scripts/stack.py ARGS``; fail unless it succeeds. Returns its stderr."""
    result = subprocess.run(
        [sys.executable, "scripts/stack.py", *args],
        cwd=copy,
        env=environment(copy),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stderr


def scratch(tmp_path: Path, label: str, generated: bool = False) -> Path:
    """A copy of the project; ``generated``: a project generated from it, when it is the template
    (a generated project has no copier.yml, nor the template's tests/generation.py)."""
    if generated and (REPO / "copier.yml").is_file():
        from tests.generation import generate, make_template

        template = make_template(tmp_path / f"{label}-template")
        image = f"registry.example.com/acme/{RENAMED}"
        copy = generate(template, tmp_path / label, RENAMED, image, RENAMED).resolve()
    else:
        copy = copy_worktree(tmp_path / label).resolve()
    # The virtual environment is shared too (pre-commit's hooks name .venv/bin/...).
    (copy / ".venv").symlink_to(Path(sys.prefix))
    for installed in INSTALLS:
        source = REPO / installed
        if source.exists():
            (copy / installed).parent.mkdir(parents=True, exist_ok=True)
            (copy / installed).symlink_to(source)
    # The copy's own tests copy it in turn with `git ls-files`: make it a repository.
    for args in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=copy, check=True, timeout=60, capture_output=True)
    return copy


def replaced_copy(tmp_path: Path) -> Path:
    """The copy labelled ``replaced``: every service of the project removed with ``stack.py
    remove`` (callers first, as it refuses to remove a service others call), then NAME added
    with ``stack.py new``."""
    copy = scratch(tmp_path, "replaced")
    now = defined_stack()
    for name in sorted(now.app_names(), key=lambda n: len(now.callers_of(n))):
        assert f"deleted k8s/base/{name}.yaml" in stack(copy, "remove", name)
    stack(copy, "new", NAME)
    return copy
