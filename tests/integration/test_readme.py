"""The README's code works as written, in a fresh shell.

Every fenced block of README.md is either run here (``RUN_HERE``; the seams' examples run in
test_readme_seams.py), or named in ``NOT_RUN_HERE`` with the test that covers it and the reason
it cannot run as is (no cluster, no network, a command that stays in the foreground). A block
added to the README without either fails ``test_every_readme_block_is_run_or_accounted_for``,
so the docs cannot drift unnoticed.

"Fresh shell": commands start from a minimal environment (PATH, HOME, LANG), not the test
runner's, so a snippet that only works inside an activated virtual environment fails here as it
would for a reader. The one liberty taken: a port the README writes (8000, 5000) is replaced by
a free one, so the test never collides with a developer's own server.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

README = REPO / "README.md"
VENV_PYTHON = Path(sys.executable)
FRESH_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": os.environ.get("HOME", "/root"),
    "LANG": "C.UTF-8",
}


@dataclass(frozen=True)
class Block:
    language: str
    text: str
    line: int  # where it starts in README.md

    @property
    def first_line(self) -> str:
        return next(line.strip() for line in self.text.splitlines() if line.strip())

    def named(self, key: str) -> bool:
        """The tables below name a block by the start of its first line."""
        return self.first_line.startswith(key)


def blocks() -> list[Block]:
    found = []
    text = README.read_text()
    for match in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.S | re.M):
        found.append(Block(match[1], match[2], text[: match.start()].count("\n") + 1))
    return found


# Blocks not run here, each with the reason and where it is covered instead.
NOT_RUN_HERE = {
    "from collections.abc import Iterator": "kit",
    "python3 scripts/stack.py up --docker --profile db -d": (
        "needs a Docker engine; tests/container/test_notes_service.py runs the profile db under"
        " Compose, tests/integration/test_notes_service.py the service against a real PostgreSQL"
    ),
    "python3 scripts/stack.py up     # run the example stack": (
        "stays in the foreground; tests/integration/test_stack_local.py runs up, Ctrl-C and down,"
        " and .ci/run runs the test command itself"
    ),
    "copier copy --trust https://github.com/": (
        "needs the network; tests/integration/test_generate.py runs copier copy and update on a"
        " local copy of the template"
    ),
    "python3 scripts/stack.py up [-d] [--docker]": (
        "a synopsis of every stack command; tests/integration/test_stack_local.py and"
        " tests/container/test_stack_docker.py run each of them"
    ),
    "cd k8s/overlays/prod": (
        "needs a Kubernetes cluster; tests/integration/test_k8s_render.py and"
        " tests/unit/test_k8s_consistency.py check what it applies"
    ),
    "service_template/": ("the layout of the repository, not a command", ""),
    "python3 scripts/dev.py lock": (
        "resolves against the package index; tests/unit/test_lock.py checks the locks it writes"
    ),
    ".venv/bin/uv pip compile requirements/dev.txt": (
        "resolves against the package index, for other platforms; the README reports its result"
    ),
    "docker pull python:3.11-slim-bookworm": (
        "needs a registry; the container tier builds on the local base image instead"
    ),
    "import dataclasses": (
        "the typed-parameters example; tests/unit/test_contracts.py::"
        "test_the_readme_example_converts_refuses_and_declares_as_it_says runs this block"
    ),
    "import contextlib": (
        "the billing example of the seams; tests/integration/test_seams.py"
        "::test_the_readme_example_serves_its_settings_readiness_and_metrics serves this block",
        "",
    ),
}


def test_every_readme_block_is_run_or_accounted_for() -> None:
    keys = [*NOT_RUN_HERE, *RUN_HERE]
    unknown = [f"line {b.line}: {b.first_line}" for b in blocks() if not any(map(b.named, keys))]
    assert not unknown, f"README blocks neither run nor accounted for: {unknown}"
    stale = [key for key in keys if not any(block.named(key) for block in blocks())]
    assert not stale, f"entries for blocks the README no longer has: {stale}"


# --- the blocks that run ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited before answering"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/livez", timeout=1):
                return
        except OSError:
            time.sleep(0.05)  # polling the health endpoint, not waiting blind
    raise AssertionError(f"nothing answered on port {port} within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def needs_examples(*names: str) -> None:
    """The README's examples call the template's example services: in a project that has
    removed one (`stack.py remove`), that part of the README no longer applies to it."""
    gone = [name for name in names if not (REPO / "services" / f"{name}.py").is_file()]
    if gone:
        pytest.skip(f"the README's example calls services/{gone[0]}.py, which was removed")


@pytest.fixture(scope="module")
def hello_port() -> Iterator[int]:
    """`python3 scripts/dev.py serve hello`, as the README says, on a free port."""
    needs_examples("hello")
    port = free_port()
    process = subprocess.Popen(
        ["python3", "scripts/dev.py", "serve", "hello", "--port", str(port)],
        cwd=REPO,
        env=FRESH_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(port, process)
        yield port
    finally:
        stop(process)


def block_named(key: str) -> Block:
    return next(block for block in blocks() if block.named(key))


def commands_and_answers(text: str) -> list[tuple[str, str]]:
    """(command, the answer the README shows in the ``# ...`` line right after it)."""
    pairs, command = [], []
    for line in text.splitlines():
        if line.startswith("# "):
            pairs.append(("\n".join(command), line[2:]))
            command = []
        elif line.strip():
            command.append(line)
    return pairs


def run_curl_block(block: Block, port: int) -> None:
    pairs = commands_and_answers(block.text.replace(":8000", f":{port}"))
    assert len(pairs) >= 2, "the block shows what each call answers"
    for command, answer in pairs:
        done = subprocess.run(
            ["bash", "-c", command],
            env=FRESH_ENV,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert json.loads(done.stdout) == json.loads(answer), (command, done.stdout)


def printed_as_shown(text: str) -> list[str]:
    """What each ``print(...)  # shown`` line of a snippet prints, as its comment shows it: a
    quoted comment is the value's repr (print shows the str), anything else the text itself."""
    shown = []
    for line in text.splitlines():
        code, _, comment = line.partition("  # ")
        if "print(" in code and comment:
            shown.append(ast.literal_eval(comment) if comment[0] in "\"'" else comment)
    return shown


def run_python_client_block(block: Block, port: int) -> None:
    done = subprocess.run(
        [str(VENV_PYTHON), "-c", block.text.replace(":8000", f":{port}")],
        env=FRESH_ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == printed_as_shown(block.text)


def run_service_block(block: Block, tmp_path: Path) -> None:
    port = free_port()
    source = tmp_path / "hello_world_service.py"
    source.write_text(block.text.replace("port = 5000", f"port = {port}"))
    process = subprocess.Popen(
        [str(VENV_PYTHON), str(source)],
        cwd=tmp_path,
        env=FRESH_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(port, process)
        call = (
            "from service_template import RemoteClient\n"
            f"with RemoteClient('http://127.0.0.1:{port}/api', token='hello_world_token') as c:\n"
            "    print(c.methods.say_hello('world'))\n"
            "    print(c.methods.say_private_hello('world'))\n"
        )
        done = subprocess.run(
            [str(VENV_PYTHON), "-c", call],
            env=FRESH_ENV,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert done.stdout.splitlines() == ["hello world", "this is secret: hello world"]
    finally:
        stop(process)


RUN_HERE = {
    "from collections.abc import Iterator": "kit",
    "curl -s http://127.0.0.1:8000/api -H 'Content-Type: application/json' \\": "curl",
    "from service_template import RemoteClient": "client",
    "from service_template import MicroService, public_method, private_api_method": "service",
    # The seams' examples, each a whole service module: tests/integration/test_readme_seams.py.
    "from service_template import MicroService, current_call, public_method": "context",
    "import hashlib": "authenticate",
    "import logging": "hooks",
    "from service_template import MicroService, Route": "routes",
}


def test_the_curl_calls_answer_what_the_readme_shows(hello_port: int) -> None:
    run_curl_block(block_named(_key_for("curl")), hello_port)


def test_the_python_client_example_prints_what_the_readme_shows(hello_port: int) -> None:
    run_python_client_block(block_named(_key_for("client")), hello_port)


def test_the_service_example_serves_its_methods(tmp_path: Path) -> None:
    run_service_block(block_named(_key_for("service")), tmp_path)


def _key_for(kind: str) -> str:
    return next(key for key, value in RUN_HERE.items() if value == kind)


def block_of(kind: str) -> Block:
    """The README block ``RUN_HERE`` registers as ``kind``, for the tests that run it."""
    return block_named(_key_for(kind))


def test_the_cli_call_in_the_readme_answers(hello_port: int) -> None:
    text = README.read_text()
    command = re.search(r"From the shell: `([^`]+)`", text)
    assert command, "the README shows a CLI call"
    done = subprocess.run(
        ["bash", "-c", command[1].replace(":8000", f":{hello_port}")],
        cwd=REPO,
        env=FRESH_ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout) == "hello world"


def test_the_test_kit_example_passes_in_a_project_with_a_billing_service(tmp_path: Path) -> None:
    # The example is written for the service `stack.py new billing` makes: make it, then run
    # the README's test module there with pytest, as its reader would.
    from tests.scratch_copies import copy_worktree

    needs_examples("hello", "gateway")
    repo = copy_worktree(tmp_path / "repo")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    if not (repo / "services" / "billing.py").is_file():  # a project may have made it already
        made = subprocess.run(
            [str(VENV_PYTHON), "scripts/stack.py", "new", "billing"],
            cwd=repo,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert made.returncode == 0, made.stderr
    (repo / "tests" / "test_readme_kit.py").write_text(block_named(_key_for("kit")).text)
    done = subprocess.run(
        [
            str(VENV_PYTHON),
            "-m",
            "pytest",
            "tests/test_readme_kit.py",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=repo,
        env={**FRESH_ENV, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
