"""Make it yours: a project generated from the template under another name works, and takes a
later template update with its owner's code intact.

The template is this working tree, committed into a scratch git repository (copier reads
templates from git). Copier copies it and runs ``scripts/rename.py``; the generated project is
then checked the way its owner would: no file of it names the template's product, its own test
tier passes, its stack comes up and answers, and ``copier update`` merges a template change.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.generation import COPIER, commit_all, generate, make_template, run
from tests.integration.test_workflows import release_naming_step
from tests.unit.test_k8s_consistency import app_pods, connection_allowed, kustomize

pytestmark = pytest.mark.integration

OLD_SLUG = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]
SLUG = "acme-billing"
IMAGE = "registry.example.com/acme/billing"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("template"))


@pytest.fixture(scope="module")
def generated(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("generated") / SLUG
    return generate(template, project, SLUG, IMAGE, "Acme Billing")


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
    # The template's own tests stay with the template: the project has no copier.yml to run.
    assert not (generated / "copier.yml").exists()
    assert not (generated / "tests" / "integration" / "test_generate.py").exists()


def test_the_generated_projects_release_pushes_to_its_own_image(
    generated: Path, tmp_path: Path
) -> None:
    version = tomllib.loads((generated / "pyproject.toml").read_text())["project"]["version"]
    status, outputs, stderr = release_naming_step(generated, f"v{version}", tmp_path)
    assert status == 0, stderr
    assert outputs["image"] == IMAGE and outputs["registry"] == "registry.example.com"


def test_renaming_again_with_the_same_name_changes_nothing(generated: Path) -> None:
    out = run(sys.executable, "scripts/rename.py", SLUG, "--image", IMAGE, cwd=generated)
    assert "rename: 0 file(s) changed" in out
    assert run("git", "status", "--porcelain", cwd=generated) == ""


def test_the_generated_projects_lint_and_unit_tier_pass(generated: Path) -> None:
    # What `dev.py lint` runs, with this environment's tools (the project has no .venv yet).
    tools = Path(sys.executable).parent
    run(tools / "ruff", "check", ".", cwd=generated)
    run(tools / "ruff", "format", "--check", ".", cwd=generated)
    run(tools / "mypy", "--cache-dir", str(generated.parent / "mypy-cache"), cwd=generated,
        timeout=600, PYTHONPATH=str(generated))  # fmt: skip
    out = run(
        sys.executable, "-m", "pytest", "tests/unit", "-q", "-p", "no:cacheprovider",
        cwd=generated, timeout=600, PYTHONPATH=str(generated),
    )  # fmt: skip
    assert re.search(r"\d+ passed", out), out
    assert " failed" not in out and " skipped" not in out, out


def test_in_the_generated_project_a_new_service_is_reachable_by_its_caller_in_prod(
    generated: Path,
) -> None:
    # The owner adds a front service and a ledger it calls: the prod overlay, rendered and
    # checked by the project's own manifest tests, lets exactly that caller in.
    env = {"PYTHONPATH": str(generated)}
    run(sys.executable, "scripts/stack.py", "new", "front", cwd=generated, **env)
    run(sys.executable, "scripts/stack.py", "new", "ledger", "--called-by", "front",
        cwd=generated, **env)  # fmt: skip
    docs = tuple(kustomize(generated / "k8s" / "overlays" / "prod"))
    pods = {pod.name: pod for pod in app_pods(docs)}
    ledger = pods["ledger"]
    assert connection_allowed(docs, pods["front"], ledger, ledger.ports["http"])
    others = [pod for name, pod in pods.items() if name not in ("front", "ledger")]
    assert others, "the generated project has services of its own"
    for other in others:
        assert not connection_allowed(docs, other, ledger, ledger.ports["http"]), other.name
    assert all(pod.namespace == SLUG for pod in pods.values())
    # Its prod overlay is valid Kubernetes for every supported version and passes checkov
    # (test_k8s_render.py), with the checkers this checkout installed.
    checkov = REPO / ".cache" / "checkov-venv"
    (generated / ".cache").mkdir(exist_ok=True)
    if checkov.is_dir():
        (generated / ".cache" / "checkov-venv").symlink_to(checkov)
    try:
        out = run(
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
            "tests/unit/test_k8s_consistency.py", "tests/unit/test_k8s_ingress.py",
            "tests/integration/test_k8s_render.py",
            "tests/unit/test_ledger_service.py", "tests/integration/test_ledger_service.py",
            cwd=generated, timeout=900, **env,
        )  # fmt: skip
    finally:
        run("git", "checkout", "-q", ".", cwd=generated)  # leave the project as the owner had it
        run("git", "clean", "-qfdx", "--", "services", "tests", "k8s", ".cache", cwd=generated)
    assert re.search(r"\d+ passed", out) and " failed" not in out, out
    assert " skipped" not in out, out  # a missing checker must not pass for a valid manifest


def test_the_generated_stack_comes_up_and_answers(generated: Path) -> None:
    env = {"PYTHONPATH": str(generated)}
    try:
        run(sys.executable, "scripts/stack.py", "up", "-d", cwd=generated, **env)
        smoke = run(sys.executable, "scripts/stack.py", "smoke", cwd=generated, **env)
        assert "FAIL" not in smoke
    finally:
        run(sys.executable, "scripts/stack.py", "down", cwd=generated, **env)


def conflicts(root: Path) -> list[str]:
    """Files that copier left half-merged: conflict markers in the text, or ``.rej`` leftovers."""
    listed = run("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=root)
    found = []
    for relative in dict.fromkeys(listed.splitlines()):  # an unmerged path is listed per stage
        if relative.endswith(".rej"):
            found.append(relative)
            continue
        try:
            text = (root / relative).read_text()
        except (UnicodeDecodeError, FileNotFoundError):
            continue
        if re.search(r"^(<<<<<<<|>>>>>>>) ", text, re.MULTILINE):
            found.append(relative)
    return found


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
    # The template ships a fix: a runtime module, a manifest change naming the product (the
    # update must bring it renamed), and a line in the file the owner changed elsewhere (a
    # three-way merge within one file).
    changelog = template / "CHANGELOG.md"
    deployment = next((template / "k8s" / "base").glob("*.yaml"))
    marker = "# template update: {} ships a comment the update must bring"
    deployment.write_text(deployment.read_text() + marker.format(OLD_SLUG) + "\n")
    runtime_module = template / "service_template" / "version.py"
    runtime_module.write_text(runtime_module.read_text() + "\n# template fix\n")
    template_env = template / "compose" / ".env.example"
    template_env.write_text(template_env.read_text() + "# a setting the template adds\n")
    changelog.write_text(
        changelog.read_text().replace("## [Unreleased]\n", "## [Unreleased]\n\n- a fix\n", 1)
    )
    commit_all(template, "a template fix")

    run(COPIER, "update", "--trust", "--defaults", cwd=generated)

    assert conflicts(generated) == [], run("git", "status", "--porcelain", cwd=generated)
    updated = (generated / deployment.relative_to(template)).read_text()
    assert marker.format(SLUG) in updated and marker.format(OLD_SLUG) not in updated
    assert "# template fix" in (generated / "service_template" / "version.py").read_text()
    assert own.read_text().startswith("from service_template import MicroService")
    assert "GATEWAY_PORT=9080" in env_example.read_text()
    assert "# a setting the template adds" in env_example.read_text()
    assert files_naming(generated, OLD_SLUG) == []
    answers = yaml.safe_load((generated / ".copier-answers.yml").read_text())
    head = run("git", "rev-parse", "HEAD", cwd=template).strip()
    assert head.startswith(str(answers["_commit"])), (answers, head)  # now at the new version


def test_a_conflicting_update_is_shown_to_the_owner_not_silently_resolved(
    template: Path, generated: Path
) -> None:
    # Runs after the clean update: the owner and the template change the same line.
    env_example = generated / "compose" / ".env.example"
    env_example.write_text(
        re.sub(r"^GATEWAY_PORT=\d+$", "GATEWAY_PORT=9090", env_example.read_text(), flags=re.M)
    )
    commit_all(generated, "our port, again")
    template_env = template / "compose" / ".env.example"
    template_env.write_text(
        template_env.read_text().replace("GATEWAY_PORT=8080", "GATEWAY_PORT=8081")
    )
    commit_all(template, "the template moves the port")

    run(COPIER, "update", "--trust", "--defaults", cwd=generated)

    assert conflicts(generated) == ["compose/.env.example"]
    assert "UU compose/.env.example" in run("git", "status", "--porcelain", cwd=generated)
    text = env_example.read_text()
    assert "GATEWAY_PORT=9090" in text and "GATEWAY_PORT=8081" in text  # both, for the owner
