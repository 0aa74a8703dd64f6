"""``new NAME``: a service of your own, consistent everywhere the stack is described.

What it makes: ``services/NAME.py`` (one public and one private method), its unit and integration
tests, a Compose service, and its Kubernetes resources and entries (base manifest and settings,
kustomization lists, the prod overlay's autoscaler and disruption budget, the dev overlay's
replicas and settings, the ServiceMonitor, the Prometheus scrape target). Everything is rendered
from the templates in ``templates.py`` and ``manifests.py``, never copied from another service,
so it works whichever services the project has, none included. `--called-by` names who may
call it: each caller gets it as a peer, and the prod NetworkPolicies let exactly them in.

All changes are computed and checked in memory first; a refusal changes nothing, and a failure
while writing restores every file it had touched. ``remove NAME`` (remove.py) undoes it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import keyword
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from . import callers, definition, manifests, model, peerfiles, rendered, templates, textedit
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
    """One file's new content (None: delete it); ``original`` is None for a new file."""

    path: Path
    content: str | None
    original: str | None


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


def taken_names(value: Any) -> set[str]:
    """The names a Kubernetes object takes (its metadata.name), if it is one."""
    if isinstance(value, dict) and isinstance(value.get("metadata"), dict):
        return {str(value["metadata"].get("name"))}
    return set()


