"""``stack.py remove NAME`` on a copy of the repository: it undoes ``new`` exactly, takes the
examples out everywhere, and refuses a service another one calls, changing nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from scripts.stacklib import rendered
from scripts.stacklib.cli import main
from scripts.stacklib.templates import class_name
from scripts.stacklib.ui import UI
from tests.conftest import defined_stack, fresh_name
from tests.scratch_copies import copy_worktree, snapshot

# Names the project does not use yet: these tests pass whatever services it has.
DEMO = fresh_name("demo")
ALPHA, BETA = fresh_name("alpha"), fresh_name("beta")
SECOND = fresh_name("billing", DEMO)
BETA_CLS = class_name(BETA)


def run(repo: Path, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = main(list(argv), repo, environ={}, ui=UI(out, err))
    return status, out.getvalue(), err.getvalue()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_worktree(tmp_path / "repo")


def test_remove_undoes_new_to_the_byte(repo: Path) -> None:
    before = snapshot(repo)
    assert run(repo, "new", DEMO)[0] == 0
    status, _, err = run(repo, "remove", DEMO)
    assert status == 0, err
    assert f"deleted services/{DEMO}.py" in err and "updated compose/compose.yaml" in err
    assert snapshot(repo) == before


def test_a_service_that_another_calls_is_refused_naming_the_callers(repo: Path) -> None:
    assert run(repo, "new", ALPHA)[0] == 0
    assert run(repo, "new", BETA)[0] == 0
    compose = repo / "compose" / "compose.yaml"
    text = compose.read_text()
    beta = f'    command: ["serve", "services.{BETA}:{BETA_CLS}"]\n    environment:\n'
    compose.write_text(
        text.replace(beta, beta + f"      SERVICE_PEERS: {ALPHA}=http://{ALPHA}:8000/api\n")
    )
    before = snapshot(repo)
    status, out, err = run(repo, "remove", ALPHA)
    assert status == 2 and out == ""
    assert err == (
        f"stack: error: {BETA} calls {ALPHA} (SERVICE_PEERS in compose/compose.yaml): "
        f"remove {BETA} first, or take {ALPHA} out of its peers\n"
    )
    assert snapshot(repo) == before


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nosuch", "no service named 'nosuch' in the stack"),
        ("prometheus", "prometheus is not one of the project's services"),
    ],
)
def test_what_is_not_a_service_of_the_project_is_refused(
    repo: Path, name: str, message: str
) -> None:
    before = snapshot(repo)
    status, _, err = run(repo, "remove", name)
    assert status == 2 and message in err
    assert snapshot(repo) == before


def test_removing_every_service_of_the_project_leaves_no_trace_of_them(repo: Path) -> None:
    stack = defined_stack()
    names = sorted(stack.app_names(), key=lambda n: len(stack.callers_of(n)))
    for name in names:
        status, _, err = run(repo, "remove", name)
        assert status == 0, err
    for path in [*repo.joinpath("k8s").rglob("*.yaml"), repo / "compose" / "compose.yaml"]:
        for document in yaml.safe_load_all(path.read_text()):
            text = yaml.safe_dump(document)
            for name in names:
                assert f": {name}\n" not in text, f"{path} still names {name}"
    for name in names:
        assert not (repo / "k8s" / "base" / f"{name}.yaml").exists()
        assert not (repo / "tests" / "unit" / f"test_{name}_service.py").exists()
    # Compose still accepts what is left (it refuses a `secrets:` left empty, hence `{}`).
    left = rendered.read(repo / "compose" / "compose.yaml", {})
    assert not set(names) & set(left.services)
    # What stays (a database the user's own services may use) keeps only its own secrets.
    used = {secret for service in left.services.values() for secret in service.secrets}
    assert set(left.secrets) == used


def add_service(repo: Path, block: str) -> None:
    compose = repo / "compose" / "compose.yaml"
    # First in the services block: whatever top-level sections follow it (volumes, secrets).
    compose.write_text(compose.read_text().replace("\nservices:\n", f"\nservices:\n{block}", 1))


def test_a_service_that_only_waits_for_it_stops_waiting(repo: Path) -> None:
    assert run(repo, "new", DEMO)[0] == 0
    add_service(
        repo,
        "  watcher:\n    image: busybox\n    depends_on:\n"
        f"      # wait for {DEMO}\n      {DEMO}:\n        condition: service_healthy\n",
    )
    status, _, err = run(repo, "remove", DEMO)
    assert status == 0, err
    text = (repo / "compose" / "compose.yaml").read_text()
    assert "  watcher:\n    image: busybox\n" in text and f"wait for {DEMO}" not in text
    watcher = rendered.read(repo / "compose" / "compose.yaml", {}).services["watcher"]
    assert watcher.depends_on == ()


@pytest.mark.parametrize("how", ["anchor", "volumes_from"])
def test_a_wait_it_cannot_edit_is_refused_and_nothing_changes(repo: Path, how: str) -> None:
    # Compose's model says watcher waits for the service, but no depends_on entry of its block
    # says so: the text cannot be edited safely, and remove says what to do by hand.
    assert run(repo, "new", DEMO)[0] == 0
    compose = repo / "compose" / "compose.yaml"
    compose.write_text(
        compose.read_text().replace(
            "\nservices:\n", f"\nx-waits: &waits\n  depends_on: [{DEMO}]\n\nservices:\n", 1
        )
    )
    if how == "anchor":
        add_service(repo, "  watcher:\n    <<: *waits\n    image: busybox\n")
    else:
        add_service(repo, f"  watcher:\n    image: busybox\n    volumes_from: [{DEMO}]\n")
    before = snapshot(repo)
    status, out, err = run(repo, "remove", DEMO)
    assert status == 1 and out == ""
    assert err == (
        f"stack: error: watcher depends on {DEMO} other than by a depends_on entry in its own "
        "block of compose/compose.yaml (a merged anchor, volumes_from, network_mode?): "
        f"take {DEMO} out of watcher yourself; nothing changed\n"
    )
    assert snapshot(repo) == before


def test_a_compose_file_compose_refuses_is_reported_in_one_line_and_nothing_changes(
    repo: Path,
) -> None:
    assert run(repo, "new", DEMO)[0] == 0
    add_service(repo, "  watcher:\n    image: busybox\n    depends_on: [nosuch]\n")
    before = snapshot(repo)
    for command in ("remove", "new"):
        status, out, err = run(repo, command, SECOND if command == "new" else DEMO)
        assert status == 1 and out == ""
        assert err == (
            'stack: error: compose.yaml: service "watcher" depends on undefined service '
            '"nosuch": invalid compose project\n'
        )
    assert snapshot(repo) == before
