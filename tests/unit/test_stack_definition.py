"""The stack's definition: the services and calls the tests, ``new``/``remove`` and the manifest
checks derive from compose/compose.yaml, as Compose itself reads the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.stacklib import definition
from scripts.stacklib.errors import StackError
from tests.conftest import REPO, missing_tool

FILES = [REPO / "compose" / "compose.yaml", REPO / "tests" / "stackfixture" / "compose.yaml"]


def compose_or_skip() -> None:
    if definition.compose_command() is None:
        missing_tool("Compose is not installed: run scripts/ci/install-tools.sh .venv")


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_compose_and_the_stack_reader_define_the_same_services(path: Path) -> None:
    compose_or_skip()
    by_compose = definition.load(path, {}, use_compose=True)
    by_reader = definition.load(path, {}, use_compose=False)
    assert by_compose.source == definition.COMPOSE_CONFIG
    assert by_reader.source == definition.READER
    assert by_compose.services == by_reader.services


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
    stack = definition.load(path, {}, use_compose=False)
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
        definition.load(path, {}, use_compose=False)
    assert str(caught.value) == ("services.b.environment.SERVICE_PEERS: a: not an http(s) URL")