class Planner:
    """Computes every change for one new service without writing anything."""

    def __init__(
        self,
        paths: st.Paths,
        name: str,
        environ: Mapping[str, str],
        called_by: tuple[str, ...] = (),
    ) -> None:
        self.paths = paths
        self.name = name
        self.called_by = called_by
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
        else:  # a later step may undo an earlier one's edit (the generated peer files)
            self.changes.pop(path, None)

    def new_file(self, relative: str, content: str) -> None:
        self.put(self.repo / relative, content)

    def plan(self) -> list[Change]:
        check_name(self.name)
        # What the stack has (names, who runs the image) is Compose's own reading of the file;
        # the edits below are text, so the file keeps its comments and layout.
        compose = rendered.read(self.paths.compose_file, self.environ)
        self.refuse_if_taken(compose)
        self.python_files()
        self.compose_service(compose)
        self.kubernetes()
        self.callers(compose)
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
                if taken_names(value) & {name, f"{name}-config"}:
                    taken.append(f"a resource named {name} in {self.shown(path)}")
        if taken:
            raise StackError(f"{name!r} is taken ({taken[0]}); choose another name", status=2)

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

    def compose_service(self, compose: model.Compose) -> None:
        path = self.paths.compose_file
        text = path.read_text(encoding="utf-8")
        for anchor in ("&service", "&environment"):
            if anchor not in text:
                raise StackError(
                    f"{self.shown(path)} has no {anchor} anchor for the shared service settings "
                    "the new service merges; restore the x-service/x-environment blocks"
                )
        # The first service of the template image builds it; the others run it by its tag.
        block = manifests.compose_service(self.name, builds_image=compose.template_image is None)
        text = textedit.append_to_mapping(text, "services", block)
        # Every service has a token of its own: its secret, and the variable naming its file.
        text = _append_secret(text, manifests.compose_secret(self.name))
        self.put(path, text)
        example = path.parent / ".env.example"
        if example.is_file():
            line = manifests.ENV_EXAMPLE_TOKEN.format(name=self.name, NAME=self.name.upper())
            self.put(example, _after_last_token_line(example.read_text(encoding="utf-8"), line))
        self.notes.append(
            f"{self.name} has a token of its own: set {self.name.upper()}_TOKEN_FILE "
            "(compose/.env); `stack.py up` makes a dev token when it is unset"
        )

    def edited(self, path: Path) -> str:
        """The file's content with the changes planned so far."""
        change = self.changes.get(path)
        if change is not None and change.content is not None:
            return change.content
        return path.read_text(encoding="utf-8")

    def kubernetes(self) -> None:
        name = self.name
        base = self.k8s / "base"
        self.put(base / f"{name}.yaml", manifests.render(manifests.BASE_MANIFEST, name))
        self.put(base / f"{name}.env", manifests.render(manifests.BASE_ENV, name))
        for entry in manifests.ENTRIES:
            path = self.repo / entry.path
            if not path.is_file():
                self.notes.append(f"{entry.path} is gone, so {name} has no entry there")
                continue
            text, fragment = self.edited(path), manifests.render(entry.template, name)
            if entry.key is None:
                self.put(path, text.rstrip("\n") + "\n---\n" + fragment)
                continue
            try:
                self.put(path, textedit.append_to_list(text, entry.key, fragment))
            except ValueError:
                raise StackError(
                    f"{entry.path} has no {entry.key}: list to add {name} to; nothing changed"
                ) from None

    def callers(self, compose: model.Compose) -> None:
        """Let each of ``called_by`` call the new service (see callers.py)."""
        name = self.name
        compose_file = self.paths.compose_file
        policies = self.k8s / "overlays" / "prod" / "network-policies.yaml"
        if not self.called_by and policies.is_file():
            # The prod overlay denies by default: say so, or the owner learns it in production.
            self.notes.append(
                f"{self.shown(policies)}: no one may call {name} in production (only Prometheus "
                f"scrapes it); `new {name} --called-by gateway,ingress` names its callers"
            )
        for caller in self.called_by:
            if caller == callers.INGRESS:
                self.put(compose_file, callers.compose_publish(self.edited(compose_file), name))
                ingress = self.k8s / "overlays" / "prod" / "ingress.yaml"
                if ingress.is_file():
                    self.put(ingress, callers.ingress(self.edited(ingress), name))
                    self.notes.append(
                        f"{name} is routed at https://{name}.example.com/api by "
                        f"{self.shown(ingress)}: set the host and TLS Secret for your domain"
                    )
            else:
                service = compose.services.get(caller)
                if service is None or not compose.runs_template_image(service):
                    known = ", ".join(
                        s.name for s in compose.services.values() if compose.runs_template_image(s)
                    )
                    raise StackError(
                        f"--called-by {caller}: not a service of the stack (there: {known}; or "
                        f"`{callers.INGRESS}` for the public); nothing changed",
                        status=2,
                    )
                # Compose only: the Kubernetes side follows from it (peer_manifests).
                self.put(
                    compose_file, callers.compose_caller(self.edited(compose_file), caller, name)
                )
                generated = self.repo / peerfiles.POLICY_FILE
                if generated.with_name("kustomization.yaml").is_file():
                    self.notes.append(
                        f"{self.shown(generated)}: {caller} may call {name} (prod NetworkPolicies)"
                    )
                continue
            if policies.is_file():
                text = self.edited(policies).rstrip("\n")
                self.put(policies, text + "\n---\n" + callers.public_policy(name))
                self.notes.append(
                    f"{self.shown(policies)}: {caller} may call {name} (prod NetworkPolicies)"
                )

    def peer_manifests(self, compose: model.Compose) -> None:
        """The Kubernetes copy of who calls whom, generated from the planned Compose file."""
        stack = definition.from_model(compose)
        for path, content in peerfiles.wanted(self.repo, stack, frozenset({self.name})).items():
            self.put(path, content)

    def check(self) -> None:
        """Every changed file must parse and stay within the lint width, and the Compose file
        must describe the service."""
        for change in self.changes.values():
            if change.content is None:
                continue
            where = self.shown(change.path)
            before = set((change.original or "").split("\n"))
            linted = change.path.suffix in (".yaml", ".yml", ".py")  # env files have no width
            new_lines = set(change.content.split("\n")) - before
            if linted and any(len(line) > YAML_WIDTH for line in new_lines):
                raise StackError(f"new would write lines over {YAML_WIDTH} columns in {where}")
            if change.path.suffix in (".yaml", ".yml"):
                try:
                    list(yaml.safe_load_all(change.content))
                except yaml.YAMLError as exc:
                    raise StackError(f"new would break {where} ({exc}); nothing changed") from exc
            elif change.path.suffix == ".py":
                compile(change.content, where, "exec")
        text = self.changes[self.paths.compose_file].content or ""
        compose = checked_by_compose("new", self.paths, self.environ, text)
        service = compose.services.get(self.name)
        if service is None or service.command != ("serve", self.target):
            raise StackError("new could not add the service to the Compose file; nothing changed")
        self.peer_manifests(compose)
        dockerfile = self.repo / "Dockerfile"
        if dockerfile.is_file() and f"{templates.PACKAGE}/" not in dockerfile.read_text():
            self.notes.append(
                f"the Dockerfile does not copy {templates.PACKAGE}/ into the image: `up --docker` "
                f"needs it (COPY {templates.PACKAGE}/ next to service_template/)"
            )


