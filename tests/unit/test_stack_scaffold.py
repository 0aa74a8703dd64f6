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

from scripts.stacklib import rendered, scaffold
from scripts.stacklib.cli import main
from scripts.stacklib.state import Paths
from scripts.stacklib.templates import class_name
from scripts.stacklib.ui import UI
from tests.conftest import defined_stack, fresh_name, missing_tool
from tests.scratch_copies import copy_worktree, snapshot

VENV_BIN = Path(sys.executable).parent
# Names the project does not use yet: these tests pass whatever services it has.
DEMO, SECOND = fresh_name("demo"), fresh_name("billing", fresh_name("demo"))
DEMO_CLS = class_name(DEMO)


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
    status, _, err = run_new(repo, DEMO)
    assert status == 0
    module = (repo / "services" / f"{DEMO}.py").read_text()
    assert f"class {DEMO_CLS}(MicroService):" in module
    assert f'    name = "{DEMO}"' in module
    assert "@public_method\n    async def greet" in module
    assert "@private_api_method\n    async def private_greet" in module
    assert (repo / "services" / "__init__.py").is_file()
    assert (
        f"from services.{DEMO} import {DEMO_CLS}"
        in (repo / "tests" / "unit" / f"test_{DEMO}_service.py").read_text()
    )
    integration = (repo / "tests" / "integration" / f"test_{DEMO}_service.py").read_text()
    # The generated tests use the runtime's test kit, never the template's own tests/ package.
    assert "from service_template.testing import" in integration
    assert "from tests" not in integration and "import tests" not in integration
    assert f'TARGET = "services.{DEMO}:{DEMO_CLS}"' in integration
    for shown in (
        f"created services/{DEMO}.py",
        "updated compose/compose.yaml",
        f"k8s/base/{DEMO}.yaml",
    ):
        assert shown in err


