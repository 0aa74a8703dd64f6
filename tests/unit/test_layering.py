"""The package layout is the architecture: imports point one way (STYLE.md).

- ``protocol/`` uses the standard library only (orjson optionally);
- only ``http/`` imports Tornado; httptools, ``http/`` and the client's own connection
  (``client/connection.py``);
- only ``metrics.py`` and ``client_metrics.py`` (the outbound calls' series) import
  prometheus_client;
- only the client's httpx transport (``client/httpx_transport.py``) imports httpx;
- only ``tracing/`` imports OpenTelemetry (and only once tracing is on: ``tracing/__init__``);
- the package's own modules form layers (``LAYERS``): a module imports, at run time, only from
  its own layer or lower ones, and no chain of run-time imports leads back to where it began.

Imports under ``if TYPE_CHECKING:`` never run: they name a type for the checker and may point
up (the runtime names ``MicroService``, which it serves but never imports). Imports inside a
function do run, when it is called, and count like any other.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
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
        ("httptools", ("http/", "client/connection.py")),
        ("prometheus_client", ("metrics.py", "client_metrics.py")),
        ("httpx", ("client/httpx_transport.py",)),
        ("opentelemetry", ("tracing/",)),
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


# The package's layers, lowest first. A module's unit is its top-level name under the package
# (``http/server.py`` -> ``http``); ``__init__`` is the package itself.
LAYERS: tuple[tuple[str, ...], ...] = (
    # Leaves: JSON-RPC without I/O, start-up errors, the version, what logs must not show, the
    # one peers parser, the text log format, the thread pool plain methods run in, the
    # breakpoint() hook of the local stack.
    ("protocol", "errors", "version", "redaction", "peers", "logtext", "pool", "breakpoints"),
    ("settings",),  # the mechanism: typed fields read from flags, environment, a YAML file
    (
        "config",
        "auth",
        "health",
        "logs",
        "metrics",
        "client",
        "client_metrics",
        "discovery",
        "tracing",
    ),
    # A method's type model (contracts) and the per-call conversion built from it.
    ("conversion", "contracts"),
    # What the decorators record on a service's methods, and the registry read from it.
    ("declarations",),
    ("openrpc",),  # the document, from the contracts
    ("context", "hooks", "routing"),  # the call as a method sees it; hooks; declared routes
    ("invocation", "access"),  # one call under its deadline (loop or pool); who the caller is
    ("assembly",),  # a runtime's parts built from its settings
    ("runtime",),  # a service wired for serving: admission, drain, documents, health
    ("http",),  # the only Tornado/httptools code
    ("supervisor", "runner"),  # processes: pre-fork workers, signals, lifecycle, drain
    ("service",),  # MicroService: what users subclass; start() calls the runner
    ("loader", "__init__", "cli", "__main__", "testing"),  # entry points and the test kit
)
LAYER_OF = {unit: rank for rank, units in enumerate(LAYERS) for unit in units}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in modules()}


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _type_checking_block(node: ast.AST) -> bool:
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST, type_only: bool) -> Iterator[tuple[ast.AST, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child, type_only
        if isinstance(child, ast.If) and _type_checking_block(child):
            for statement in child.body:
                yield from _imports(ast.Module(body=[statement], type_ignores=[]), True)
            for statement in child.orelse:
                yield from _imports(ast.Module(body=[statement], type_ignores=[]), type_only)
        else:
            yield from _imports(child, type_only)


def package_imports(module: str) -> set[tuple[str, bool]]:
    """(imported package module, type only?) for every import of the package by ``module``."""
    path = MODULES[module]
    found: set[tuple[str, bool]] = set()
    for node, type_only in _imports(ast.parse(path.read_text(), str(path)), False):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            assert isinstance(node, ast.ImportFrom)
            if node.level:
                base = module.split(".")
                if path.name != "__init__.py":
                    base = base[:-1]
                base = base[: len(base) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            # "from . import x" imports the module x when there is one, else a name from .
            targets = [
                f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
                for alias in node.names
            ]
        found.update((t, type_only) for t in targets if t.split(".")[0] == PACKAGE.name)
    return found


def run_time_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports at run time (a name re-exported by a package's
    ``__init__`` counts as that package)."""
    return {
        module: {
            _module_of(target) for target, type_only in package_imports(module) if not type_only
        }
        for module in MODULES
    }


def _module_of(name: str) -> str:
    return name if name in MODULES else name.rsplit(".", 1)[0]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{module} ({unit(module)}) imports {target} ({unit(target)})"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if LAYER_OF[unit(target)] > LAYER_OF[unit(module)]
    ]


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle a depth-first walk meets, each as the chain of modules."""
    cycles: list[list[str]] = []
    state: dict[str, str] = {}  # "open" while on the current path, "done" once explored

    def visit(path: list[str]) -> None:
        state[path[-1]] = "open"
        for target in sorted(graph.get(path[-1], ())):
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit([*path, target])
        state[path[-1]] = "done"

    for module in sorted(graph):
        if module not in state:
            visit([module])
    return cycles


def test_every_module_belongs_to_a_layer() -> None:
    assert sorted({unit(m) for m in MODULES} - set(LAYER_OF)) == []


def test_run_time_imports_point_down_the_layers() -> None:
    assert upward_imports(run_time_graph()) == []


def test_no_run_time_import_cycles() -> None:
    assert find_cycles(run_time_graph()) == []


def test_the_start_seam_is_one_way_and_the_supervisor_is_not_http() -> None:
    # start() lives on MicroService and calls the runner; nothing the runner uses imports it.
    graph = run_time_graph()
    assert "service_template.runner" in graph["service_template.service"]
    below = [m for m in graph if unit(m) in ("runner", "runtime", "supervisor", "http")]
    assert "service_template.http.server" in below
    for module in below:
        assert "service_template.service" not in graph[module], module
    assert not {t for t in graph["service_template.supervisor"] if unit(t) == "http"}


def test_the_checks_find_a_planted_cycle_and_upward_import() -> None:
    # The checks above must be able to fail.
    graph = {
        "service_template.runtime": {"service_template.service"},
        "service_template.service": {"service_template.runner"},
        "service_template.runner": {"service_template.runtime"},
    }
    assert find_cycles(graph) == [
        [
            "service_template.runner",
            "service_template.runtime",
            "service_template.service",
            "service_template.runner",
        ]
    ]
    assert upward_imports(graph) == [
        "service_template.runtime (runtime) imports service_template.service (service)"
    ]


def test_the_walker_tells_type_only_imports_from_run_time_ones() -> None:
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "from .errors import StartupError\n"
        "if TYPE_CHECKING:\n"
        "    from .service import MicroService\n"
        "def f():\n"
        "    from .http.server import bind\n"
    )
    kinds = [
        (node.module, type_only)
        for node, type_only in _imports(tree, False)
        if isinstance(node, ast.ImportFrom)
    ]
    assert kinds == [
        ("typing", False),
        ("errors", False),
        ("service", True),
        ("http.server", False),
    ]


def test_importing_the_package_loads_no_third_party_library() -> None:
    # `python -m service_template` imports the package before __main__ takes the working
    # directory off sys.path, so a library imported then could be a planted yaml.py.
    import subprocess

    probe = (
        "import sys, service_template; "
        "print(sorted(m for m in ('yaml', 'tornado', 'httptools', 'prometheus_client', 'httpx')"
        " if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