def checked_by_compose(
    verb: str, paths: st.Paths, environ: Mapping[str, str], text: str
) -> model.Compose:
    """Compose's reading of ``text`` as the new Compose file; a StackError when Compose
    refuses it (then nothing has been written)."""
    try:
        return rendered.read(paths.compose_file, environ, text)
    except model.ComposeError as exc:
        where = paths.shown(paths.compose_file)
        raise StackError(f"{verb} would break {where} ({exc}); nothing changed") from None


def _append_secret(text: str, block: str) -> str:
    """``block`` as the last entry of the top-level ``secrets:`` mapping (made if missing),
    after whatever it holds, comments included, with no blank line: entries there are compact."""
    lines = text.rstrip("\n").split("\n")
    opening = ("secrets:", "secrets: {}")  # remove.py leaves the second when it took the last
    top = next((i for i, line in enumerate(lines) if line.rstrip() in opening), None)
    if top is None:
        return "\n".join([*lines, "", "secrets:", block]) + "\n"
    lines[top] = "secrets:"
    end = next(
        (i for i in range(top + 1, len(lines)) if lines[i] and not lines[i][0].isspace()),
        len(lines),
    )
    last = max((i for i in range(top, end) if lines[i].strip()), default=top)
    lines[last + 1 : last + 1] = block.split("\n")
    return "\n".join(lines) + "\n"


def _after_last_token_line(text: str, line: str) -> str:
    """``text`` with ``line`` after its last ``*_TOKEN_FILE=`` line (at the end without one)."""
    lines = text.split("\n")
    last = max((i for i, entry in enumerate(lines) if "_TOKEN_FILE=" in entry), default=None)
    if last is None:
        return text.rstrip("\n") + "\n" + line + "\n"
    return "\n".join([*lines[: last + 1], line, *lines[last + 1 :]])


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
            if change.content is None:
                change.path.unlink()
            else:
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


def _ask_callers(ctx: Context, name: str) -> str:
    """On a terminal, ``new`` asks who may call the service (``--called-by`` answers ahead)."""
    compose = rendered.read(ctx.paths.compose_file, ctx.environ)
    known = [s.name for s in compose.services.values() if compose.runs_template_image(s)]
    choices = ", ".join([*known, callers.INGRESS])
    try:
        return input(
            f"{SCRIPT} new: who may call {name} in production? comma-separated, from {choices} "
            "(empty: no one): "
        )
    except EOFError:  # Ctrl-D: the same as an empty answer
        return ""


def command(ctx: Context, args: argparse.Namespace) -> int:
    """Create the service NAME everywhere; print what changed and what to do next."""
    answer = args.called_by
    if answer is None:
        # A person at a terminal is asked; a script or a test (output captured) is not.
        at_terminal = sys.stdin.isatty() and sys.stdout.isatty()
        answer = _ask_callers(ctx, args.name) if at_terminal else ""
    called_by = tuple(dict.fromkeys(c.strip() for c in answer.split(",") if c.strip()))
    planner = Planner(ctx.paths, args.name, ctx.environ, called_by)
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
