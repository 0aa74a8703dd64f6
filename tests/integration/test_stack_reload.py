"""An attached local ``stack.py up`` reloads a service when its code changes, on the same port,
and keeps the old process serving when the new code does not import; ``stack.py attach`` runs
one service in the foreground (``breakpoint()`` works) while the rest keeps running; a second
``up`` refuses, or replaces with ``--replace``, and a mistake in it never touches the running
stack. All on a copy of the repository with a stack of two services in modules of their own.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_stack_local import (
    Attached,
    assert_nothing_left,
    environment,
    live_processes_in,
    recorded_groups,
    stack,
    state_of,
)
from tests.scratch_copies import copy_worktree

pytestmark = pytest.mark.integration

COMPOSE = """\
name: reload-demo
x-service: &service
  build:
    context: ..
  image: reload-demo:dev
  secrets: [api_token]
  environment:
    SERVICE_API_TOKEN_FILE: /run/secrets/api_token
services:
  alpha:
    <<: *service
    command: ["serve", "demo.alpha:AlphaService"]
  beta:
    <<: *service
    command: ["serve", "demo.beta:BetaService"]
secrets:
  api_token:
    file: ${API_TOKEN_FILE:?set API_TOKEN_FILE}
"""

MODULE = """\
from service_template import MicroService, public_method


class {cls}(MicroService):
    name = "{name}"

    @public_method
    async def version(self) -> str:
        return "{answer}"
