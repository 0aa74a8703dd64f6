"""Every overlay renders, is valid Kubernetes, and passes checkov's Kubernetes checks.

No cluster runs here, so the real tools check the manifests offline: `kubectl kustomize`
renders them, `kubernetes-validate --strict` checks them against the API schemas of every
Kubernetes version from 1.29 to the newest it bundles (strict: a misspelt field is an error), and
checkov checks the production overlay for insecure settings. The tools come from
scripts/ci/k8s-tools.sh; without them these tests fail in CI and skip elsewhere
(tests.conftest.missing_tool).
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import defined_stack, missing_tool

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
CHECKOV = REPO / ".cache" / "checkov-venv" / "bin" / "checkov"
OLDEST_SUPPORTED = (1, 29)
INSTALL_HINT = f"run scripts/ci/k8s-tools.sh {sys.prefix}"

# Custom resources have no schema in kubernetes-validate; it warns about them and moves on.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}

TARGETS = {
    "dev": ("overlays/dev",),
    "prod": ("overlays/prod",),
    "prod+servicemonitor": ("overlays/prod", "components/servicemonitor"),
}


def _venv_tool(name: str) -> Path:
    path = Path(sys.executable).parent / name
    if not path.is_file():
        missing_tool(f"{name} is not installed in {path.parent}: {INSTALL_HINT}")
    return path


def _run(argv: list[str | Path], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=timeout, check=False
    )


def render(target: str, tmp_path: Path) -> Path:
    """Write the rendered target to tmp_path/rendered/<target>.yaml and return that file."""
    overlay, *components = TARGETS[target]
    root = K8S / overlay
    if components:
        # A throwaway kustomization adds the component; kustomize wants relative paths here.
        root = tmp_path / "with-components"
        root.mkdir()
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(K8S / overlay, root)],
            "components": [os.path.relpath(K8S / c, root) for c in components],
        }
        (root / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    result = _run([_venv_tool("kubectl"), "kustomize", root], timeout=120)
    assert result.returncode == 0, f"kubectl kustomize {root} failed:\n{result.stderr}"
    out = tmp_path / "rendered" / f"{target}.yaml"
    out.parent.mkdir()
    out.write_text(result.stdout)
    return out


def kinds(rendered: Path) -> list[str]:
    return [doc["kind"] for doc in yaml.safe_load_all(rendered.read_text()) if doc]


def supported_versions() -> list[str]:
    """Every Kubernetes version from 1.29 whose schemas the installed validator bundles."""
    try:
        utils: Any = importlib.import_module("kubernetes_validate.utils")
    except ImportError:
        missing_tool(f"kubernetes-validate is not installed: {INSTALL_HINT}")
    versions: list[str] = utils.all_versions()
    chosen = [v for v in versions if tuple(int(n) for n in v.split(".")[:2]) >= OLDEST_SUPPORTED]
    assert chosen, f"kubernetes-validate bundles no schema from 1.29 on: {versions}"
    return chosen


def test_the_validator_covers_1_29_through_its_newest_schema() -> None:
    versions = supported_versions()
    assert versions[0].startswith("1.29.")
    assert len(versions) >= 2


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_overlay_renders_to_strictly_valid_kubernetes_for_every_supported_version(
    target: str, tmp_path: Path
) -> None:
    rendered = render(target, tmp_path)
    rendered_kinds = kinds(rendered)
    assert {"Deployment", "Service", "ConfigMap", "ServiceAccount"} <= set(rendered_kinds)
    versions = supported_versions()
    flags = [arg for version in versions for arg in ("-k", version)]
    validator = _venv_tool("kubernetes-validate")
    result = _run([validator, "--strict", *flags, rendered], timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # One INFO line per built-in resource and version proves every document was checked.
    passed = [
        line for line in output.splitlines() if line.startswith("INFO") and " passed " in line
    ]
    built_in = [kind for kind in rendered_kinds if kind not in CUSTOM_KINDS]
    assert len(passed) == len(built_in) * len(versions), output
    warnings = [line for line in output.splitlines() if line.startswith("WARN")]
    assert all(any(kind in line for kind in CUSTOM_KINDS) for line in warnings), warnings


def test_the_validator_rejects_a_misspelt_field(tmp_path: Path) -> None:
    # Guards the test above: without --strict, or with a broken install, this would pass.
    rendered = render("prod", tmp_path)
    broken = tmp_path / "broken.yaml"
    broken.write_text(rendered.read_text().replace("enableServiceLinks", "enableServiceLink"))
    validator = _venv_tool("kubernetes-validate")
    result = _run([validator, "--strict", "--quiet", "-k", supported_versions()[0], broken], 300)
    assert result.returncode != 0
    assert "enableServiceLink" in result.stdout + result.stderr


def _checkov(directory: Path) -> dict[str, Any]:
    if not CHECKOV.is_file():
        missing_tool(f"checkov is not installed at {CHECKOV}: {INSTALL_HINT}")
    argv: list[str | Path] = [CHECKOV, "-d", directory, "--framework", "kubernetes"]
    # No --quiet: it drops the passed and skipped checks from the report, and both are asserted.
    # --skip-download: no calls to the vendor's platform (there is no network here anyway).
    result = _run([*argv, "--skip-download", "-o", "json"], timeout=300)
    # Exit 1 means failed checks; the JSON says which. Anything else is checkov itself failing.
    assert result.returncode in (0, 1), result.stderr
    report: Any = json.loads(result.stdout)
    if isinstance(report, list):  # one entry per framework when several ran
        report = next(r for r in report if r["check_type"] == "kubernetes")
    assert isinstance(report, dict)
    return report


def test_checkov_passes_the_production_overlay_with_every_skip_justified(tmp_path: Path) -> None:
    rendered = render("prod", tmp_path)
    report = _checkov(rendered.parent)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["resource_count"] >= len(kinds(rendered))
    assert summary["passed"] > 0
    for skipped in report["results"]["skipped_checks"]:
        reason = (skipped.get("check_result") or {}).get("suppress_comment", "")
        assert reason.strip(), f"{skipped['check_id']} on {skipped['resource']} skipped silently"


def test_checkov_catches_an_insecure_change(tmp_path: Path) -> None:
    # Guards the test above: the same run must fail once a pod may escalate privileges.
    rendered = render("prod", tmp_path)
    rendered.write_text(
        rendered.read_text().replace(
            "allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"
        )
    )
    failed = {c["check_id"] for c in _checkov(rendered.parent)["results"]["failed_checks"]}
    assert "CKV_K8S_20" in failed


def _referenced_secrets(rendered: Path) -> dict[str, set[str]]:
    """Deployment name -> names of the Secrets its pod volumes read (plain and projected)."""
    found: dict[str, set[str]] = {}
    for doc in yaml.safe_load_all(rendered.read_text()):
        if not doc or doc["kind"] != "Deployment":
            continue
        names = found.setdefault(doc["metadata"]["name"], set())
        for volume in doc["spec"]["template"]["spec"].get("volumes", []):
            if "secret" in volume:
                names.add(volume["secret"]["secretName"])
            for source in volume.get("projected", {}).get("sources", []):
                if "secret" in source:
                    names.add(source["secret"]["name"])
    return found


def test_every_token_secret_a_pod_reads_exists_in_dev_and_is_documented_for_prod(
    tmp_path: Path,
) -> None:
    # Dev: kustomize gave the generated Secrets a hash suffix; every reference, the gateway's
    # projected peer-token volume included, must carry the same one.
    (tmp_path / "dev").mkdir()
    (tmp_path / "prod").mkdir()
    dev = render("dev", tmp_path / "dev")
    generated = {
        doc["metadata"]["name"]
        for doc in yaml.safe_load_all(dev.read_text())
        if doc and doc["kind"] == "Secret"
    }
    referenced = _referenced_secrets(dev)
    assert set().union(*referenced.values()) == generated
    # Each pod reads its own token and, for every peer Compose declares for it, that peer's.
    stack = defined_stack()
    for service in stack.app_names():
        peers = {callee for caller, callee in stack.calls() if caller == service}
        tokens = {name for name in referenced[service] if "-api-token" in name}
        assert len(tokens) == 1 + len(peers), service
    # Prod: the operator makes <name>-api-token for each service, as the README's loop does,
    # and every other Secret a pod reads (a database URL) is named in k8s/README.md.
    prod = _referenced_secrets(render("prod", tmp_path / "prod"))
    every = set().union(*prod.values())
    assert {name for name in every if "-api-token" in name} == {f"{n}-api-token" for n in prod}
    for other in every - {f"{n}-api-token" for n in prod}:
        assert f"`{other}`" in (K8S / "README.md").read_text(), other
    for readme in (REPO / "README.md", K8S / "README.md"):
        text = readme.read_text()
        # The loops list the services the way `new` and `remove` keep them: the base's resources.
        loops = re.findall(r"^for name in \$\((.+)\); do$", text, re.MULTILINE)
        assert loops, readme
        for command in loops:
            listed = subprocess.run(
                ["bash", "-c", command], cwd=REPO, capture_output=True, text=True, check=True
            ).stdout.split()
            assert set(listed) == set(prod), (readme, command)
        assert '"$name-api-token"' in text
