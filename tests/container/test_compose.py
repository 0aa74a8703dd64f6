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

import time
from urllib.parse import urlencode

import docker
import pytest

from tests.conftest import defined_stack

from .compose_stack import Stack
from .support import TOKEN, get, note, wait_for

pytestmark = pytest.mark.container

SERVICES = set(defined_stack().services)  # the metrics profile is on: every service runs
APP_SERVICES = set(defined_stack().app_names())


def test_every_service_of_the_stack_turns_healthy(stack: Stack) -> None:
    rows = stack.ps()
    assert set(rows) == SERVICES
    states = {name: (row["State"], row["Health"]) for name, row in rows.items()}
    assert states == {name: ("running", "healthy") for name in SERVICES}


def test_the_token_is_in_no_containers_environment(
    stack: Stack, docker_client: docker.DockerClient
) -> None:
    # The token is a mounted secret file, so `docker inspect` shows it nowhere.
    for row in stack.ps().values():
        config = docker_client.containers.get(row["ID"]).attrs["Config"]
        assert not any(TOKEN in item for item in config.get("Env") or []), row["Service"]


def test_only_what_compose_publishes_is_published_and_only_on_loopback(stack: Stack) -> None:
    published = {
        name: sorted(
            (p["URL"], p["TargetPort"]) for p in row.get("Publishers") or [] if p["PublishedPort"]
        )
        for name, row in stack.ps().items()
    }
    assert published == {
        name: [("127.0.0.1", port) for port in service.published_ports]
        for name, service in defined_stack().services.items()
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
    note(f"Prometheus (profile metrics): every service's metrics in PromQL after {took:.1f} s")
