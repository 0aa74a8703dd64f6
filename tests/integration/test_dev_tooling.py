"""The pre-commit hooks and the Renovate configuration a generated project inherits."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, missing_tool

pytestmark = pytest.mark.integration
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def hooks() -> dict[str, dict[str, object]]:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    return {hook["id"]: hook for repo in config["repos"] for hook in repo["hooks"]}


def test_the_commit_hook_runs_the_projects_own_lint_command() -> None:
    lint = hooks()["lint"]
    assert lint["entry"] == "python3 scripts/dev.py lint"
    assert lint["pass_filenames"] is False
    # ... and that command is ruff check, ruff format --check and mypy, as CI runs them.
    source = (REPO / "scripts" / "dev.py").read_text()
    lint_function = next(
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef) and node.name == "lint"
    )
    text = ast.unparse(lint_function)
    for command in ('"check", "."', '"format", "--check", "."', "'mypy'"):
        assert command.replace("'", '"') in text.replace("'", '"'), command


def test_every_hook_runs_offline_from_the_project_environment() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    assert set(hooks()) == {"lint", "yamllint", "hadolint", "shellcheck"}


def test_pre_commit_accepts_the_config_and_its_hooks_pass(tmp_path: Path) -> None:
    if not PRE_COMMIT.exists():
        missing_tool("pre-commit is not installed: python3 scripts/dev.py bootstrap")
    if subprocess.run(["git", "-C", str(REPO), "rev-parse"], check=False).returncode != 0:
        pytest.fail("pre-commit needs a git checkout of the project", pytrace=False)
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path), "SKIP": "lint"}  # lint: CI runs it
    for argv in (["validate-config"], ["run", "--all-files", "--color", "never"]):
        done = subprocess.run(
            [str(PRE_COMMIT), *argv],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"yamllint --strict\.+Passed", done.stdout), done.stdout
    assert re.search(r"shellcheck\.+Passed", done.stdout), done.stdout


def test_renovate_watches_every_kind_of_dependency_the_project_pins() -> None:
    config = json.loads((REPO / "renovate.json").read_text())
    assert {"pep621", "dockerfile", "github-actions", "npm", "custom.regex"} <= set(
        config["enabledManagers"]
    )
    patterns = [
        pattern
        for manager in config["customManagers"]
        for pattern in manager["managerFilePatterns"]
    ]
    # The Compose images are given as ${VAR:-image:tag}: the regex manager must see them.
    compose_rule = config["customManagers"][0]
    # Renovate writes JavaScript named groups, (?<name>...); Python spells them (?P<name>...).
    regex = re.compile(compose_rule["matchStrings"][0].replace("(?<", "(?P<"))
    compose = (REPO / "compose" / "compose.yaml").read_text()
    found = {(m["depName"], m["currentValue"]) for m in regex.finditer(compose)}
    assert any(name.endswith("prometheus") for name, _ in found), found
    assert any("compose" in pattern for pattern in patterns)


NODE_BIN = REPO / ".cache" / "node-tools" / "node_modules" / ".bin"
RENOVATE_VALIDATOR = NODE_BIN / "renovate-config-validator"


def validate_renovate(config: Path) -> subprocess.CompletedProcess[str]:
    """Renovate's own validator, offline, on a repository config (``--strict``: also warnings)."""
    if not RENOVATE_VALIDATOR.is_file():
        missing_tool("renovate-config-validator is needed: bash scripts/ci/node-tools.sh")
    return subprocess.run(
        [str(RENOVATE_VALIDATOR), "--strict", "--no-global", config.name],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_renovates_own_validator_accepts_the_configuration() -> None:
    done = validate_renovate(REPO / "renovate.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Config validated successfully" in done.stdout + done.stderr


def test_renovates_validator_catches_a_misspelt_option(tmp_path: Path) -> None:
    # The check above is only worth something if the validator really reads the file.
    config = json.loads((REPO / "renovate.json").read_text())
    config["packageRules"][0]["matchManagerz"] = config["packageRules"][0].pop("matchManagers")
    (tmp_path / "renovate.json").write_text(json.dumps(config))
    done = validate_renovate(tmp_path / "renovate.json")
    assert done.returncode != 0
    assert "Invalid configuration option: packageRules[0].matchManagerz" in done.stdout
