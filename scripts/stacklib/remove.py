"""``remove NAME``: take a service out of the project everywhere ``new`` puts one.

It deletes the service's module and its test files (unit, integration, container), its Compose
block (and other services' ``depends_on`` entries for it), its Kubernetes base manifest and
settings, and every entry about it: kustomization lists, the overlays' autoscaler, disruption
budget, replicas and settings, the ServiceMonitor, the Prometheus scrape target, and the
NetworkPolicies that select it or only let it in or out. If it is the service that builds the
template image, its ``build:`` moves to the next service that runs the image.

It refuses to remove a service another one calls (SERVICE_PEERS, read through the stack's
definition), naming the callers, and a service that is not the project's own (a third-party
image such as Prometheus). Like ``new``, it plans every change in memory first.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from . import definition, manifests, peerfiles, rendered, textedit
from . import state as st
from .context import SCRIPT, Context
from .errors import StackError
from .model import Compose
from .scaffold import Change, checked_by_compose, taken_names, write

NAME_LABEL = "app.kubernetes.io/name"


def about(name: str) -> Callable[[Any], bool]:
    """Whether a list item is about the service: its file, its name, its scrape target."""

    def wanted(value: Any) -> bool:
        if isinstance(value, str):
            return value in (f"{name}.yaml", f"{name}.env")
        if not isinstance(value, dict):
            return False
        if value.get("name") in (name, f"{name}-config", f"{name}-api-token"):
            return True
        targets = value.get("targets")
        return isinstance(targets, list) and any(str(t).partition(":")[0] == name for t in targets)

    return wanted


def _selects_only(selector: Any, name: str) -> bool:
    labels = (selector or {}).get("matchLabels") or {} if isinstance(selector, dict) else {}
    return bool(labels.get(NAME_LABEL) == name)


def policy_only_about(name: str) -> Callable[[Any], bool]:
    """Whether a NetworkPolicy applies to the service alone, or only lets it in or out."""

    def wanted(value: Any) -> bool:
        if not isinstance(value, dict) or value.get("kind") != "NetworkPolicy":
            return False
        spec = value.get("spec") or {}
        if _selects_only(spec.get("podSelector"), name):
            return True
        peers = [
            peer
            for key, side in (("ingress", "from"), ("egress", "to"))
            for rule in spec.get(key) or []
            for peer in rule.get(side) or []
        ]
        return bool(peers) and all(_selects_only(peer.get("podSelector"), name) for peer in peers)

    return wanted


def _drop_from_flow_lists(text: str, name: str) -> str:
    """``values: [hello, compute]`` -> ``values: [compute]`` for every such list naming it."""

    def edit(match: re.Match[str]) -> str:
        words = [w.strip() for w in match.group(2).split(",") if w.strip() != name]
        return f"{match.group(1)}{', '.join(words)}{match.group(3)}"

    return re.sub(r"(values:\s*\[)([^\]]*)(\])", edit, text)


def _comment_start(lines: list[str], start: int) -> int:
    """``start`` moved up over the comment lines directly above it (they describe it)."""
    while start > 0 and lines[start - 1].strip().startswith("#"):
        start -= 1
    return start


def _keep_secrets_a_mapping(lines: list[str]) -> None:
    """``secrets:`` left with comments only becomes ``secrets: {}``: Compose refuses a null
    there, and the comments stay for the next ``new`` (scaffold.py reopens the mapping)."""
    top = next((i for i, line in enumerate(lines) if line.rstrip() == "secrets:"), None)
    if top is None:
        return
    for line in lines[top + 1 :]:
        if line.strip() and not line.lstrip().startswith("#"):
            if line[0].isspace():
                return  # an entry is left
            break
    lines[top] = "secrets: {}"


class Remover:
    """Computes every change that removes one service, without writing anything."""

    def __init__(self, paths: st.Paths, name: str, environ: Mapping[str, str]) -> None:
        self.paths = paths
        self.repo = paths.repo
        self.name = name
        self.environ = environ
        self.changes: dict[Path, Change] = {}

    def put(self, path: Path, content: str | None) -> None:
        original = path.read_text(encoding="utf-8") if path.exists() else None
        if original != content:
            self.changes[path] = Change(path, content, original)
        else:  # a later step may undo an earlier one's edit (the generated peer files)
            self.changes.pop(path, None)

    def edited(self, path: Path) -> str:
        change = self.changes.get(path)
        if change is not None and change.content is not None:
            return change.content
        return path.read_text(encoding="utf-8")

    def plan(self) -> list[Change]:
        # What the stack has and who calls whom is Compose's own reading of the file; the
        # edits are text, so the file keeps its comments and layout.
        compose = rendered.read(self.paths.compose_file, self.environ)
        stack = definition.from_model(compose)
        service = stack.services.get(self.name)
        if service is None:
            known = ", ".join(stack.app_names()) or "none"
            raise StackError(
                f"no service named {self.name!r} in the stack (services: {known})", status=2
            )
        if service not in stack.app_services():
            raise StackError(
                f"{self.name} is not one of the project's services (it does not run the "
                f"template image); edit {self.paths.shown(self.paths.compose_file)} yourself",
                status=2,
            )
        callers = stack.callers_of(self.name)
        if callers:
            raise StackError(
                f"{', '.join(callers)} call{'s' if len(callers) == 1 else ''} {self.name} "
                f"(SERVICE_PEERS in {self.paths.shown(self.paths.compose_file)}): remove "
                f"{' and '.join(callers)} first, or take {self.name} out of "
                f"{'their' if len(callers) > 1 else 'its'} peers",
                status=2,
            )
        self.files(service.target)
        self.compose(compose)
        self.kubernetes()
        self.check()
        return list(self.changes.values())

    def files(self, target: str | None) -> None:
        module = (target or "").partition(":")[0]
        candidates = [
            f"{module.replace('.', '/')}.py" if module else None,
            f"tests/unit/test_{self.name}_service.py",
            f"tests/integration/test_{self.name}_service.py",
            f"tests/container/test_{self.name}_service.py",
            f"k8s/base/{self.name}.yaml",
            f"k8s/base/{self.name}.env",
        ]
        for relative in filter(None, candidates):
            path = self.repo / relative
            if path.is_file() and path.resolve().is_relative_to(self.repo.resolve()):
                self.put(path, None)

    def compose(self, compose: Compose) -> None:
        path = self.paths.compose_file
        lines = path.read_text(encoding="utf-8").split("\n")
        found = textedit.mapping_entry(lines, "services", self.name)
        if found is None:
            raise StackError(f"cannot find {self.name}'s block in {self.paths.shown(path)}")
        start, end = found
        build = textedit.block_of(lines, start + 1, end, "build")
        # Its comment may name the services of the day: the moved block gets the template's.
        build_lines = [*manifests.BUILD_COMMENT, *lines[build[0] : build[1]]] if build else []
        while start > 0 and not lines[start - 1].strip():
            start -= 1  # the blank line that separated it from the block before
        del lines[start:end]
        # Its own token: the top-level secret (and the blank line new put before it).
        secret = textedit.mapping_entry(lines, "secrets", f"{self.name}_token")
        if secret is not None:
            first = secret[0]
            while first > 0 and not lines[first - 1].strip():
                first -= 1
            del lines[first : secret[1]]
            _keep_secrets_a_mapping(lines)
        dependants = sorted(
            other.name
            for other in compose.services.values()
            if any(d.service == self.name for d in other.depends_on)
        )
        text = self.without_dependencies("\n".join(lines), dependants)
        if build_lines:
            heirs = [
                s.name
                for s in compose.services.values()
                if s.name != self.name and compose.runs_template_image(s)
            ]
            text = self.move_build(text, build_lines, heirs)
        self.put(path, text)
        example = path.parent / ".env.example"
        if example.is_file():
            variable = f"{self.name.upper()}_TOKEN_FILE="
            kept = [
                line
                for line in example.read_text(encoding="utf-8").split("\n")
                if not line.startswith(variable)
            ]
            self.put(example, "\n".join(kept))

    def without_dependencies(self, text: str, dependants: list[str]) -> str:
        """Each of ``dependants``' ``depends_on`` entry for the removed service, taken out of
        its block; one that is not written there (it comes from a ``<<:`` merge) is refused."""
        for other in dependants:
            lines = text.split("\n")
            block = textedit.mapping_entry(lines, "services", other)
            if block is None:
                raise self.cannot_edit(other)
            found = textedit.block_of(lines, block[0] + 1, block[1], "depends_on")
            if found is None:
                raise self.cannot_edit(other)
            first, last = found
            if "[" in lines[first]:  # depends_on: [a, b]
                edited = re.sub(rf"(?<=[\[ ,]){re.escape(self.name)}\s*,?\s*", "", lines[first])
                if edited == lines[first]:
                    raise self.cannot_edit(other)
                lines[first] = edited.replace(", ]", "]")
                if lines[first].rstrip().endswith("[]"):
                    del lines[first]
            else:
                entry = textedit.block_of(lines, first + 1, last, self.name)
                entry = entry or textedit.block_of(lines, first + 1, last, f"- {self.name}")
                if entry is None:
                    raise self.cannot_edit(other)
                start = _comment_start(lines, entry[0])  # its comments go with it
                del lines[start : entry[1]]
                last -= entry[1] - start
                rest = [i for i in range(first + 1, last) if lines[i].strip()]
                if not any(not lines[i].strip().startswith("#") for i in rest):
                    del lines[first:last]
            text = "\n".join(lines)
        return text

    def cannot_edit(self, other: str) -> StackError:
        where = self.paths.shown(self.paths.compose_file)
        # Compose also counts a merged anchor's depends_on, volumes_from and network_mode.
        return StackError(
            f"{other} depends on {self.name} other than by a depends_on entry in its own block "
            f"of {where} (a merged anchor, volumes_from, network_mode?): take {self.name} out "
            f"of {other} yourself; nothing changed"
        )

    def move_build(self, text: str, build_lines: list[str], heirs: list[str]) -> str:
        """Give ``build:`` to the first of ``heirs`` (the services that run the template image)
        in the file."""
        lines = text.split("\n")
        blocks = [b for name in heirs if (b := textedit.mapping_entry(lines, "services", name))]
        if not blocks:
            return text
        start, end = min(blocks)
        pull = textedit.block_of(lines, start + 1, end, "pull_policy")
        if pull is not None:
            del lines[_comment_start(lines, pull[0]) : pull[1]]
        merge = textedit.block_of(lines, start + 1, end, "<<")
        at = merge[1] if merge is not None else start + 1
        lines[at:at] = build_lines
        return "\n".join(lines)

    def kubernetes(self) -> None:
        yaml_files = sorted((self.repo / "k8s").rglob("*.yaml"))
        prometheus = self.paths.compose_file.parent / "prometheus.yml"
        for path in [*yaml_files, prometheus]:
            if not path.is_file() or path in self.changes:
                continue
            text = self.edited(path)
            text, _ = textedit.remove_items(text, about(self.name))
            text, _ = textedit.remove_documents(
                text,
                lambda value: (
                    (self.name in taken_names(value) and value.get("kind") != "Namespace")
                    or policy_only_about(self.name)(value)
                ),
            )
            text = _drop_from_flow_lists(text, self.name) if "NetworkPolicy" in text else text
            self.put(path, text)

    def check(self) -> None:
        """Every changed YAML file must parse, and the Compose file must still be a stack."""
        for change in self.changes.values():
            if change.content is None or change.path.suffix not in (".yaml", ".yml"):
                continue
            try:
                list(yaml.safe_load_all(change.content))
            except yaml.YAMLError as exc:
                where = self.paths.shown(change.path)
                raise StackError(f"remove would break {where} ({exc}); nothing changed") from exc
        compose_change = self.changes.get(self.paths.compose_file)
        if compose_change is not None and compose_change.content is not None:
            compose = checked_by_compose("remove", self.paths, self.environ, compose_change.content)
            if self.name in compose.services:
                raise StackError(
                    f"remove could not take {self.name} out of "
                    f"{self.paths.shown(self.paths.compose_file)}; nothing changed"
                )
            # The Kubernetes copy of who calls whom, from the Compose file without it (its
            # calls, if it made any, go with it).
            stack = definition.from_model(compose)
            for path, content in peerfiles.wanted(self.repo, stack).items():
                self.put(path, content)


def command(ctx: Context, args: argparse.Namespace) -> int:
    """Remove the service NAME everywhere; print what changed."""
    changes = Remover(ctx.paths, args.name, ctx.environ).plan()
    write(changes)
    for change in changes:
        verb = "deleted" if change.content is None else "updated"
        ctx.ui.say(f"{verb} {ctx.paths.shown(change.path)}")
    ctx.ui.say(f"next: `{SCRIPT} up` runs the stack without {args.name}")
    return 0