"""


def write_module(repo: Path, name: str, answer: str, body: str | None = None) -> Path:
    path = repo / "demo" / f"{name}.py"
    text = body or MODULE.format(cls=name.title() + "Service", name=name, answer=answer)
    path.write_text(text)
    return path


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Path]:
    """A repository copy whose stack is alpha and beta, each in its own module; whatever a test
    leaves running is stopped afterwards."""
    template_repo = copy_worktree(tmp_path / "repo").resolve()
    (template_repo / "demo").mkdir()
    (template_repo / "demo" / "__init__.py").write_text("")
    write_module(template_repo, "alpha", "alpha 1")
    write_module(template_repo, "beta", "beta 1")
    (template_repo / "compose" / "compose.yaml").write_text(COMPOSE)
    yield template_repo
    stack(template_repo, "down")
    for pid in live_processes_in(template_repo):
        os.kill(pid, signal.SIGKILL)


def call(url: str, method: str, timeout: float = 5.0) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        reply = json.loads(answer.read())
    return reply.get("result", reply.get("error"))


def answer_or_none(url: str, method: str) -> object:
    try:
        return call(url, method, timeout=2.0)
    except OSError:
        return None  # between two processes


def url_of(repo: Path, name: str) -> str:
    services = state_of(repo)["services"]
    assert isinstance(services, dict)
    return str(services[name]["url"])


def pid_of(repo: Path, name: str) -> int:
    services = state_of(repo)["services"]
    assert isinstance(services, dict)
    return int(services[name]["pid"])


def up_attached(repo: Path, *args: str) -> Attached:
    from tests.integration import test_stack_local

    process = subprocess.Popen(
        [sys.executable, str(repo / "scripts" / "stack.py"), "up", *args],
        cwd=repo,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    attached = test_stack_local.Attached(process)

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            attached._queue.put(line)

    import threading

    threading.Thread(target=read, daemon=True).start()
    return attached


def wait_for_answer(url: str, expected: str, limit: float = 30.0) -> float:
    """Poll until the call answers ``expected``; the seconds it took (AssertionError after
    ``limit``)."""
    started = time.monotonic()
    last: object = None
    while time.monotonic() - started < limit:
        last = answer_or_none(url, "version")
        if last == expected:
            return time.monotonic() - started
        time.sleep(0.01)
    raise AssertionError(f"still {last!r} after {limit} s, expected {expected!r}")


# --- reload -------------------------------------------------------------------------------------


def test_a_saved_change_reloads_only_its_service_on_the_same_port(demo: Path) -> None:
    attached = up_attached(demo)
    attached.wait_for("reloading services when their code changes")
    alpha, beta = url_of(demo, "alpha"), url_of(demo, "beta")
    assert call(alpha, "version") == "alpha 1"
    beta_pid = pid_of(demo, "beta")

    timings = []
    for round_ in (2, 3):
        write_module(demo, "alpha", f"alpha {round_}")
        timings.append(wait_for_answer(alpha, f"alpha {round_}"))
    print(f"\nlocal reload, save to new answer: {', '.join(f'{t:.2f} s' for t in timings)}")
    assert url_of(demo, "alpha") == alpha, "the port moved"
    assert pid_of(demo, "beta") == beta_pid, "beta was restarted for a change in alpha"
    assert call(beta, "version") == "beta 1"
    # Generous for a shared machine; the figure itself is printed above.
    assert min(timings) < 5.0
    for _ in timings:  # both reloads are recorded
        attached.wait_for("alpha reloaded on port")

    # A syntax error: the old process serves on, and the error names the file and line.
    alpha_pid = pid_of(demo, "alpha")
    broken = write_module(demo, "alpha", "", body="def broken(:\n    pass\n")
    attached.wait_for(f"{broken}:1: SyntaxError", timeout=30)
    assert call(alpha, "version") == "alpha 3"
    assert pid_of(demo, "alpha") == alpha_pid

    # An import-time failure likewise, with its line.
    write_module(demo, "alpha", "", body="import os\n\nraise RuntimeError('boom')\n")
    attached.wait_for(f"{broken}:3: RuntimeError: boom", timeout=30)
    assert call(alpha, "version") == "alpha 3"

    # Fixed again: reloaded.
    write_module(demo, "alpha", "alpha 4")
    wait_for_answer(alpha, "alpha 4")

    groups = recorded_groups(demo)
    attached.process.send_signal(signal.SIGINT)
    status, output = attached.rest()
    print("\n".join(line for line in output.splitlines() if " reloaded on port " in line))
    assert status == 0, output
    assert_nothing_left(demo, groups)


def test_a_change_to_the_runtime_reloads_every_service(demo: Path) -> None:
    attached = up_attached(demo)
    attached.wait_for("reloading services when their code changes")
    pids = {name: pid_of(demo, name) for name in ("alpha", "beta")}
    runtime = demo / "service_template" / "__init__.py"
    runtime.write_text(runtime.read_text() + "\n# touched\n")
    attached.wait_for("alpha, beta", timeout=30)
    attached.wait_for("beta reloaded on port", timeout=60)
    assert all(pid_of(demo, name) != pid for name, pid in pids.items())
    assert call(url_of(demo, "beta"), "version") == "beta 1"
    attached.process.send_signal(signal.SIGINT)
    assert attached.rest()[0] == 0


def test_a_broken_serving_module_is_caught_before_the_old_process_stops(demo: Path) -> None:
    # The HTTP server is imported only when a service starts serving, not by the service's
    # module: the standby process imports it too before it says ready, so a broken save there
    # leaves the running processes serving instead of replacing them with ones that crash.
    attached = up_attached(demo)
    attached.wait_for("reloading services when their code changes")
    pids = {name: pid_of(demo, name) for name in ("alpha", "beta")}
    server = demo / "service_template" / "http" / "server.py"
    lines = server.read_text().count("\n")
    server.write_text(server.read_text() + "def broken(:\n    pass\n")
    attached.wait_for(f"{server}:{lines + 1}: SyntaxError", timeout=60)
    attached.wait_for("beta not reloaded, the running process serves on", timeout=60)
    assert {name: pid_of(demo, name) for name in ("alpha", "beta")} == pids
    assert call(url_of(demo, "alpha"), "version") == "alpha 1"
    assert call(url_of(demo, "beta"), "version") == "beta 1"
    attached.process.send_signal(signal.SIGINT)
    assert attached.rest()[0] == 0


def test_a_detached_up_does_not_reload(demo: Path) -> None:
    up = stack(demo, "up", "-d")
    assert up.returncode == 0, up.stderr
    assert "reloading" not in up.stderr
    assert stack(demo, "down").returncode == 0


# --- a second up --------------------------------------------------------------------------------


def test_a_second_up_refuses_and_a_mistake_never_touches_the_running_stack(demo: Path) -> None:
    assert stack(demo, "up", "-d").returncode == 0
    before = recorded_groups(demo)
    alpha = url_of(demo, "alpha")

    again = stack(demo, "up", "-d")
    assert again.returncode == 1
    errors = [line for line in again.stderr.splitlines() if line.startswith("stack: error:")]
    assert errors == [errors[0]] and "already running" in errors[0] and "--replace" in errors[0], (
        again.stderr
    )

    bad_option = stack(demo, "up", "-d", "--no-such-option")
    assert bad_option.returncode == 2
    compose = demo / "compose" / "compose.yaml"
    good = compose.read_text()
    compose.write_text(good + "  oops: [\n")
    broken = stack(demo, "up", "-d", "--replace")
    assert broken.returncode != 0
    compose.write_text(good)
    assert recorded_groups(demo) == before
    assert call(alpha, "version") == "alpha 1"

    replaced = stack(demo, "up", "-d", "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert "running in the background (--replace)" in replaced.stderr
    assert recorded_groups(demo).isdisjoint(before)
    after = recorded_groups(demo)
    assert stack(demo, "down").returncode == 0
    assert_nothing_left(demo, before | after)


# --- attach -------------------------------------------------------------------------------------


class Terminal:
    """A command run on a pseudo-terminal, as a user at a shell runs it."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        self.process = subprocess.Popen(
            # A session of its own whose controlling terminal is this one, as a shell's would
            # be: Ctrl-C typed here reaches the command's foreground process group.
            ["setsid", "--ctty", *argv],
            cwd=cwd,
            env=environment(),
            stdin=slave,
            stdout=slave,
            stderr=slave,
        )
        os.close(slave)
        self.seen = ""

    def expect(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no {text!r} in {timeout} s; the terminal shows:\n{self.seen}"
                )
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if ready:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the command closed the terminal
                    raise AssertionError(f"terminal closed before {text!r}:\n{self.seen}") from None

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> int:
        status = self.process.wait(timeout=60)
        os.close(self.master)
        return status


