"""Where the manifests name the product (issue 10: names in as few places as possible).

The part-of label comes from one kustomize component, ``k8s/components/product``; the
namespaces from each overlay's ``namespace:``; the image from its ``images:``. These tests keep
the name from creeping back into the manifests (by hand or by ``stack.py new``), and check that
the rendered output still labels and selects everything as if each manifest spelled it out.
"""

from __future__ import annotations

import fnmatch
import io
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from scripts.stacklib.cli import main
from scripts.stacklib.ui import UI
from tests.conftest import REPO, fresh_name
from tests.scratch_copies import copy_worktree
from tests.unit.test_k8s_consistency import K8S, render

PRODUCT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]
PART_OF = "app.kubernetes.io/part-of"
# rename.py's notion of a whole name: "<slug>-tls" and "<slug>/api-token" count, "my-<slug>" not.
NAMED = re.compile(rf"(?<![A-Za-z0-9_])(?<![a-z0-9]-){re.escape(PRODUCT)}(?![A-Za-z0-9_])")

# (file pattern under k8s/, line pattern with {p} for the product): every line of a manifest
# that names the product must match one, and each says why kustomize cannot supply that name.
ALLOWED = (
    # The one declaration of the label.
    ("components/product/kustomization.yaml", rf"^      {PART_OF}: {{p}}$"),
    # A patch adds these selectors after the product component has run (components run before
    # their parent's patches), so the label transformer never sees them.
    ("overlays/prod/deployment-production.yaml", rf"^          {PART_OF}: {{p}}$"),
    # The overlays' own settings: the namespace and the image, and the commands in comments.
    ("overlays/*/kustomization.yaml", r"^namespace: {p}(-dev)?$"),
    ("overlays/*/kustomization.yaml", r"^  - name: {p}$"),
    ("overlays/*/kustomization.yaml", r"^    newName: [a-z0-9./-]+/{p}$"),
    ("overlays/*/kustomization.yaml", r"^#"),
    # The image placeholder the overlays' `images:` rewrite (the image Compose runs, so the base
    # renders alone as the same image: test_k8s_consistency).
    ("base/*.yaml", r"^          image: {p}$"),
    # A Secret the operator (or cert-manager) makes: named in the cluster, not by kustomize.
    ("overlays/prod/ingress.yaml", r"^      secretName: {p}-tls$"),
    # Generated from observability/alerts.yml (alert-rules.py --check): the rules' own names and
    # the job label, which Compose's Prometheus sets from the same name.
    ("components/servicemonitor/prometheusrule.yaml", r".*"),
)


def unexpected_names(k8s: Path) -> list[str]:
    """``path:line: text`` for each line of a manifest under ``k8s`` naming the product where
    ALLOWED does not expect it (README files are prose, and rename.py rewrites them)."""
    found = []
    for path in sorted(k8s.rglob("*.yaml")):
        relative = path.relative_to(k8s).as_posix()
        patterns = [
            re.compile(line.format(p=re.escape(PRODUCT)))
            for glob, line in ALLOWED
            if fnmatch.fnmatch(relative, glob)
        ]
        for number, text in enumerate(path.read_text().splitlines(), 1):
            if NAMED.search(text) and not any(p.match(text) for p in patterns):
                found.append(f"k8s/{relative}:{number}: {text.strip()}")
    return found


def test_the_manifests_name_the_product_only_where_kustomize_cannot() -> None:
    assert unexpected_names(REPO / "k8s") == []


def test_what_new_writes_does_not_name_the_product(tmp_path: Path) -> None:
    repo = copy_worktree(tmp_path / "repo")
    public, called = fresh_name("front"), fresh_name("billing", fresh_name("front"))
    for argv in (["new", public, "--called-by", "ingress"], ["new", called, "--called-by", public]):
        err = io.StringIO()
        assert main(argv, repo, environ={}, ui=UI(io.StringIO(), err)) == 0, err.getvalue()
    assert unexpected_names(repo / "k8s") == []


# --- what renders ---------------------------------------------------------------------------


def pod_selectors(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The selectors of ``doc`` that pick the product's own pods (or Services)."""
    spec = doc.get("spec", {})
    kind = doc["kind"]
    if kind == "Service":
        return [{"matchLabels": spec["selector"]}]
    if kind in ("Deployment", "PodDisruptionBudget", "ServiceMonitor"):
        spread = spec.get("template", {}).get("spec", {}).get("topologySpreadConstraints", [])
        return [spec["selector"], *(c["labelSelector"] for c in spread)]
    if kind == "NetworkPolicy":
        peers = [
            peer
            for rule in [*spec.get("ingress", []), *spec.get("egress", [])]
            for peer in [*rule.get("from", []), *rule.get("to", [])]
        ]
        # A podSelector beside a namespaceSelector picks pods of another namespace: not ours.
        own = [
            p["podSelector"] for p in peers if "podSelector" in p and "namespaceSelector" not in p
        ]
        return [spec["podSelector"], *own]
    return []


@pytest.mark.parametrize(
    "target", [("dev",), ("prod",), ("prod", "components/servicemonitor")], ids="+".join
)
def test_every_resource_and_selector_of_the_product_carries_its_label(
    target: tuple[str, ...],
) -> None:
    overlay, *components = target
    docs = render(overlay, *(K8S / c for c in components))
    assert {"Namespace", "Deployment", "Service", "ConfigMap"} <= {doc["kind"] for doc in docs}
    if target[0] == "prod":
        # (An Ingress too while a service is published, `new --called-by ingress`: the loop
        # below checks it then; a project that publishes nothing has none.)
        wanted = {"NetworkPolicy", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
        assert wanted <= {doc["kind"] for doc in docs}
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert doc["metadata"].get("labels", {}).get(PART_OF) == PRODUCT, where
        if doc["kind"] == "Deployment":
            assert doc["spec"]["template"]["metadata"]["labels"][PART_OF] == PRODUCT, where
        for selector in pod_selectors(doc):
            assert selector.get("matchLabels", {}).get(PART_OF) == PRODUCT, (where, selector)


def test_selectors_of_other_namespaces_pods_do_not_require_the_product_label() -> None:
    # kustomize adds the label to every NetworkPolicy podSelector's matchLabels, including one
    # that picks kube-dns in kube-system; network-policies.yaml writes those as matchExpressions.
    for doc in render("prod"):
        if doc["kind"] != "NetworkPolicy":
            continue
        for rule in [*doc["spec"].get("ingress", []), *doc["spec"].get("egress", [])]:
            for peer in [*rule.get("from", []), *rule.get("to", [])]:
                if "namespaceSelector" in peer and "podSelector" in peer:
                    assert PART_OF not in peer["podSelector"].get("matchLabels", {}), doc
