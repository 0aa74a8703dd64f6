"""``new NAME``: a service of your own, consistent everywhere the stack is described.

What it makes: ``services/NAME.py`` (one public and one private method), its unit and integration
tests, a Compose service, and Kubernetes resources. The Compose service and the manifests are
modelled on an existing service that calls no peers (``compute`` in the template): its Compose
block, ``k8s/base/<it>.yaml`` and ``.env`` are copied with the name changed, and every entry that
is *about* it elsewhere (kustomization lists, the prod overlay's autoscaler and disruption budget,
the ServiceMonitor, the Prometheus scrape target) gets a twin. Entries that are about calls
between services (NetworkPolicies, SERVICE_PEERS) are left alone: the new service calls no one.

All changes are computed and checked in memory first; a refusal changes nothing, and a failure
while writing restores every file it had touched.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import keyword
import os
import re
import sys
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import model, reader, templates, textedit
from . import state as st
from .context import SCRIPT, Context
from .errors import StackError

MAX_LENGTH = 20  # keeps every generated line within the lint width
YAML_WIDTH = 100  # the repository's yamllint line-length
_NAME = re.compile(r"[a-z][a-z0-9]*")
# The repository's own top-level packages: a service module must not take their names either.
_OWN_PACKAGES = frozenset({"service_template", "services", "tests", "scripts", "bench"})


@dataclass(frozen=True)
class Change:
    """One file's new content; ``original`` is None for a file that does not exist yet."""

    path: Path
    content: str
    original: str | None


@dataclass(frozen=True)
class Reference:
    """The existing service the new one is modelled on."""

    name: str
    target: str  # its serve TARGET, module:Class


def check_name(name: str) -> None:
    """StackError unless ``name`` is both a Python module name and a DNS-1123 label."""
    if not _NAME.fullmatch(name) or len(name) > MAX_LENGTH or keyword.iskeyword(name):
        raise StackError(
            f"{name!r} cannot name a service: use lower-case letters and digits, starting with a "
            f"letter, at most {MAX_LENGTH} characters (it is a Python module, a Compose service "
            "and a Kubernetes name), e.g. billing",
            status=2,
        )
    shadowed = shadowed_module(name)
    if shadowed:
        raise StackError(
            f"{name!r} cannot name a service: it is {shadowed}, and a module of that name would "
            f"shadow it wherever the service's folder is on the import path; choose another "
            f"name, e.g. {name}svc",
            status=2,
        )


def shadowed_module(name: str) -> str | None:
    """What an importable module called ``name`` is, or None when the name is free.

    Checked: the standard library, the top-level modules of every distribution installed in
    this environment (the runtime's dependencies and the tools), and this repository's packages.
    """
    # "test" (CPython's regression tests) is left out of stdlib_module_names but ships with it.
    if name in sys.stdlib_module_names or name == "test":
        return "a standard-library module"
    if name in _OWN_PACKAGES:
        return "one of this repository's packages"
    owners = importlib.metadata.packages_distributions().get(name)
    if owners:
        return f"the module of the installed distribution {sorted(owners)[0]!r}"
    return None


def renamer(reference: Reference, name: str, target: str) -> Callable[[str], str]:
    """A function that turns text about the reference service into text about the new one."""
    old_class, new_class = reference.target.rpartition(":")[2], target.rpartition(":")[2]
    pairs = [
        (old_class, new_class),
        (reference.name, name),
        (reference.name.upper(), name.upper()),
        (reference.name.capitalize(), name.capitalize()),
    ]

    def rename(text: str) -> str:
        text = text.replace(reference.target, target)
        for old, new in pairs:
            # Whole words only; "_" separates too, as in COMPUTE_SERVICE_HOST.
            text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(old)}(?![A-Za-z0-9])", new, text)
        return wrap_comments(text)

    return rename


def wrap_comments(text: str, width: int = YAML_WIDTH) -> str:
    """Comment lines a longer name pushed past ``width``, wrapped at the same indentation."""
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        if len(line) <= width or not stripped.startswith("# "):
            out.append(line)
            continue
        prefix = line[: len(line) - len(stripped)] + "# "
        out += [prefix + part for part in textwrap.wrap(stripped[2:], width - len(prefix))]
    return "\n".join(out)


def _about(reference: str) -> Callable[[Any], bool]:
    """Whether a list item is about the reference service (see the module docstring)."""

    def wanted(value: Any) -> bool:
        if isinstance(value, str):
            return value in (f"{reference}.yaml", f"{reference}.env")
        if not isinstance(value, dict):
            return False
        if value.get("name") in (reference, f"{reference}-config", f"{reference}-api-token"):
            return True
        targets = value.get("targets")
        return isinstance(targets, list) and any(
            str(t).partition(":")[0] == reference for t in targets
        )

    return wanted


def _variables(text: str) -> str:
    found = re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text)
    return ", ".join(dict.fromkeys(found)) or "its file"


