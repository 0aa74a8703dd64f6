"""Peers declared once: a hand edit of ``SERVICE_PEERS`` in Compose, then ``stack.py peers``, is
all Kubernetes needs. The generated copy (k8s/base/peers.yaml, the prod peer-policies.yaml)
gives the caller's pod the peer and lets exactly that call through the NetworkPolicies, as
kustomize renders them; a stale copy fails ``peers --check`` with the command to run."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts.stacklib.templates import class_name
from service_template.peers import parse_peers
from tests.conftest import fresh_name
from tests.integration.test_new_callers import stack
from tests.scratch_copies import copy_worktree
from tests.unit.test_k8s_consistency import (
    Doc,
    Pod,
    app_pods,
    connection_allowed,
    kustomize,
    pod_environment,
)

pytestmark = pytest.mark.integration

# Services of the test's own making, so this holds whatever services the project has.
CALLER = fresh_name("front")
CALLEE = fresh_name("ledger", CALLER)
COMMAND = "python3 scripts/stack.py peers"
CONSISTENCY = "tests/unit/test_k8s_consistency.py"
GENERATED = ("k8s/base/peers.yaml", "k8s/overlays/prod/peer-policies.yaml")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the project with two services of its own that call no one."""
    root = copy_worktree(tmp_path / "repo")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    for name in (CALLER, CALLEE):
        done = stack(root, "new", name)
        assert done.returncode == 0, done.stderr
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


def add_peer_by_hand(repo: Path) -> None:
    """What the README tells a user to write in Compose for a new peer, and nothing else."""
    compose = repo / "compose" / "compose.yaml"
    text = compose.read_text()
    head = (
        f'    command: ["serve", "services.{CALLER}:{class_name(CALLER)}"]\n'
        "    environment:\n"
        "      <<: *environment\n"
    )
    secrets = f"      - source: {CALLER}_token\n        target: api_token\n"
    assert head in text and secrets in text
    text = text.replace(
        head,
        head
        + f"      SERVICE_PEERS: {CALLEE}=http://{CALLEE}:8000/api\n"
        + f"      SERVICE_PEER_TOKEN_FILES: {CALLEE}=/run/secrets/{CALLEE}_token\n",
    ).replace(secrets, secrets + f"      - {CALLEE}_token\n")
    compose.write_text(text)


def rendered(repo: Path) -> tuple[tuple[Doc, ...], dict[str, Pod]]:
    docs = tuple(kustomize(repo / "k8s" / "overlays" / "prod"))
    return docs, {pod.name: pod for pod in app_pods(docs)}


def pod_peers(docs: tuple[Doc, ...], name: str) -> dict[str, str]:
    deployment = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    )
    return parse_peers(pod_environment(docs, deployment).get("SERVICE_PEERS", ""))


def allowed(docs: tuple[Doc, ...], pods: dict[str, Pod], source: str, destination: str) -> bool:
    callee = pods[destination]
    return connection_allowed(docs, pods[source], callee, callee.ports["http"])


def test_a_peer_added_in_compose_is_stale_until_the_command_then_only_the_caller_may_call(
    repo: Path,
) -> None:
    add_peer_by_hand(repo)
    # Stale: the check names the file and the one command that mends it.
    stale = stack(repo, "peers", "--check")
    assert stale.returncode == 1
    assert f"k8s/base/peers.yaml is out of date with compose/compose.yaml: run `{COMMAND}`" in (
        stale.stderr
    )
    assert "k8s/overlays/prod/peer-policies.yaml is out of date" in stale.stderr
    done = stack(repo, "peers")
    assert done.returncode == 0, done.stderr
    assert "updated k8s/base/peers.yaml" in done.stderr
    assert stack(repo, "peers", "--check").returncode == 0
    assert "already match" in stack(repo, "peers").stderr  # a second run changes nothing
    docs, pods = rendered(repo)
    assert pod_peers(docs, CALLER) == {CALLEE: f"http://{CALLEE}:8000/api"}
    assert allowed(docs, pods, CALLER, CALLEE)
    assert not allowed(docs, pods, CALLEE, CALLER)  # a call goes one way
    outsider = Pod("client", "elsewhere", {"app": "client"}, {})
    assert not connection_allowed(docs, outsider, pods[CALLEE], pods[CALLEE].ports["http"])
    for other in pods:
        if other != CALLER:
            assert not allowed(docs, pods, other, CALLEE), other
    # The project's own manifest checks accept the result, run in the copy as a user would.
    checks = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", CONSISTENCY],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert checks.returncode == 0, checks.stdout[-3000:]


def test_a_peer_taken_out_of_compose_is_refused_after_the_command(repo: Path) -> None:
    before = {path: (repo / path).read_text() for path in GENERATED}
    compose = repo / "compose" / "compose.yaml"
    original = compose.read_text()
    add_peer_by_hand(repo)
    assert stack(repo, "peers").returncode == 0
    compose.write_text(original)  # the peer taken out again, by hand
    assert stack(repo, "peers", "--check").returncode == 1
    assert stack(repo, "peers").returncode == 0
    docs, pods = rendered(repo)
    assert pod_peers(docs, CALLER) == {}
    assert not allowed(docs, pods, CALLER, CALLEE)
    # The same Compose file gives the same copy, byte for byte.
    assert {path: (repo / path).read_text() for path in before} == before


def test_removing_a_caller_takes_its_calls_out_of_the_generated_copy(repo: Path) -> None:
    add_peer_by_hand(repo)
    assert stack(repo, "peers").returncode == 0
    done = stack(repo, "remove", CALLER)
    assert done.returncode == 0, done.stderr
    assert stack(repo, "peers", "--check").returncode == 0
    for path in GENERATED:
        names = [
            doc["metadata"]["name"] for doc in yaml.safe_load_all((repo / path).read_text()) if doc
        ]
        assert not [name for name in names if CALLER in name.split("-")], path
    pods = rendered(repo)[1]
    assert CALLER not in pods and CALLEE in pods


def test_an_env_file_that_sets_the_peers_itself_is_reported(repo: Path) -> None:
    env_file = repo / "k8s" / "base" / f"{CALLER}.env"
    env_file.write_text(env_file.read_text() + f"SERVICE_PEERS={CALLEE}=http://{CALLEE}:8000/api\n")
    done = stack(repo, "peers", "--check")
    assert done.returncode == 1
    assert f"k8s/base/{CALLER}.env sets SERVICE_PEERS: delete that line" in done.stderr


def test_a_project_without_kubernetes_gets_no_copy_and_no_complaint(repo: Path) -> None:
    shutil.rmtree(repo / "k8s")
    add_peer_by_hand(repo)
    for args in (("peers",), ("peers", "--check")):
        done = stack(repo, *args)
        assert done.returncode == 0, done.stderr
        assert "no k8s/base/kustomization.yaml: no Kubernetes copy" in done.stderr
    assert not (repo / "k8s").exists()
