"""``stack.py new NAME --called-by ...``: in production, a new service is reachable by the callers
it names, and by no one else (the prod overlay's NetworkPolicies, rendered by kustomize)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from service_template.peers import parse_peers
from tests.conftest import fresh_name
from tests.scratch_copies import copy_worktree, snapshot
from tests.unit.test_k8s_consistency import (
    Pod,
    app_pods,
    connection_allowed,
    kustomize,
    pod_environment,
)

pytestmark = pytest.mark.integration

# Names the project does not use yet, whatever services it has.
NAME = fresh_name("billing")
CALLER = fresh_name("front", NAME)


def stack(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(repo / "scripts" / "stack.py"), *args],
        cwd=repo,
        stdin=subprocess.DEVNULL,  # not a terminal: new does not ask
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def new(repo: Path, *args: str, name: str = NAME) -> subprocess.CompletedProcess[str]:
    return stack(repo, "new", name, *args)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = copy_worktree(tmp_path / "repo")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    return root


def pods(repo: Path) -> tuple[tuple[dict[str, object], ...], dict[str, Pod]]:
    docs = tuple(kustomize(repo / "k8s" / "overlays" / "prod"))
    return docs, {pod.name: pod for pod in app_pods(docs)}


def test_the_named_caller_may_call_the_new_service_and_no_one_else(repo: Path) -> None:
    # A caller of its own making, so this holds in a project with any services, or none.
    caller = CALLER
    assert new(repo, name=caller).returncode == 0
    done = new(repo, "--called-by", caller)
    assert done.returncode == 0, done.stderr
    assert f"note: k8s/overlays/prod/peer-policies.yaml: {caller} may call {NAME}" in (done.stderr)
    docs, by_name = pods(repo)
    billing = by_name[NAME]
    assert connection_allowed(docs, by_name[caller], billing, billing.ports["http"])
    outsider = Pod("client", "elsewhere", {"app": "client"}, {})
    assert not connection_allowed(docs, outsider, billing, billing.ports["http"])
    for other in by_name.values():
        if other.name not in (caller, NAME):
            assert not connection_allowed(docs, other, billing, billing.ports["http"]), other
    # The caller knows it as a peer, in Compose and in its pod, with the token billing checks.
    compose = yaml.safe_load((repo / "compose" / "compose.yaml").read_text())
    environment = compose["services"][caller]["environment"]
    assert f"{NAME}=http://{NAME}:8000/api" in environment["SERVICE_PEERS"]
    assert f"{NAME}=/run/secrets/{NAME}_token" in environment["SERVICE_PEER_TOKEN_FILES"]
    assert f"{NAME}_token" in compose["services"][caller]["secrets"]
    # Kubernetes follows from Compose: the generated copy is up to date, and the caller's pod
    # has the same peer.
    assert stack(repo, "peers", "--check").returncode == 0
    caller_pod = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == caller
    )
    assert parse_peers(pod_environment(docs, caller_pod)["SERVICE_PEERS"]) == {
        NAME: f"http://{NAME}:8000/api"
    }


def test_called_by_ingress_makes_it_public_through_the_ingress(repo: Path) -> None:
    done = new(repo, "--called-by", "ingress")
    assert done.returncode == 0, done.stderr
    docs, by_name = pods(repo)
    billing = by_name[NAME]
    outsider = Pod("client", "elsewhere", {"app": "client"}, {})
    assert connection_allowed(docs, outsider, billing, billing.ports["http"])
    assert not connection_allowed(docs, outsider, billing, billing.ports["admin"])
    routed = {
        path["backend"]["service"]["name"]
        for doc in docs
        if doc.get("kind") == "Ingress"
        for rule in doc["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert NAME in routed
    compose = yaml.safe_load((repo / "compose" / "compose.yaml").read_text())
    assert compose["services"][NAME]["ports"]  # published, as every entry point is


def test_without_callers_no_one_may_call_it_and_new_says_so(repo: Path) -> None:
    done = new(repo)
    assert done.returncode == 0, done.stderr
    assert (
        f"note: k8s/overlays/prod/network-policies.yaml: no one may call {NAME} in production"
    ) in done.stderr
    assert "--called-by" in done.stderr
    docs, by_name = pods(repo)
    billing = by_name[NAME]
    for other in by_name.values():
        if other.name != NAME:
            assert not connection_allowed(docs, other, billing, billing.ports["http"]), other


def test_on_a_terminal_new_asks_for_the_callers_and_writes_what_it_is_told(repo: Path) -> None:
    caller = CALLER
    assert new(repo, name=caller).returncode == 0
    terminal, typed = os.openpty()
    try:
        os.write(terminal, f"{caller}\n".encode())  # the answer, typed ahead of the question
        done = subprocess.run(
            [sys.executable, str(repo / "scripts" / "stack.py"), "new", NAME],
            cwd=repo,
            stdin=typed,
            stdout=typed,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
        shown = b""
        while select.select([terminal], [], [], 0)[0]:  # what the terminal showed, all of it
            shown += os.read(terminal, 4096)
    finally:
        os.close(terminal)
        os.close(typed)
    assert done.returncode == 0, done.stderr
    # input() writes its question to the terminal's stdout, or to stderr with the C readline.
    question = shown.decode() + done.stderr
    assert f"who may call {NAME} in production?" in question
    assert caller in question and "ingress" in question  # the choices are offered
    assert f"{caller} may call {NAME}" in done.stderr
    docs, by_name = pods(repo)
    assert connection_allowed(docs, by_name[caller], by_name[NAME], by_name[NAME].ports["http"])


def test_an_unknown_caller_is_refused_and_nothing_changes(repo: Path) -> None:
    before = snapshot(repo)
    done = new(repo, "--called-by", "nosuchservice")
    assert done.returncode == 2
    assert "--called-by nosuchservice: not a service of the stack" in done.stderr
    assert snapshot(repo) == before
