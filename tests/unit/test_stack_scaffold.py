"""``stack.py new NAME`` on a copy of the repository: what it writes, that it only adds to the
files it edits, and that a refusal or a failed write leaves every file as it was."""

from __future__ import annotations

import difflib
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts.stacklib import reader, scaffold
from scripts.stacklib.cli import main
from scripts.stacklib.state import Paths
from scripts.stacklib.ui import UI
from tests.conftest import REPO, missing_tool

VENV_BIN = Path(sys.executable).parent


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


def run_new(repo: Path, name: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(["new", name], repo, environ={}, ui=UI(out, err))
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_worktree(tmp_path / "repo")


def documents(path: Path) -> list[dict[str, object]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def named(path: Path, name: str) -> list[str]:
    return [str(doc["kind"]) for doc in documents(path) if doc["metadata"]["name"] == name]  # type: ignore[index]


# --- what it writes -----------------------------------------------------------------------------


def test_new_writes_the_module_its_tests_and_reports_each_file(repo: Path) -> None:
    status, _, err = run_new(repo, "demo")
    assert status == 0
    module = (repo / "services" / "demo.py").read_text()
    assert "class DemoService(MicroService):" in module
    assert '    name = "demo"' in module
    assert "@public_method\n    async def greet" in module
    assert "@private_api_method\n    async def private_greet" in module
    assert (repo / "services" / "__init__.py").is_file()
    assert (
        "from services.demo import DemoService"
        in (repo / "tests" / "unit" / "test_demo_service.py").read_text()
    )
    assert (
        'TARGET = "services.demo:DemoService"'
        in (repo / "tests" / "integration" / "test_demo_service.py").read_text()
    )
    for shown in ("created services/demo.py", "updated compose/compose.yaml", "k8s/base/demo.yaml"):
        assert shown in err


def test_the_compose_service_runs_the_template_image_like_its_model(repo: Path) -> None:
    run_new(repo, "demo")
    stack = reader.load(repo / "compose" / "compose.yaml", {})
    demo, compute = stack.services["demo"], stack.services["compute"]
    assert demo.command == ("serve", "services.demo:DemoService")
    assert stack.runs_template_image(demo)
    assert demo.environment == compute.environment
    # A token of its own, mounted where compute mounts its own.
    assert demo.secrets == {"demo_token": "/run/secrets/api_token"}
    assert compute.secrets == {"compute_token": "/run/secrets/api_token"}
    assert stack.secrets["demo_token"].file_text == (
        "${DEMO_TOKEN_FILE:?a token file, see compose/.env.example}"
    )
    assert demo.healthcheck == compute.healthcheck
    assert not demo.build and not demo.depends_on and not demo.ports


def test_every_edited_file_only_gains_lines_so_comments_stay(repo: Path) -> None:
    before = snapshot(repo)
    run_new(repo, "demo")
    after = snapshot(repo)
    edited = [name for name in before if before[name] != after[name]]
    assert "compose/compose.yaml" in edited
    assert "k8s/base/kustomization.yaml" in edited
    for name in edited:
        diff = difflib.ndiff(before[name].decode().splitlines(), after[name].decode().splitlines())
        removed = [line for line in diff if line.startswith("- ")]
        assert removed == [], f"{name} lost lines"


def test_the_kubernetes_resources_exist_for_every_place_compute_has_them(repo: Path) -> None:
    run_new(repo, "demo")
    k8s = repo / "k8s"
    assert named(k8s / "base" / "demo.yaml", "demo") == ["ServiceAccount", "Service", "Deployment"]
    deployment = documents(k8s / "base" / "demo.yaml")[2]
    container = deployment["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["args"] == ["serve", "services.demo:DemoService"]
    assert container["envFrom"] == [{"configMapRef": {"name": "demo-config"}}]
    base = yaml.safe_load((k8s / "base" / "kustomization.yaml").read_text())
    assert "demo.yaml" in base["resources"]
    assert {"name": "demo-config", "envs": ["demo.env"]}.items() <= next(
        g for g in base["configMapGenerator"] if g["name"] == "demo-config"
    ).items()
    assert (k8s / "base" / "demo.env").read_text() == (
        (k8s / "base" / "compute.env").read_text().replace("compute", "demo")
    )
    assert named(k8s / "overlays" / "prod" / "autoscaling.yaml", "demo") == [
        "HorizontalPodAutoscaler"
    ]
    assert named(k8s / "overlays" / "prod" / "disruption-budgets.yaml", "demo") == [
        "PodDisruptionBudget"
    ]
    monitors = k8s / "components" / "servicemonitor" / "servicemonitors.yaml"
    assert named(monitors, "demo") == ["ServiceMonitor"]
    dev = yaml.safe_load((k8s / "overlays" / "dev" / "kustomization.yaml").read_text())
    assert {"name": "demo", "count": 1} in dev["replicas"]


def test_the_new_service_calls_no_one_so_the_network_policies_stay_as_they_are(
    repo: Path,
) -> None:
    policies = repo / "k8s" / "overlays" / "prod" / "network-policies.yaml"
    before = policies.read_text()
    run_new(repo, "demo")
    assert policies.read_text() == before
    assert "SERVICE_PEERS" not in (repo / "k8s" / "base" / "demo.env").read_text()


def test_prometheus_scrapes_the_new_service_too(repo: Path) -> None:
    run_new(repo, "demo")
    config = yaml.safe_load((repo / "compose" / "prometheus.yml").read_text())
    targets = [t for c in config["scrape_configs"][0]["static_configs"] for t in c["targets"]]
    assert targets[-1] == "demo:8000"


@pytest.mark.parametrize("name", ["demo", "a" * scaffold.MAX_LENGTH])
def test_what_new_writes_passes_the_linters(repo: Path, name: str) -> None:
    assert run_new(repo, name)[0] == 0
    ruff = VENV_BIN / "ruff"
    python_files = [
        f"services/{name}.py",
        f"tests/unit/test_{name}_service.py",
        f"tests/integration/test_{name}_service.py",
        "services/__init__.py",
    ]
    for args in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [str(ruff), *args, *python_files],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    yamllint = shutil.which("yamllint", path=str(VENV_BIN)) or shutil.which("yamllint")
    if yamllint is None:
        missing_tool("yamllint is not installed: run scripts/ci/install-tools.sh")
    result = subprocess.run(
        [yamllint, "--strict", "compose", "k8s"],
        cwd=repo,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout


def test_two_services_can_be_added_one_after_the_other(repo: Path) -> None:
    assert run_new(repo, "demo")[0] == 0
    assert run_new(repo, "billing")[0] == 0
    stack = reader.load(repo / "compose" / "compose.yaml", {})
    assert list(stack.services)[-2:] == ["demo", "billing"]
    assert named(repo / "k8s" / "overlays" / "prod" / "autoscaling.yaml", "billing")


# --- refusals change nothing --------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["Demo", "my-svc", "my_svc", "1abc", "class", "", "a" * (scaffold.MAX_LENGTH + 1)]
)
def test_an_invalid_name_is_refused_and_nothing_changes(repo: Path, name: str) -> None:
    before = snapshot(repo)
    status, out, err = run_new(repo, name)
    assert status == 2
    assert err.count("\n") == 1 and "cannot name a service" in err
    assert out == ""
    assert snapshot(repo) == before


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ("json", "a standard-library module"),
        ("asyncio", "a standard-library module"),
        ("test", "a standard-library module"),
        ("yaml", "the module of the installed distribution 'PyYAML'"),
        ("tornado", "the module of the installed distribution 'tornado'"),
        ("httpx", "the module of the installed distribution 'httpx'"),
        ("httptools", "the module of the installed distribution 'httptools'"),
        ("services", "one of this repository's packages"),
    ],
)
def test_a_name_that_would_shadow_a_module_is_refused_and_nothing_changes(
    repo: Path, name: str, what: str
) -> None:
    before = snapshot(repo)
    status, out, err = run_new(repo, name)
    assert status == 2
    assert err.count("\n") == 1
    assert f"{name!r} cannot name a service: it is {what}" in err
    assert f"choose another name, e.g. {name}svc" in err
    assert out == ""
    assert snapshot(repo) == before


def test_the_module_of_the_runtime_itself_is_refused() -> None:
    # service_template has an underscore, which names already refuse; the check still knows it.
    assert scaffold.shadowed_module("service_template") == "one of this repository's packages"
    assert scaffold.shadowed_module("billing") is None


@pytest.mark.parametrize("name", ["hello", "gateway", "prometheus"])
def test_a_name_of_the_stack_is_taken_and_nothing_changes(repo: Path, name: str) -> None:
    before = snapshot(repo)
    status, _, err = run_new(repo, name)
    assert status == 2
    assert f"{name!r} is taken (Compose service {name!r}); choose another name" in err
    assert snapshot(repo) == before


def test_a_name_with_a_module_or_manifest_already_there_is_taken(repo: Path) -> None:
    (repo / "k8s" / "base" / "billing.env").write_text("SERVICE_LOG_LEVEL=INFO\n")
    before = snapshot(repo)
    status, _, err = run_new(repo, "billing")
    assert status == 2
    assert "'billing' is taken (k8s/base/billing.env)" in err
    assert snapshot(repo) == before


def test_a_repository_without_a_service_to_model_on_is_refused(repo: Path) -> None:
    compose = repo / "compose" / "compose.yaml"
    compose.write_text(compose.read_text().replace("    pull_policy: never\n", "    build: ..\n"))
    before = snapshot(repo)
    status, _, err = run_new(repo, "demo")
    assert status == 1
    assert "no service to model the new one on" in err
    assert snapshot(repo) == before


def test_a_failing_write_restores_every_file_already_written(repo: Path) -> None:
    before = snapshot(repo)
    changes = scaffold.Planner(Paths(repo, repo / "compose" / "compose.yaml"), "demo", {}).plan()
    written: list[Path] = []

    def fail_on_the_sixth(path: Path, content: str) -> None:
        if len(written) == 5:
            raise OSError(28, "No space left on device")
        path.write_text(content)
        written.append(path)

    with pytest.raises(OSError, match="No space left"):
        scaffold.write(changes, fail_on_the_sixth)
    assert len(written) == 5
    assert snapshot(repo) == before
    assert not (repo / "services" / "demo.py").exists()
    assert not (repo / "k8s" / "base" / "demo.yaml").exists()
