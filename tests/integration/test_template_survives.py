"""The template survives its user's first changes, proven in scratch copies of the repository.

Two copies (the files git lists), each changed as a user would, then its own lint, mypy, unit
and integration tiers run in it, its Kubernetes overlays rendered and its Compose file rendered
by Compose (``config``; no ``up`` here: the integration tier has no Docker engine. The container
and client tiers of the ``replaced`` copy run in ``tests/container/test_copy_tiers.py``):

- ``new``: a project generated from the template under another name (copier, as its user would:
  renamed, without the template's own tests), then ``stack.py new billing`` (or the first free
  name like it);
- ``replaced``: every service of the project removed with ``stack.py remove`` (callers first),
  then ``stack.py new billing``.

Cost: the copies reuse this virtual environment; ``PYTHONPATH`` points at the copy, so its own
``service_template``, ``services`` and ``tests`` are the ones imported (an editable install would
point at this checkout instead). The two runs go in parallel: measured 6.4 min of wall time on
the shared 2-core machine (the integration tier alone takes about 2 min); 13.6 min with the
generated copy while other work loaded the machine. The gemstone example
binds port 5000 by design, so it runs in one copy only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from scripts.stacklib import definition
from tests.conftest import REPO, defined_stack, fresh_name, missing_tool
from tests.unit.test_stack_scaffold import copy_worktree

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

THIS = Path(__file__).relative_to(Path(__file__).resolve().parents[2])
BIN = Path(sys.executable).parent
NAME = fresh_name("billing")
RENAMED = "acme-ledger"  # the generated copy's product name
TIERS_LIMIT = 1200  # seconds for one copy's tiers on a busy 2-core machine


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    path = f"{copy}{os.pathsep}{site_dir(copy)}"
    return {**env, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}


def stack(copy: Path, *args: str) -> str:
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
    # What the suite runs from outside the git tree is shared, as on a developer's machine:
    # the virtual environment (pre-commit's hooks name .venv/bin/...) and the tool caches.
    (copy / ".venv").symlink_to(Path(sys.prefix))
    for tool in ("node-tools", "checkov-venv"):
        source = REPO / ".cache" / tool
        if source.exists():
            (copy / ".cache").mkdir(exist_ok=True)
            (copy / ".cache" / tool).symlink_to(source)
    # The copy's own tests copy it in turn with `git ls-files`: make it a repository.
    for args in (["init", "-q"], ["add", "-A"]):
        subprocess.run(["git", *args], cwd=copy, check=True, timeout=60, capture_output=True)
    return copy


def start_tiers(copy: Path, *extra: str) -> subprocess.Popen[str]:
    """The copy's lint and type check, then its unit and integration tiers, in the background."""
    # What `dev.py lint` runs (ruff, mypy --strict), then the tiers.
    script = (
        f"{BIN / 'ruff'} check . && {BIN / 'ruff'} format --check . && "
        f"{BIN / 'mypy'} --cache-dir .cache/mypy && "
        f"{sys.executable} -m pytest -q -p no:cacheprovider tests/unit tests/integration "
        f"--ignore={THIS} " + " ".join(extra)
    )
    return subprocess.Popen(
        ["bash", "-c", script],
        cwd=copy,
        env=environment(copy),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, tuple[Path, str]]]:
    """Both copies changed, their tiers run side by side; label -> (copy, output tail)."""
    root = tmp_path_factory.mktemp("survives")
    stack_now = defined_stack()
    added = scratch(root, "new", generated=True)
    stack(added, "new", NAME)
    replaced = scratch(root, "replaced")
    removed = sorted(stack_now.app_names(), key=lambda n: len(stack_now.callers_of(n)))
    for name in removed:
        assert f"deleted k8s/base/{name}.yaml" in stack(replaced, "remove", name)
    stack(replaced, "new", NAME)
    processes = {
        "new": (added, start_tiers(added)),
        "replaced": (
            replaced,
            start_tiers(replaced, "--ignore=tests/integration/test_gemstone_example.py"),
        ),
    }
    results = {}
    try:
        for label, (copy, process) in processes.items():
            output, _ = process.communicate(timeout=TIERS_LIMIT)
            results[label] = (copy, f"exit {process.returncode}\n{output[-4000:]}")
    finally:
        for _, process in processes.values():
            if process.poll() is None:
                process.kill()
                process.communicate()
    yield results


def kustomize(copy: Path, overlay: str) -> list[dict[str, object]]:
    kubectl = BIN / "kubectl"
    if not kubectl.is_file():
        missing_tool(f"kubectl is not installed in {BIN}: run scripts/ci/install-tools.sh")
    result = subprocess.run(
        [str(kubectl), "kustomize", str(copy / "k8s" / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize("label", ["new", "replaced"])
def test_every_tier_of_the_changed_copy_passes(
    runs: dict[str, tuple[Path, str]], label: str
) -> None:
    copy, output = runs[label]
    assert output.startswith("exit 0\n"), output
    assert " passed" in output and " failed" not in output
    if label == "new" and (REPO / "copier.yml").is_file():  # generated under its own name
        assert tomllib.loads((copy / "pyproject.toml").read_text())["project"]["name"] == RENAMED
    expected = sorted([*defined_stack().app_names(), NAME]) if label == "new" else [NAME]
    for overlay in ("dev", "prod"):
        deployments = [d for d in kustomize(copy, overlay) if d["kind"] == "Deployment"]
        names = sorted(str(d["metadata"]["name"]) for d in deployments)  # type: ignore[index]
        assert names == expected
    # Compose itself accepts the changed file (`docker compose config`, no engine needed).
    rendered = definition.load(copy / "compose" / "compose.yaml", {})
    assert rendered.app_names() == expected


def test_the_replaced_copy_has_no_trace_of_the_removed_services(
    runs: dict[str, tuple[Path, str]],
) -> None:
    copy, _ = runs["replaced"]
    for name in defined_stack().app_names():
        assert not (copy / "services" / f"{name}.py").exists()
        assert not (copy / "k8s" / "base" / f"{name}.env").exists()
        assert not list((copy / "tests").rglob(f"test_{name}_service.py"))
    left = definition.load(copy / "compose" / "compose.yaml", {})
    assert left.app_names() == [NAME]
