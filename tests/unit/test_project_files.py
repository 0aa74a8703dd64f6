"""The files that make the repository a project of its own: licence, changelog, one version,
git hygiene and a README whose links stay inside the repository."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

import service_template
from service_template.http.admin import ADMIN_MAX_BYTES, ADMIN_MAX_CONNECTIONS
from service_template.version import project_version

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]


def test_the_package_reports_the_version_pyproject_declares() -> None:
    assert project_version() == VERSION
    assert service_template.__version__ == VERSION


def test_the_prod_overlay_deploys_the_image_tagged_with_the_version() -> None:
    kustomization = yaml.safe_load((REPO / "k8s/overlays/prod/kustomization.yaml").read_text())
    tags = {image.get("newTag", "").split("@")[0] for image in kustomization["images"]}
    assert tags == {VERSION}, "bump newTag in k8s/overlays/prod/kustomization.yaml with the version"


def test_the_image_label_defaults_to_the_version() -> None:
    # Builds that do not pass VERSION (Compose, a plain `docker build`) label the image with
    # the Dockerfile's default: a version bump must move it too.
    dockerfile = (REPO / "Dockerfile").read_text()
    default = re.search(r"^ARG VERSION=(\S+)$", dockerfile, re.MULTILINE)
    assert default is not None, "the Dockerfile declares ARG VERSION with a default"
    assert default.group(1) == VERSION, "bump ARG VERSION in the Dockerfile with the version"


def test_the_changelog_has_a_section_for_the_version() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog
    assert re.search(rf"^## \[{re.escape(VERSION)}\] - \d{{4}}-\d{{2}}-\d{{2}}$", changelog, re.M)


def test_the_license_file_is_the_license_pyproject_declares() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License\n")
    assert "Permission is hereby granted, free of charge" in text


def test_local_compose_settings_never_reach_git() -> None:
    ignored = (REPO / ".gitignore").read_text().splitlines()
    assert "compose/.env" in ignored
    secrets_ignore = (REPO / "compose/secrets/.gitignore").read_text().splitlines()
    assert "*" in secrets_ignore


def markdown_files() -> list[Path]:
    def ours(path: Path) -> bool:  # not in a virtual environment, a cache or node_modules
        folders = path.relative_to(REPO).parts[:-1]
        return not any(part.startswith(".") or part == "node_modules" for part in folders)

    return [path for path in REPO.rglob("*.md") if ours(path)]


def test_every_relative_link_in_the_docs_points_at_a_file_in_the_repository() -> None:
    problems = []
    for doc in markdown_files():
        text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)  # code is not a link
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # an absolute URL or an anchor in the same page
            resolved = (doc.parent / target.split("#")[0]).resolve()
            inside = resolved.is_relative_to(REPO)
            if not inside or not resolved.exists():
                problems.append(f"{doc.relative_to(REPO)}: {target}")
    assert not problems, problems


def test_the_readme_states_the_admin_ports_fixed_bounds_as_admin_py_sets_them() -> None:
    readme = " ".join((REPO / "README.md").read_text().split())  # line breaks as spaces
    assert f"at most {ADMIN_MAX_CONNECTIONS} open connections per process" in readme
    assert f"bodies up to {ADMIN_MAX_BYTES // 1024} KiB" in readme


def test_the_default_base_image_is_pinned_by_digest_and_renovate_keeps_it_pinned() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    default = re.search(r"^ARG BASE_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert default is not None, "the Dockerfile has a default base image"
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", default.group(1))
    assert "FROM ${BASE_IMAGE} AS build" in dockerfile  # how Renovate finds the ARG's default
    renovate = yaml.safe_load((REPO / "renovate.json").read_text())  # JSON is YAML
    assert "dockerfile" in renovate["enabledManagers"]
    rules = [r for r in renovate["packageRules"] if r.get("matchManagers") == ["dockerfile"]]
    assert rules and all(rule["pinDigests"] for rule in rules)
