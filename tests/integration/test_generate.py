"""Make it yours: a project generated from the template under another name works, and takes a
later template update with its owner's code intact.

The template is this working tree, committed into a scratch git repository (copier reads
templates from git). Copier copies it and runs ``scripts/rename.py``; the generated project is
then checked the way its owner would: no file of it names the template's product, its own test
tier passes, its stack comes up and answers, and ``copier update`` merges a template change.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, missing_tool
from tests.unit.test_stack_scaffold import copy_worktree

pytestmark = pytest.mark.integration

COPIER = Path(sys.executable).parent / "copier"
OLD_SLUG = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]
SLUG = "acme-billing"
IMAGE = "registry.example.com/acme/billing"
GIT_ID = ["-c", "user.email=test@example.com", "-c", "user.name=test"]


def run(*argv: str | Path, cwd: Path, timeout: float = 300, **env: str) -> str:
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


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not COPIER.exists():
        missing_tool("copier is not installed: python3 scripts/dev.py bootstrap")
    repo = copy_worktree(tmp_path_factory.mktemp("template"))
    run("git", "init", "-q", "-b", "main", cwd=repo)
    commit_all(repo, "the template")
    return repo


@pytest.fixture(scope="module")
def generated(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("generated") / SLUG
    run(
        COPIER, "copy", "--trust", "--defaults", "--vcs-ref", "HEAD",
        "--data", f"project_slug={SLUG}", "--data", f"image={IMAGE}",
        "--data", "project_title=Acme Billing",
        template, project, cwd=template.parent,
    )  # fmt: skip
    run("git", "init", "-q", "-b", "main", cwd=project)
    commit_all(project, "generated from the template")
    return project


def files_naming(root: Path, name: str) -> list[str]:
    """``path:line`` of every line of the project's own files (as git sees them) naming ``name``;
    the framework package and the changelog (history) are not the product's names."""
    pattern = re.compile(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])")
    listed = run("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=root)
    hits = []
    for relative in listed.splitlines():
        path = root / relative
        if relative.startswith("service_template/") or relative == "CHANGELOG.md":
            continue
        try:
            lines = path.read_text().splitlines()
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        hits += [f"{relative}:{n}" for n, line in enumerate(lines, 1) if pattern.search(line)]
    return hits


def test_no_project_or_deploy_file_names_the_template_product(
    template: Path, generated: Path
) -> None:
    assert files_naming(generated, OLD_SLUG) == []
    pyproject = tomllib.loads((generated / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == SLUG
    assert pyproject["tool"]["stack"]["image"] == IMAGE
    assert (generated / "README.md").read_text().startswith("# Acme Billing\n")
    compose = yaml.safe_load((generated / "compose" / "compose.yaml").read_text())
    assert compose["name"] == SLUG
    prod = yaml.safe_load((generated / "k8s/overlays/prod/kustomization.yaml").read_text())
    assert prod["namespace"] == SLUG
    assert [image["newName"] for image in prod["images"]] == [IMAGE]
    answers = yaml.safe_load((generated / ".copier-answers.yml").read_text())
    assert answers["project_slug"] == SLUG and answers["_src_path"] == str(template)


def test_renaming_again_with_the_same_name_changes_nothing(generated: Path) -> None:
    out = run(sys.executable, "scripts/rename.py", SLUG, "--image", IMAGE, cwd=generated)
    assert "rename: 0 file(s) changed" in out
    assert run("git", "status", "--porcelain", cwd=generated) == ""


def test_the_generated_projects_unit_tier_passes(generated: Path) -> None:
    out = run(
        sys.executable, "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider",
        cwd=generated, timeout=600, PYTHONPATH=str(generated),
    )  # fmt: skip
    assert re.search(r"\d+ passed", out), out


def test_the_generated_stack_comes_up_and_answers(generated: Path) -> None:
    env = {"PYTHONPATH": str(generated)}
    try:
        run(sys.executable, "scripts/stack.py", "up", "-d", cwd=generated, **env)
        smoke = run(sys.executable, "scripts/stack.py", "smoke", cwd=generated, **env)
        assert "FAIL" not in smoke
    finally:
        run(sys.executable, "scripts/stack.py", "down", cwd=generated, **env)


def test_a_template_update_merges_cleanly_and_keeps_the_owners_code(
    template: Path, generated: Path
) -> None:
    # The owner writes a service of their own and changes a setting the template also ships.
    own = generated / "services" / "invoices.py"
    own.write_text(
        "from service_template import MicroService, public_method\n\n\n"
        "class InvoiceService(MicroService):\n"
        '    name = "invoices"\n\n'
        "    @public_method\n"
        "    def total(self, amounts: list[int]) -> int:\n"
        "        return sum(amounts)\n"
    )
    env_example = generated / "compose" / ".env.example"
    env_example.write_text(
        env_example.read_text().replace("GATEWAY_PORT=8080", "GATEWAY_PORT=9080")
    )
    commit_all(generated, "our own service")
    # The template ships a fix: a runtime module and a manifest change.
    changelog = template / "CHANGELOG.md"
    deployment = next((template / "k8s" / "base").glob("*.yaml"))
    marker = "# template update: a comment the update must bring"
    deployment.write_text(deployment.read_text() + marker + "\n")
    runtime_module = template / "service_template" / "version.py"
    runtime_module.write_text(runtime_module.read_text() + "\n# template fix\n")
    changelog.write_text(
        changelog.read_text().replace("## [Unreleased]\n", "## [Unreleased]\n\n- a fix\n", 1)
    )
    commit_all(template, "a template fix")

    run(COPIER, "update", "--trust", "--defaults", cwd=generated)

    status = run("git", "status", "--porcelain", cwd=generated)
    assert "UU " not in status and "<<<<<<<" not in "".join(
        path.read_text() for path in generated.rglob("*.y*ml") if ".git" not in path.parts
    ), status
    assert marker in (generated / deployment.relative_to(template)).read_text()
    assert "# template fix" in (generated / "service_template" / "version.py").read_text()
    assert own.read_text().startswith("from service_template import MicroService")
    assert "GATEWAY_PORT=9080" in env_example.read_text()
    assert files_naming(generated, OLD_SLUG) == []
    answers = yaml.safe_load((generated / ".copier-answers.yml").read_text())
    head = run("git", "rev-parse", "HEAD", cwd=template).strip()
    assert head.startswith(str(answers["_commit"])), (answers, head)  # now at the new version
