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

``tests/scratch_copies.py`` makes the copies (they share this virtual environment). Cost: the
two runs go in parallel: measured 6.4 min of wall time on the shared 2-core machine (the
integration tier alone takes about 2 min); 13.6 min with the generated copy while other work
loaded the machine. The gemstone example binds port 5000 by design, so it runs in one copy only.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.stacklib import definition
from tests.conftest import REPO, defined_stack
from tests.scratch_copies import NAME, RENAMED, environment, replaced_copy, scratch, stack
from tests.unit.test_k8s_consistency import kustomize

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1500)]

THIS = Path(__file__).relative_to(Path(__file__).resolve().parents[2])
BIN = Path(sys.executable).parent
TIERS_LIMIT = 1200  # seconds for one copy's tiers on a busy 2-core machine


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
    added = scratch(root, "new", generated=True)
    stack(added, "new", NAME)
    replaced = replaced_copy(root)
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
        deployments = [
            d for d in kustomize(copy / "k8s" / "overlays" / overlay) if d["kind"] == "Deployment"
        ]
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
