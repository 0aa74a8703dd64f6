"""The package layout is the architecture: imports point one way (STYLE.md).

- ``protocol/`` uses the standard library only (orjson optionally);
- only ``http/`` imports Tornado and httptools;
- only ``metrics.py`` imports prometheus_client;
- only the client side (``client.py``) imports httpx.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "service_template"


def imported_roots(path: Path) -> set[str]:
    """Top-level module names a file imports (relative imports excluded)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def rel(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


@pytest.mark.parametrize("path", [p for p in modules() if rel(p).startswith("protocol/")], ids=rel)
def test_protocol_layer_uses_only_the_standard_library(path: Path) -> None:
    third_party = (
        imported_roots(path) - set(sys.stdlib_module_names) - {"orjson", "service_template"}
    )
    assert not third_party, f"{rel(path)} imports {sorted(third_party)}"


@pytest.mark.parametrize(
    ("library", "allowed"),
    [
        ("tornado", ("http/",)),
        ("httptools", ("http/",)),
        ("prometheus_client", ("metrics.py",)),
        ("httpx", ("client.py",)),
    ],
)
def test_only_its_own_layer_imports_a_library(library: str, allowed: tuple[str, ...]) -> None:
    offenders = [
        rel(path)
        for path in modules()
        if library in imported_roots(path) and not rel(path).startswith(allowed)
    ]
    assert not offenders, f"{library} imported outside {allowed}: {offenders}"


def test_the_peers_parser_uses_only_the_standard_library() -> None:
    # scripts/stacklib imports it to read SERVICE_PEERS the way the runtime does.
    path = PACKAGE / "peers.py"
    assert not imported_roots(path) - set(sys.stdlib_module_names) - {"__future__"}


def test_no_runtime_module_imports_the_test_kit() -> None:
    # service_template.testing is for users' tests; the runtime never depends on it.
    offenders = [
        rel(path)
        for path in modules()
        if not rel(path).startswith("testing/")
        and "testing" in path.read_text()
        and any(
            isinstance(node, ast.ImportFrom) and (node.module or "").endswith("testing")
            for node in ast.walk(ast.parse(path.read_text()))
        )
    ]
    assert not offenders, f"the runtime imports the test kit: {offenders}"
