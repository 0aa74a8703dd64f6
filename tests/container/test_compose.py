"""The template's Compose stack (compose/compose.yaml) under the real ``docker compose``: every
service up healthy, what is published, the token never in a container's environment,
Prometheus scraping every service, and nothing left after ``down``.

The services come from the stack's definition (``defined_stack``), so these checks hold for
whatever services the project has; what the gateway example does through the stack is tested in
test_gateway_service.py. One stack for the session (conftest's ``stack``), with the ``metrics``
profile (Debian's Prometheus as an image, since no registry can be reached here), under a project
name of its own. Compose is given an env file of the test's own, so a developer's compose/.env
changes nothing. Published host ports are chosen by the engine (port 0), so nothing races.
"""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

import docker
import pytest

from tests.conftest import defined_stack

from .compose_stack import SECRETS_GID, Stack, token_for, token_services
from .support import get, note, wait_for

pytestmark = pytest.mark.container

DEFINED = defined_stack().services


def running_services(stack: Stack) -> set[str]:
    """The services the stack runs: all but those of a profile left off (``tracing``, whose
    image needs a registry; see ``Stack.runnable_profiles``)."""
    return {
        name
        for name, service in DEFINED.items()
        if not service.profiles or set(service.profiles) & set(stack.profiles)
    }


APP_SERVICES = set(defined_stack().app_names())


def test_every_service_of_the_stack_turns_healthy(stack: Stack) -> None:
    rows = stack.ps()
    expected = running_services(stack)
    assert set(rows) == expected
    # Only third-party images are ever left out: every service of the project's image runs.
    assert not [name for name in set(DEFINED) - expected if DEFINED[name].template_image]
    states = {name: (row["State"], row["Health"]) for name, row in rows.items()}
    assert states == {name: ("running", "healthy") for name in expected}


def test_the_token_is_in_no_containers_environment(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    # The tokens are mounted secret files, so `docker inspect` shows them nowhere.
    for row in stack.ps().values():
        config = docker_client.containers.get(row["ID"]).attrs["Config"]
        for token in map(token_for, token_services()):
            assert not any(token in item for item in config.get("Env") or []), row["Service"]


def test_each_service_reads_its_token_file_by_group_without_world_read(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    # Outside Swarm, Compose bind-mounts a file secret with the host file's owner and mode
    # (it ignores uid/gid/mode with a warning); the services read it through SECRETS_GID.
    probe = (
        "import os, stat, json; s = os.stat('/run/secrets/api_token'); "
        "print(json.dumps([oct(stat.S_IMODE(s.st_mode)), s.st_gid, os.getuid(), os.getgroups(), "
        "open('/run/secrets/api_token').read().strip()]))"
    )
    rows = stack.ps()
    for name in token_services():
        token = token_for(name)
        container = docker_client.containers.get(rows[name]["ID"])
        code, output = container.exec_run(["/opt/venv/bin/python", "-c", probe])
        assert code == 0, output
        mode, gid, uid, groups, read = json.loads(output)
        assert (mode, gid, uid, read) == ("0o640", SECRETS_GID, 10001, token), name
        assert SECRETS_GID in groups


def test_only_what_compose_publishes_is_published_and_only_on_loopback(stack: Stack) -> None:
    published = {
        name: sorted(
            (p["URL"], p["TargetPort"]) for p in row.get("Publishers") or [] if p["PublishedPort"]
        )
        for name, row in stack.ps().items()
    }
    assert published == {
        name: [("127.0.0.1", port) for port in service.published_ports]
        for name, service in DEFINED.items()
        if name in running_services(stack)
    }


def test_prometheus_scrapes_every_service_and_answers_promql(stack: Stack) -> None:
    prometheus = stack.url("prometheus", 9090)
    wanted = dict.fromkeys(APP_SERVICES, "up")

    def targets() -> dict[str, str] | None:
        active = get(f"{prometheus}/api/v1/targets").json()["data"]["activeTargets"]
        health = {t["labels"]["service"]: t["health"] for t in active}
        return health if health == wanted else None

    started = time.monotonic()
    wait_for(targets, 60, "every service scraped (target health up)", interval=0.5)

    def services() -> set[str] | None:
        query = urlencode({"query": "rpc_service_info"})
        doc = get(f"{prometheus}/api/v1/query?{query}").json()
        assert doc["status"] == "success", doc
        seen = {r["metric"]["service"] for r in doc["data"]["result"]}
        return seen if seen == APP_SERVICES else None

    # Samples come with the first scrape (scrape_interval 5 s).
    wait_for(services, 60, "rpc_service_info of every service in PromQL", interval=0.5)
    took = time.monotonic() - started
    note(f"Prometheus (profile observability): every service in PromQL after {took:.1f} s")
    # The profile's Prometheus evaluates the alerting rules of observability/alerts.yml.
    groups = get(f"{prometheus}/api/v1/rules").json()["data"]["groups"]
    alerts = {rule["name"] for group in groups for rule in group["rules"]}
    assert {"RPCErrorBudgetBurnFast", "RPCSaturated", "RPCTargetDown"} <= alerts, alerts