def _names(value: Any) -> set[str]:
    if isinstance(value, dict) and isinstance(value.get("metadata"), dict):
        return {str(value["metadata"].get("name"))}
    return set()


def _object_of(reference: str) -> Callable[[Any], bool]:
    return lambda value: reference in _names(value) and value.get("kind") != "Namespace"


class Planner:
    """Computes every change for one new service without writing anything."""

    def __init__(self, paths: st.Paths, name: str, environ: Mapping[str, str]) -> None:
        self.paths = paths
        self.name = name
        self.environ = environ
        self.repo = paths.repo
        self.k8s = paths.repo / "k8s"
        self.target = f"{templates.PACKAGE}.{name}:{templates.class_name(name)}"
        self.changes: dict[Path, Change] = {}
        self.notes: list[str] = []

    def put(self, path: Path, content: str) -> None:
        original = path.read_text(encoding="utf-8") if path.exists() else None
        if original != content:
            self.changes[path] = Change(path, content, original)

    def new_file(self, relative: str, content: str) -> None:
        self.put(self.repo / relative, content)

    def plan(self) -> list[Change]:
        check_name(self.name)
        compose = reader.load(
            self.paths.compose_file, self.environ, self.shown(self.paths.compose_file)
        )
        self.refuse_if_taken(compose)
        reference = self.reference(compose)
        rename = renamer(reference, self.name, self.target)
        self.python_files()
        self.compose_service(reference, rename, compose)
        self.kubernetes(reference, rename)
        self.check()
        return list(self.changes.values())

    def shown(self, path: Path) -> str:
        return self.paths.shown(path)

    def yaml_files(self) -> list[Path]:
        return sorted(self.k8s.rglob("*.yaml")) if self.k8s.is_dir() else []

    def refuse_if_taken(self, compose: model.Compose) -> None:
        name = self.name
        taken = []
        if name in compose.services:
            taken.append(f"Compose service {name!r}")
        for relative in (
            f"{templates.PACKAGE}/{name}.py",
            f"tests/unit/test_{name}_service.py",
            f"tests/integration/test_{name}_service.py",
            f"k8s/base/{name}.yaml",
            f"k8s/base/{name}.env",
        ):
            if (self.repo / relative).exists():
                taken.append(relative)
        for path in self.yaml_files():
            for document in textedit.documents(path.read_text(encoding="utf-8")):
                try:
                    value = yaml.safe_load(document)
                except yaml.YAMLError:
                    continue
                if _names(value) & {name, f"{name}-config"}:
                    taken.append(f"a resource named {name} in {self.shown(path)}")
        if taken:
            raise StackError(f"{name!r} is taken ({taken[0]}); choose another name", status=2)

    def reference(self, compose: model.Compose) -> Reference:
        """The first Compose service that runs the template image on its own (no build, no
        dependencies, no peers, no profile) and has base manifests."""
        base = self.k8s / "base"
        for service in compose.services.values():
            command = service.command or ()
            if (
                compose.runs_template_image(service)
                and not (service.build or service.depends_on or service.profiles)
                and "SERVICE_PEERS" not in service.environment
                and len(command) == 2
                and command[0] == "serve"
                and (base / f"{service.name}.yaml").is_file()
                and (base / f"{service.name}.env").is_file()
            ):
                return Reference(service.name, command[1])
        raise StackError(
            "no service to model the new one on: new needs a Compose service that runs the "
            "template image without build, depends_on, profiles or SERVICE_PEERS, with "
            "k8s/base/<it>.yaml and .env"
        )

    def python_files(self) -> None:
        init = self.repo / templates.PACKAGE / "__init__.py"
        if not init.exists():
            self.put(init, templates.PACKAGE_INIT)
        name = self.name
        self.new_file(f"{templates.PACKAGE}/{name}.py", templates.render(templates.MODULE, name))
        unit, integration = templates.UNIT_TEST, templates.INTEGRATION_TEST
        self.new_file(f"tests/unit/test_{name}_service.py", templates.render(unit, name))
        self.new_file(
            f"tests/integration/test_{name}_service.py", templates.render(integration, name)
        )

    def compose_service(
        self, reference: Reference, rename: Callable[[str], str], compose: model.Compose
    ) -> None:
        path = self.paths.compose_file
        text = path.read_text(encoding="utf-8")
        lines = text.split("\n")
        found = textedit.mapping_entry(lines, "services", reference.name)
        if found is None:
            raise StackError(f"cannot find {reference.name}'s block in {self.shown(path)}")
        block = rename("\n".join(lines[found[0] : found[1]]))
        text = textedit.append_to_mapping(text, "services", block)
        # A secret of the reference's own (compute_token: its API token) gets a twin, so the new
        # service has a token of its own; shared secrets are mounted as they are.
        for secret in compose.services[reference.name].secrets:
            if rename(secret) == secret:
                continue
            lines = text.split("\n")
            entry = textedit.mapping_entry(lines, "secrets", secret)
            if entry is not None:
                twin = rename("\n".join(lines[entry[0] : entry[1]]))
                text = textedit.append_to_mapping(text, "secrets", twin)
                self.notes.append(
                    f"{self.name} has a token of its own: set {_variables(twin)} (compose/.env)"
                )
        self.put(path, text)
        prometheus = path.parent / "prometheus.yml"
        if prometheus.is_file():
            updated, count = textedit.duplicate_items(
                prometheus.read_text(encoding="utf-8"), _about(reference.name), rename
            )
            if count:
                self.put(prometheus, updated)

    def kubernetes(self, reference: Reference, rename: Callable[[str], str]) -> None:
        base = self.k8s / "base"
        manifest = (base / f"{reference.name}.yaml").read_text(encoding="utf-8")
        body = manifest.split("\n")
        first = next(i for i, line in enumerate(body) if line.strip() and not line.startswith("#"))
        header = (
            f"# {self.name}: made by `{SCRIPT} new` from {reference.name}.yaml;\n"
            f"# the service itself is {templates.PACKAGE}/{self.name}.py.\n"
        )
        self.put(base / f"{self.name}.yaml", header + rename("\n".join(body[first:])))
        self.put(base / f"{self.name}.env", rename((base / f"{reference.name}.env").read_text()))
        for path in self.yaml_files():
            if path == base / f"{reference.name}.yaml":
                continue
            text = path.read_text(encoding="utf-8")
            if path.name == "kustomization.yaml":
                updated, _ = textedit.duplicate_items(text, _about(reference.name), rename)
            else:
                updated, _ = textedit.duplicate_documents(text, _object_of(reference.name), rename)
            self.put(path, updated)
        kustomization = base / "kustomization.yaml"
        if kustomization not in self.changes:
            raise StackError(
                f"{self.shown(kustomization)} does not list {reference.name}.yaml; cannot add "
                f"{self.name} the same way"
            )

    def check(self) -> None:
        """Every changed file must parse and stay within the lint width, and the Compose file
        must describe the service."""
        for change in self.changes.values():
            where = self.shown(change.path)
            before = set((change.original or "").split("\n"))
            if any(len(line) > YAML_WIDTH for line in set(change.content.split("\n")) - before):
                raise StackError(f"new would write lines over {YAML_WIDTH} columns in {where}")
            if change.path.suffix in (".yaml", ".yml"):
                try:
                    list(yaml.safe_load_all(change.content))
                except yaml.YAMLError as exc:
                    raise StackError(f"new would break {where} ({exc}); nothing changed") from exc
            elif change.path.suffix == ".py":
                compile(change.content, where, "exec")
        text = self.changes[self.paths.compose_file].content
        compose = reader.parse(text, self.paths.compose_file, self.environ, "the new Compose file")
        service = compose.services.get(self.name)
        if service is None or service.command != ("serve", self.target):
            raise StackError("new could not add the service to the Compose file; nothing changed")
        dockerfile = self.repo / "Dockerfile"
        if dockerfile.is_file() and f"{templates.PACKAGE}/" not in dockerfile.read_text():
            self.notes.append(
                f"the Dockerfile does not copy {templates.PACKAGE}/ into the image: `up --docker` "
                f"needs it (COPY {templates.PACKAGE}/ next to service_template/)"
            )