def test_a_breakpoint_in_a_background_service_is_skipped_with_where_and_how_to_stop(
    demo: Path,
) -> None:
    # Without a terminal pdb would quit at once by raising inside the method (-32603).
    body = MODULE.format(cls="AlphaService", name="alpha", answer="alpha 1").replace(
        '        return "alpha 1"', '        breakpoint()\n        return "alpha 1"'
    )
    module = write_module(demo, "alpha", "", body=body)
    assert stack(demo, "up", "-d").returncode == 0
    assert call(url_of(demo, "alpha"), "version") == "alpha 1"
    logs = stack(demo, "logs", "alpha").stdout
    assert f"breakpoint() at {module}:9 skipped: stdin is not a terminal" in logs, logs
    assert "stack.py attach SERVICE" in logs
    assert stack(demo, "down").returncode == 0


def test_attach_runs_one_service_in_the_foreground_where_breakpoint_works(demo: Path) -> None:
    assert stack(demo, "up", "-d").returncode == 0
    beta_pid = pid_of(demo, "beta")
    alpha = url_of(demo, "alpha")
    write_module(
        demo,
        "alpha",
        "",
        body=MODULE.format(cls="AlphaService", name="alpha", answer="alpha 1").replace(
            '        return "alpha 1"',
            '        answer = "alpha 1"\n        breakpoint()\n        return answer',
        ),
    )
    terminal = Terminal(
        [sys.executable, str(demo / "scripts" / "stack.py"), "attach", "alpha"], demo
    )
    try:
        terminal.expect("Ctrl-C ends it")
        assert url_of(demo, "alpha") == alpha
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(call, alpha, "version", 60.0)
            terminal.expect("(Pdb)")
            terminal.send("p answer\n")
            terminal.expect("'alpha 1'")
            terminal.send("c\n")
            assert pending.result(timeout=30) == "alpha 1"
        assert pid_of(demo, "beta") == beta_pid
        assert call(url_of(demo, "beta"), "version") == "beta 1"
        terminal.send("\x03")  # Ctrl-C at the terminal ends the foreground service...
        terminal.expect("Program interrupted")  # ...once pdb, which took the Ctrl-C, goes on
        terminal.send("c\n")
        terminal.expect("alpha is back in the background at")
        assert terminal.close() == 0
    finally:
        if terminal.process.poll() is None:
            terminal.process.kill()
    # The background process answers again, on the same port (the breakpoint is still in the
    # code, so only readiness is asked).
    with urllib.request.urlopen(alpha.removesuffix("/api") + "/readyz", timeout=5) as ready:
        assert ready.status == 200
    assert not state_of(demo)["services"]["alpha"]["attached"]  # type: ignore[index]
    groups = recorded_groups(demo)
    assert stack(demo, "down").returncode == 0
    assert_nothing_left(demo, groups)
