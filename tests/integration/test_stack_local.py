"""``scripts/stack.py`` end to end with the local backend, on a copy of the repository: the stack
comes up, answers calls, reports its state, and ``down``, Ctrl-C or the next command after a
crash leave no process behind. Faults give one line naming the problem and start nothing.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import fresh_name
from tests.scratch_copies import copy_worktree

pytestmark = pytest.mark.integration

PROC = Path("/proc")
# The tests' own stack (tests/stackfixture): the orchestrator is tested on it, so these tests
# pass whatever services the project itself has.
FIXTURE = Path(__file__).resolve().parents[1] / "stackfixture" / "compose.yaml"
FIXTURE_SERVICES = ["greeter", "adder", "front"]
DEMO = fresh_name("demo")  # a name the project does not use yet


def environment(repo: Path | None = None) -> dict[str, str]:
    # The caller's SERVICE_* settings must not reach the stack (it would reject unknown ones).
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    if repo is not None:
        # The copy's own packages first, even when this suite itself runs in a copy (whose
        # PYTHONPATH names that copy: tests/integration/test_template_survives.py).
        env["PYTHONPATH"] = str(repo)
    return env


def stack(
    repo: Path, *args: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(repo / "scripts" / "stack.py"), *args],
        cwd=repo,
        env={**environment(repo), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def state_of(repo: Path) -> dict[str, object]:
    result: dict[str, object] = json.loads((repo / ".cache" / "stack" / "state.json").read_text())
    return result


def _stat(pid: str) -> list[str] | None:
    try:
        text = (PROC / pid / "stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def live_processes_in(repo: Path) -> list[int]:
    """Processes (zombies aside) whose working directory is the repository copy."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        fields = _stat(entry.name)
        if cwd == repo and fields is not None and fields[0] not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def live_members(pgids: set[int]) -> list[int]:
    members = []
    for entry in PROC.iterdir():
        fields = _stat(entry.name) if entry.name.isdigit() else None
        if fields and int(fields[2]) in pgids and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def recorded_groups(repo: Path) -> set[int]:
    services = state_of(repo)["services"]
    assert isinstance(services, dict)
    return {int(record["pgid"]) for record in services.values()}