def write(changes: list[Change], writer: Callable[[Path, str], None] | None = None) -> None:
    """Write every change; on any failure restore what was written and remove new folders."""
    writer = writer or _write_atomically
    written: list[Change] = []
    made: list[Path] = []
    try:
        for change in changes:
            missing = [p for p in reversed(change.path.parents) if not p.exists()]
            for folder in missing:
                folder.mkdir()
                made.append(folder)
            writer(change.path, change.content)
            written.append(change)
    except BaseException:
        for change in reversed(written):
            if change.original is None:
                change.path.unlink(missing_ok=True)
            else:
                _write_atomically(change.path, change.original)
        for folder in reversed(made):
            folder.rmdir()
        raise


def _write_atomically(path: Path, content: str) -> None:
    temporary = path.with_name(f".{path.name}.new")
    try:
        temporary.write_text(content, encoding="utf-8")
        if path.exists():
            os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def command(ctx: Context, args: argparse.Namespace) -> int:
    """Create the service NAME everywhere; print what changed and what to do next."""
    planner = Planner(ctx.paths, args.name, ctx.environ)
    changes = planner.plan()
    write(changes)
    for change in changes:
        verb = "created" if change.original is None else "updated"
        ctx.ui.say(f"{verb} {ctx.paths.shown(change.path)}")
    for note in planner.notes:
        ctx.ui.say(f"note: {note}")
    ctx.ui.say(
        f"next: `{SCRIPT} up`, then `{SCRIPT} call {args.name} greet world`; the tests are "
        f"tests/unit/test_{args.name}_service.py and tests/integration/test_{args.name}_service.py"
    )
    return 0