def test_the_compose_service_runs_the_template_image_like_the_others(repo: Path) -> None:
    run_new(repo, DEMO)
    stack = rendered.read(repo / "compose" / "compose.yaml", {})
    demo = stack.services[DEMO]
    assert demo.command == ("serve", f"services.{DEMO}:{DEMO_CLS}")
    assert stack.runs_template_image(demo)
    # The shared environment (x-environment), tracing's endpoint included (empty: off).
    assert set(demo.environment) == {
        "SERVICE_API_TOKEN_FILE",
        "SERVICE_LOG_LEVEL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    }
    # A token of its own, mounted where every service mounts its own.
    assert demo.secrets == {f"{DEMO}_token": "/run/secrets/api_token"}
    # Its file is required, like every token's: Compose refuses to start the stack without it.
    assert stack.secrets[f"{DEMO}_token"].problem == f"{DEMO.upper()}_TOKEN_FILE is not set"
    assert (
        f"    file: ${{{DEMO.upper()}_TOKEN_FILE:?a token file, see compose/.env.example}}\n"
        in (repo / "compose" / "compose.yaml").read_text()
    )
    assert demo.healthcheck is not None and demo.healthcheck.interval is not None
    for other in stack.services.values():
        if stack.runs_template_image(other) and other.name != DEMO:
            # Same shared settings, from the file's x-service and x-environment anchors.
            assert other.healthcheck == demo.healthcheck
            assert other.secrets.get(f"{other.name}_token") == "/run/secrets/api_token"
    assert not demo.depends_on and not demo.ports
    # One service builds the image; the template's stack already has one.
    assert not demo.build


def test_every_edited_file_only_gains_lines_so_comments_stay(repo: Path) -> None:
    before = snapshot(repo)
    run_new(repo, DEMO)
    after = snapshot(repo)
    edited = [name for name in before if before[name] != after[name]]
    assert "compose/compose.yaml" in edited
    assert "k8s/base/kustomization.yaml" in edited
    for name in edited:
        diff = difflib.ndiff(before[name].decode().splitlines(), after[name].decode().splitlines())
        removed = [line for line in diff if line.startswith("- ")]
        assert removed == [], f"{name} lost lines"


def test_the_kubernetes_resources_exist_for_every_place_a_service_needs_them(repo: Path) -> None:
    run_new(repo, DEMO)
    k8s = repo / "k8s"
    assert named(k8s / "base" / f"{DEMO}.yaml", DEMO) == ["ServiceAccount", "Service", "Deployment"]
    deployment = documents(k8s / "base" / f"{DEMO}.yaml")[2]
    container = deployment["spec"]["template"]["spec"]["containers"][0]  # type: ignore[index]
    assert container["args"] == ["serve", f"services.{DEMO}:{DEMO_CLS}"]
    assert container["envFrom"] == [{"configMapRef": {"name": f"{DEMO}-config"}}]
    base = yaml.safe_load((k8s / "base" / "kustomization.yaml").read_text())
    assert f"{DEMO}.yaml" in base["resources"]
    assert {"name": f"{DEMO}-config", "envs": [f"{DEMO}.env"]}.items() <= next(
        g for g in base["configMapGenerator"] if g["name"] == f"{DEMO}-config"
    ).items()
    settings = (k8s / "base" / f"{DEMO}.env").read_text().splitlines()
    assert "SERVICE_HOST=0.0.0.0" in settings and "SERVICE_PORT=8000" in settings
    assert named(k8s / "overlays" / "prod" / "autoscaling.yaml", DEMO) == [
        "HorizontalPodAutoscaler"
    ]
    assert named(k8s / "overlays" / "prod" / "disruption-budgets.yaml", DEMO) == [
        "PodDisruptionBudget"
    ]
    monitors = k8s / "components" / "servicemonitor" / "servicemonitors.yaml"
    assert named(monitors, DEMO) == ["ServiceMonitor"]
    dev = yaml.safe_load((k8s / "overlays" / "dev" / "kustomization.yaml").read_text())
    assert {"name": DEMO, "count": 1} in dev["replicas"]


def test_the_new_service_calls_no_one_so_the_network_policies_stay_as_they_are(
    repo: Path,
) -> None:
    policies = repo / "k8s" / "overlays" / "prod" / "network-policies.yaml"
    generated = [repo / "k8s" / "base" / "peers.yaml", policies.with_name("peer-policies.yaml")]
    before = [path.read_text() for path in (policies, *generated)]
    run_new(repo, DEMO)
    assert [path.read_text() for path in (policies, *generated)] == before
    assert "SERVICE_PEERS" not in (repo / "k8s" / "base" / f"{DEMO}.env").read_text()


def test_prometheus_scrapes_the_new_service_too(repo: Path) -> None:
    run_new(repo, DEMO)
    config = yaml.safe_load((repo / "compose" / "prometheus.yml").read_text())
    targets = [t for c in config["scrape_configs"][0]["static_configs"] for t in c["targets"]]
    assert targets[-1] == f"{DEMO}:8000"


@pytest.mark.parametrize("name", [DEMO, "a" * scaffold.MAX_LENGTH])
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
    assert run_new(repo, DEMO)[0] == 0
    assert run_new(repo, SECOND)[0] == 0
    stack = rendered.read(repo / "compose" / "compose.yaml", {})
    assert {DEMO, SECOND} <= set(stack.services)
    text = (repo / "compose" / "compose.yaml").read_text()
    assert text.index(f"\n  {DEMO}:\n") < text.index(f"\n  {SECOND}:\n"), "appended in turn"
    assert named(repo / "k8s" / "overlays" / "prod" / "autoscaling.yaml", SECOND)


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


@pytest.mark.parametrize("name", sorted(defined_stack().services))
def test_a_name_of_the_stack_is_taken_and_nothing_changes(repo: Path, name: str) -> None:
    before = snapshot(repo)
    status, _, err = run_new(repo, name)
    assert status == 2
    assert f"{name!r} is taken (Compose service {name!r}); choose another name" in err
    assert snapshot(repo) == before


def test_a_name_with_a_module_or_manifest_already_there_is_taken(repo: Path) -> None:
    (repo / "k8s" / "base" / f"{SECOND}.env").write_text("SERVICE_LOG_LEVEL=INFO\n")
    before = snapshot(repo)
    status, _, err = run_new(repo, SECOND)
    assert status == 2
    assert f"'{SECOND}' is taken (k8s/base/{SECOND}.env)" in err
    assert snapshot(repo) == before


def test_in_a_stack_with_no_service_of_its_own_the_new_one_builds_the_image(repo: Path) -> None:
    stack = defined_stack()
    # Callers first: a service others call cannot be removed before them.
    for name in sorted(stack.app_names(), key=lambda n: len(stack.callers_of(n))):
        assert main(["remove", name], repo, environ={}, ui=UI(io.StringIO(), io.StringIO())) == 0
    assert run_new(repo, DEMO)[0] == 0
    assert run_new(repo, SECOND)[0] == 0
    services = rendered.read(repo / "compose" / "compose.yaml", {}).services
    assert services[DEMO].build and not services[SECOND].build
    assert "pull_policy: never" in (repo / "compose" / "compose.yaml").read_text()


def test_a_failing_write_restores_every_file_already_written(repo: Path) -> None:
    before = snapshot(repo)
    changes = scaffold.Planner(Paths(repo, repo / "compose" / "compose.yaml"), DEMO, {}).plan()
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
    assert not (repo / "services" / f"{DEMO}.py").exists()
    assert not (repo / "k8s" / "base" / f"{DEMO}.yaml").exists()