def assert_nothing_left(repo: Path, groups: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    assert live_members(set(groups)) == []
    assert live_processes_in(repo) == []
    assert not (repo / ".cache" / "stack" / "state.json").exists()
    secrets = repo / ".cache" / "stack" / "secrets"
    assert not secrets.exists() or list(secrets.iterdir()) == []


@pytest.fixture
def template_repo(tmp_path: Path) -> Iterator[Path]:
    """A copy of the repository; whatever a test leaves running is stopped afterwards."""
    copy = copy_worktree(tmp_path / "repo").resolve()
    yield copy
    stack(copy, "down")
    for pid in live_processes_in(copy):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def repo(template_repo: Path) -> Path:
    """A copy of the repository whose stack is the tests' own (tests/stackfixture)."""
    shutil.copyfile(FIXTURE, template_repo / "compose" / "compose.yaml")
    return template_repo


def edit_compose(repo: Path, old: str, new: str) -> None:
    path = repo / "compose" / "compose.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


@dataclass
class Attached:
    """``stack.py up`` running in the foreground, its stderr read line by line."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str] = field(default_factory=queue.Queue)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self.lines.append(self._queue.get(timeout=0.1))
            except queue.Empty:
                continue
            if text in self.lines[-1]:
                return
        raise AssertionError(f"no line with {text!r} in {timeout} s:\n" + "".join(self.lines))

    def rest(self, timeout: float = 60) -> tuple[int, str]:
        status = self.process.wait(timeout)
        assert self.process.stderr is not None
        self.process.stderr.close()
        assert self.process.stdout is not None
        self.process.stdout.close()
        while not self._queue.empty():
            self.lines.append(self._queue.get())
        return status, "".join(self.lines)


def attach(repo: Path) -> Attached:
    process = subprocess.Popen(
        [sys.executable, str(repo / "scripts" / "stack.py"), "up"],
        cwd=repo,
        env=environment(repo),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    attached = Attached(process)

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            attached._queue.put(line)

    threading.Thread(target=read, daemon=True).start()
    return attached


# --- the whole life of a stack ------------------------------------------------------------------


def test_up_call_status_smoke_logs_then_down_leaves_no_process(repo: Path) -> None:
    up = stack(repo, "up", "-d")
    assert up.returncode == 0, up.stderr
    table = up.stdout.splitlines()
    assert table[0].split() == ["SERVICE", "URL", "STATE", "READINESS"]
    for name in FIXTURE_SERVICES:
        row = next(line.split() for line in table if line.startswith(name + " "))
        assert row[1].startswith("http://127.0.0.1:") and row[2:] == ["running", "ready"]
    assert "prometheus  -" in up.stdout and "skipped" in up.stdout
    assert "stack: greeter ready at http://127.0.0.1:" in up.stderr
    groups = recorded_groups(repo)
    assert len(groups) == len(FIXTURE_SERVICES) and live_members(groups)

    called = stack(repo, "call", "front", "greet_and_add", "you", "2", "3")
    assert called.returncode == 0, called.stderr
    assert json.loads(called.stdout) == {"greeting": "hello you", "sum": 5}
    # The stack's own token is used, so private methods work too.
    private = stack(repo, "call", "greeter", "say_private_hello", "name=x")
    assert json.loads(private.stdout) == "this is secret: hello x"
    denied = stack(repo, "call", "--token", "wrong", "greeter", "say_private_hello", "x")
    assert denied.returncode == 1 and "Access denied" in denied.stderr

    status = stack(repo, "status")
    assert status.returncode == 0, status.stderr
    rows = {line.split()[0]: line.split() for line in status.stdout.splitlines()[1:]}
    # greeter served the front's greeting, its own private call and the refused one.
    assert rows["greeter"][2:7] == ["running", "ready", "3", "1", "0"]
    assert rows["adder"][4] == "1"

    smoke = stack(repo, "smoke")
    assert smoke.returncode == 0, smoke.stderr
    assert "PASS front: ready, rpc.discover -> front (1 public methods)" in smoke.stdout
    assert "SKIP prometheus" in smoke.stdout

    logs = stack(repo, "logs", "greeter", "adder")
    assert logs.returncode == 0
    prefixes = {line.split(" | ")[0].strip() for line in logs.stdout.splitlines()}
    assert prefixes == {"greeter", "adder"}
    assert '"method":"say_private_hello"' in logs.stdout

    down = stack(repo, "down")
    assert down.returncode == 0, down.stderr
    assert "front: stopped" in down.stderr
    assert_nothing_left(repo, groups)
    assert "no stack is running" in stack(repo, "down").stderr


def test_a_token_starting_with_a_dash_reaches_the_service(repo: Path) -> None:
    # secrets.token_urlsafe, which makes the stack's tokens, starts one in 64 with '-'.
    try:
        up = stack(repo, "up", "-d")
        assert up.returncode == 0, up.stderr
        dashed = "-" + "x" * 40
        called = stack(repo, "call", f"--token={dashed}", "greeter", "say_private_hello", "x")
        # The service read it and refused it (it is not the stack's): not a usage error.
        assert called.returncode == 1 and "Access denied" in called.stderr, called.stderr
    finally:
        assert stack(repo, "down").returncode == 0


def test_ctrl_c_on_an_attached_up_stops_every_service(repo: Path) -> None:
    attached = attach(repo)
    attached.wait_for("Ctrl-C stops the stack")
    groups = recorded_groups(repo)
    assert live_members(groups)
    attached.process.send_signal(signal.SIGINT)
    status, output = attached.rest()
    assert status == 0, output
    assert "stopping the stack (Ctrl-C)" in output
    assert_nothing_left(repo, groups)


def test_a_down_elsewhere_ends_an_attached_up(repo: Path) -> None:
    attached = attach(repo)
    attached.wait_for("Ctrl-C stops the stack")
    groups = recorded_groups(repo)
    assert stack(repo, "down").returncode == 0
    status, output = attached.rest()
    assert status == 0 and "stopped by `python3 scripts/stack.py down`" in output
    assert_nothing_left(repo, groups)


def test_a_second_up_is_refused_while_an_attached_one_runs(repo: Path) -> None:
    attached = attach(repo)
    attached.wait_for("Ctrl-C stops the stack")
    second = stack(repo, "up", "-d")
    assert second.returncode == 1
    assert f"attached to `stack.py up` (pid {attached.process.pid})" in second.stderr
    attached.process.send_signal(signal.SIGINT)
    assert attached.rest()[0] == 0


def test_after_the_orchestrator_is_killed_the_next_down_stops_what_it_left(repo: Path) -> None:
    attached = attach(repo)
    attached.wait_for("Ctrl-C stops the stack")
    groups = recorded_groups(repo)
    attached.process.kill()
    attached.rest()
    assert live_members(groups), "the services outlive a killed orchestrator"
    down = stack(repo, "down")
    assert down.returncode == 0, down.stderr
    assert_nothing_left(repo, groups)


def test_after_the_orchestrator_is_killed_the_next_up_replaces_what_it_left(repo: Path) -> None:
    attached = attach(repo)
    attached.wait_for("Ctrl-C stops the stack")
    old = recorded_groups(repo)
    attached.process.kill()
    attached.rest()
    up = stack(repo, "up", "-d")
    assert up.returncode == 0, up.stderr
    assert "stopping the local stack left behind by an orchestrator that is gone" in up.stderr
    assert live_members(old) == []
    new = recorded_groups(repo)
    assert stack(repo, "down").returncode == 0
    assert_nothing_left(repo, new)


# --- faults -------------------------------------------------------------------------------------


def test_a_service_that_crashes_on_start_fails_up_with_its_log_and_stops_the_rest(
    repo: Path,
) -> None:
    edit_compose(repo, "services:AdderService", "services:NoSuchService")
    up = stack(repo, "up", "-d")
    assert up.returncode == 1
    error = next(line for line in up.stderr.splitlines() if line.startswith("stack: error:"))
    assert error.startswith("stack: error: adder exited with status 2 while starting: error:")
    assert "'NoSuchService'" in error and "fix it and run up again" in error
    assert "  | last lines of .cache/stack/logs/adder.log:" in up.stderr
    assert "greeter: stopped" in up.stderr  # started in the same layer, stopped again
    assert_nothing_left(repo)


def test_a_service_that_never_becomes_ready_fails_up_after_the_timeout(repo: Path) -> None:
    # The front is ready only when its peers are; this greeter is a closed port.
    edit_compose(repo, "greeter=http://greeter:8000/api", "greeter=http://127.0.0.1:9/api")
    up = stack(repo, "up", "-d", "--timeout", "2")
    assert up.returncode == 1
    assert "stack: error: front was not ready within 2 s (last /readyz: HTTP 503)" in up.stderr
    assert_nothing_left(repo)


def test_a_port_in_use_is_refused_before_anything_starts(repo: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = stack(repo, "up", "-d", "--port", f"front={port}")
    assert up.returncode == 1
    assert up.stderr.splitlines()[-1] == (
        f"stack: error: port {port} for front is in use on 127.0.0.1; stop what listens "
        f"there, or pick another with --port front=PORT (or leave it out for a free one)"
    )
    assert "starting" not in up.stderr
    assert_nothing_left(repo)


def test_a_pinned_port_is_used(repo: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    up = stack(repo, "up", "-d", "--port", f"greeter={port}")
    assert up.returncode == 0, up.stderr
    assert f"http://127.0.0.1:{port}/api  running" in up.stdout


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        # Compose's own words: it is the one reader of the file.
        (
            "    pull_policy: never\n",
            "    pull_policy: [never\n",
            "compose.yaml: go-yaml load error",
        ),
        (
            "      adder:\n        condition: service_healthy",
            "      adders:\n        condition: service_healthy",
            'service "front" depends on undefined service "adders"',
        ),
        (
            '    command: ["serve", "tests.stackfixture.services:GreeterService"]',
            '    command: ["serve", "tests.stackfixture.services:GreeterService"]\n'
            "    depends_on: [front]",
            "dependency cycle detected: ",
        ),
    ],
)
def test_a_broken_compose_file_is_a_one_line_error_and_starts_nothing(
    repo: Path, old: str, new: str, expected: str
) -> None:
    edit_compose(repo, old, new)
    up = stack(repo, "up", "-d")
    assert up.returncode == 1
    assert len(up.stderr.splitlines()) == 1, up.stderr
    assert expected in up.stderr
    assert_nothing_left(repo)


def test_unknown_service_names_are_one_line_errors_with_a_suggestion(repo: Path) -> None:
    assert stack(repo, "up", "-d").returncode == 0
    for args in (("call", "gretter", "say_hello", "x"), ("logs", "gretter")):
        result = stack(repo, *args)
        assert result.returncode == 2
        assert result.stderr == (
            "stack: error: no service named 'gretter' in the stack (services: adder, front, "
            "greeter"
            + (", prometheus" if args[0] == "call" else "")
            + "); did you mean 'greeter'?\n"
        )
    skipped = stack(repo, "call", "prometheus", "x")
    assert skipped.returncode == 2
    assert "prometheus is not running: profile metrics not enabled" in skipped.stderr


def test_commands_without_a_running_stack_say_how_to_start_one(repo: Path) -> None:
    for command in ("status", "smoke", "call"):
        args = (command, "greeter", "say_hello") if command == "call" else (command,)
        result = stack(repo, *args)
        assert result.returncode == 1
        assert result.stderr == (
            "stack: error: no stack is running; start it with `python3 scripts/stack.py up`\n"
        )


def test_up_docker_without_an_engine_is_a_one_line_error_and_leaves_nothing(repo: Path) -> None:
    up = stack(repo, "up", "--docker", "-d", DOCKER_HOST=f"unix://{repo}/no-engine.sock")
    assert up.returncode == 1
    lines = up.stderr.splitlines()
    assert len(lines) == 1, up.stderr
    assert lines[0].startswith("stack: error: ")
    assert "or drop --docker to run the stack as local processes" in lines[0]
    assert not (repo / ".cache" / "stack" / "state.json").exists()


# --- a new service, from scaffold to a running stack --------------------------------------------


def test_new_then_its_own_tests_then_up_runs_it(template_repo: Path) -> None:
    repo = template_repo
    new = stack(repo, "new", DEMO)
    assert new.returncode == 0, new.stderr
    tests = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            f"tests/unit/test_{DEMO}_service.py",
            f"tests/integration/test_{DEMO}_service.py",
            "tests/unit/test_k8s_consistency.py",
        ],
        cwd=repo,
        env=environment(repo),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert " passed" in tests.stdout and "failed" not in tests.stdout

    up = stack(repo, "up", "-d")
    assert up.returncode == 0, up.stderr
    assert any(line.split()[:1] == [DEMO] and "ready" in line for line in up.stdout.splitlines())
    greeting = stack(repo, "call", DEMO, "greet", "world")
    assert greeting.returncode == 0, greeting.stderr + stack(repo, "logs", DEMO).stdout
    assert json.loads(greeting.stdout) == f"hello world, this is {DEMO}"
    private = stack(repo, "call", DEMO, "private_greet", "world")
    assert private.returncode == 0, private.stderr + stack(repo, "logs", DEMO).stdout
    assert json.loads(private.stdout) == f"hello world, this is {DEMO}, privately"
    smoke = stack(repo, "smoke")
    assert f"PASS {DEMO}: ready, rpc.discover -> {DEMO} (1 public methods)" in smoke.stdout
    groups = recorded_groups(repo)
    assert stack(repo, "down").returncode == 0
    assert_nothing_left(repo, groups)


def test_a_profile_whose_service_needs_a_third_party_image_is_refused_in_one_line(
    repo: Path,
) -> None:
    # As the template's profile "db": a service of the project that waits for a database image.
    edit_compose(
        repo,
        "\nsecrets:\n",
        "\n  keeper:\n    <<: *service\n    profiles: [db]\n    pull_policy: never\n"
        '    command: ["serve", "tests.stackfixture.services:AdderService"]\n'
        "    environment:\n      <<: *environment\n"
        "    depends_on:\n      database:\n        condition: service_healthy\n"
        "\n  database:\n    profiles: [db]\n    image: postgres:15-bookworm\n"
        "\nsecrets:\n",
    )
    started = time.monotonic()
    refused = stack(repo, "up", "-d", "--profile", "db")
    assert refused.returncode == 1
    assert refused.stderr == (
        "stack: error: keeper needs database, which does not run as a local process "
        "(third-party image postgres:15-bookworm; runs with --docker): use `stack.py up "
        "--docker --profile db` or leave the profile off\n"
    )
    assert time.monotonic() - started < 30, "refused at once, not after waiting for it"
    assert_nothing_left(repo)
    # Without the profile the rest of the stack runs as before.
    up = stack(repo, "up", "-d")
    assert up.returncode == 0, up.stderr
    assert "keeper" in up.stdout and "profile db not enabled" in up.stdout
