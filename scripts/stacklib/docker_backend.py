"""The Docker backend: the same Compose file under the real ``docker compose``.

Compose does the work (build, networks, start order, health waits, teardown); this module picks
a project name of the checkout's own, supplies a generated dev token when no token file is
configured, turns Compose's failures into one-line errors with the failing service's last log
lines, and checks by label that ``down`` left no container, network or volume. Services that
publish no port are reached from inside their container (``docker compose exec``), with the
image's own Python.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import buildlog, probe
from . import state as st
from .errors import StackError
from .local import container_port
from .model import Compose, Service
from .ui import UI, tail

# The group compose.yaml adds to the services, so that they read group-readable token files.
SECRETS_GID = "SECRETS_GID"

UP_TIMEOUT = 1800.0  # the whole `up`, a cold build included
WAIT_TIMEOUT = 180  # seconds Compose waits for every service to be healthy
PROJECT_LABEL = "com.docker.compose.project"
_PORT_IN_USE = re.compile(
    r"(?:Bind for|listen tcp4?6?) ?(?:[0-9.]+|\[[0-9a-f:]*\])?:(\d+)"
    r"(?: failed)?: (?:port is already allocated|bind: address already in use)"
)
_PULL_FAILED = ("pull access denied", "failed to resolve", "manifest unknown", "no such host")
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
PROBE_SOURCE = Path(probe.__file__).read_text(encoding="utf-8")


def dev_override(repo: Path, compose: Compose) -> str:
    """The Compose override for ``up --docker --watch`` (JSON, which is YAML)."""
    folders = {"service_template"}
    for service in compose.services.values():
        target = (service.command or ("",) * 2)[1] if len(service.command or ()) > 1 else ""
        if ":" in target and (repo / target.split(".", 1)[0].split(":", 1)[0]).is_dir():
            folders.add(target.split(".", 1)[0].split(":", 1)[0])
    watch = [
        {"action": "sync+restart", "path": str(repo / name), "target": f"/app/{name}"}
        for name in sorted(folders)
    ]
    watch.append({"action": "rebuild", "path": str(repo / "pyproject.toml")})
    image = compose.template_image or "service-template:latest"
    dev_image = image.rsplit(":", 1)[0] + ":dev"
    services: dict[str, Any] = {}
    for service in compose.services.values():
        if not compose.runs_template_image(service):
            continue
        services[service.name] = {
            "image": dev_image,
            # Synced files are written into the container: its root filesystem must take them.
            "read_only": False,
            # The dev stage runs as root (see the Dockerfile); a user given here would be used.
            "user": "0",
            "develop": {"watch": watch},
        }
        if service.build:
            services[service.name]["build"] = {"target": "dev"}
    return json.dumps({"services": services}, indent=2) + "\n"


class DockerBackend:
    """Runs Compose commands for one project and reads their results."""

    def __init__(self, paths: st.Paths, ui: UI, environ: Mapping[str, str]) -> None:
        self.paths = paths
        self.ui = ui
        self.environ = environ
        self.docker = shutil.which("docker", path=environ.get("PATH")) or "docker"

    def argv(self, state: st.State, *args: str) -> list[str]:
        profiles = [word for name in state.profiles for word in ("--profile", name)]
        assert state.project is not None
        return [
            self.docker,
            "compose",
            "-f",
            state.compose_file,
            *[word for extra in state.overrides for word in ("-f", extra)],
            "-p",
            state.project,
            *profiles,
            *args,
        ]

    def env(self, state: st.State) -> dict[str, str]:
        return {**self.environ, **state.env}

    def run(
        self, state: st.State, *args: str, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(state, *args),
            env=self.env(state),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    # -- up ----------------------------------------------------------------------------------

    def check_engine(self) -> None:
        """StackError unless the docker CLI, a reachable engine and Compose v2 are all there."""
        if shutil.which(self.docker) is None:
            raise StackError(
                "the docker command is not installed; install Docker with Compose v2, or drop "
                "--docker to run the stack as local processes"
            )
        checks = (
            (["version", "--format", "{{.Server.Version}}"], "no Docker engine is reachable"),
            (["compose", "version", "--short"], "docker compose (v2) is not available"),
        )
        for args, problem in checks:
            try:
                done = subprocess.run(
                    [self.docker, *args], capture_output=True, text=True, timeout=30, check=False
                )
            except subprocess.TimeoutExpired:
                raise StackError(f"{problem} (no answer in 30 s)") from None
            if done.returncode != 0:
                reason = (tail(done.stderr or done.stdout, 1) or ["no output"])[0]
                raise StackError(
                    f"{problem} ({reason.strip()}); start Docker (on Debian: "
                    "scripts/ci/start-docker.sh), or drop --docker to run the stack as local "
                    "processes"
                )

    def prepare(self, state: st.State, compose: Compose) -> None:
        """Choose the project, and give every file secret whose variable is unset a dev file."""
        # The file's own `name:`, so the raw `docker compose -f compose/compose.yaml ...` commands
        # of the docs see (and stop) what stack.py started, and the other way round.
        state.project = compose.project_name or self.paths.project
        for secret in compose.secrets.values():
            if secret.file is not None or secret.problem is None:
                continue
            names = _VARIABLE.findall(secret.file_text or "")
            variable = next(iter(names), None)
            if variable is None:
                raise StackError(f"secret {secret.name}: {secret.problem}")
            self.paths.secrets.mkdir(parents=True, exist_ok=True, mode=0o700)
            path = self.paths.secrets / f"docker-{secret.name}"
            path.write_text(secrets.token_urlsafe(32))
            # Compose bind-mounts the file as it is (owner and mode); the services run as uid
            # 10001 and join SECRETS_GID (compose.yaml), so group read is enough: no world read.
            path.chmod(0o640)
            if not self._configured(SECRETS_GID):
                state.env[SECRETS_GID] = str(os.getgid())
            state.files.append(str(path))
            state.env[variable] = str(path)
            self.ui.say(
                f"{variable} is not set: using a generated dev token ({self.paths.shown(path)})"
            )

    def _configured(self, variable: str) -> bool:
        """Whether the caller's environment or compose/.env sets ``variable`` (then it is the
        user's choice, never overridden)."""
        if variable in self.environ:
            return True
        dotenv = self.paths.compose_file.parent / ".env"
        try:
            lines = dotenv.read_text(encoding="utf-8").splitlines()
        except OSError:
            return False
        return any(line.strip().startswith(f"{variable}=") for line in lines)

    def develop(self, state: st.State, compose: Compose) -> None:
        """Add the development override: the image's ``dev`` target, and Compose's
        ``develop.watch`` syncing the source into /app and restarting on each save."""
        path = self.paths.cache / "compose.dev.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dev_override(self.paths.repo, compose))
        state.overrides.append(str(path))
        state.files.append(str(path))

    def up(self, state: st.State, compose: Compose, limit: float | None) -> None:
        """Build and start the project; StackError naming the failing service if it fails."""
        wait = str(int(limit or WAIT_TIMEOUT))
        argv = self.argv(state, "up", "-d", "--wait", "--build", "--wait-timeout", wait)
        self.ui.say(f"docker compose -p {state.project} up -d --wait --build")
        process = subprocess.Popen(
            argv,
            env=self.env(state),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # A hung build must not hang the orchestrator: the watchdog ends it after UP_TIMEOUT.
        watchdog = threading.Timer(UP_TIMEOUT, process.kill)
        watchdog.start()
        output: list[str] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                output.append(line.rstrip())
                self.ui.detail(line.rstrip())
            status = process.wait()
        finally:
            watchdog.cancel()
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
        if status != 0:
            raise self.diagnose(state, compose, output)

    def diagnose(self, state: st.State, compose: Compose, output: list[str]) -> StackError:
        """The one-line reason `up` failed, with the lines that show it."""
        text = "\n".join(output)
        port_match = _PORT_IN_USE.search(text)
        if port_match:
            port = port_match.group(1)
            owners = [
                (s, p) for s in compose.services.values() for p in s.ports if p.published == port
            ]
            hint = (
                ", or set a free port with "
                + " / ".join(f"{v}=0" for _, p in owners for v in p.variables if "PORT" in v)
                if owners and any(p.variables for _, p in owners)
                else ""
            )
            who = f" ({owners[0][0].name} publishes it)" if owners else ""
            return StackError(f"host port {port} is already in use{who}; stop what uses it{hint}")
        pull = next((line for line in output if any(k in line for k in _PULL_FAILED)), None)
        if pull is not None:
            return StackError(
                f"an image could not be pulled ({pull.strip()[:200]}); without a registry build "
                "the base locally (scripts/make-base-image.sh) and set "
                "BASE_IMAGE=service-template-base:bookworm"
            )
        for row in self.ps(state):
            if row.get("State") != "running" or row.get("Health") not in ("", "healthy", None):
                name = str(row.get("Service"))
                logs = self.run(
                    state, "logs", "--no-color", "--no-log-prefix", "--tail", "20", name
                )
                lines = tail(logs.stdout + logs.stderr)
                how = ", ".join(str(row.get(k)) for k in ("State", "Health") if row.get(k))
                reason = (lines or ["(no output)"])[-1][:300]
                return StackError(
                    f"{name} did not become healthy ({how}): {reason}; fix it and run up --docker "
                    "again",
                    details=[f"last log lines of {name}:", *lines],
                )
        if buildlog.is_build_log(text):
            # A failed image build: the builder's last line quotes the whole RUN in colour.
            reason, made = buildlog.explain(text, "")
            container = buildlog.failed_container(text)
            # Compose keeps the failed step's container, and every finished step left a dangling
            # image (--no-prune: the cached parents stay). The container goes first: it uses one.
            leftovers = [["rm", "-f", container]] if container else []
            leftovers += [["image", "rm", "--no-prune", *made]] if made else []
            for args in leftovers:
                subprocess.run(
                    [self.docker, *args],
                    env=self.env(state),
                    capture_output=True,
                    timeout=120,
                    check=False,
                )
            return StackError(f"building the image failed: {reason}")
        last = (tail(text, 1) or ["no output"])[0]
        # Compose's output is already on the screen above: the message repeats only its end.
        return StackError(f"docker compose up failed: {last[:300]}")

    # -- looking at it -----------------------------------------------------------------------

    def ps(self, state: st.State) -> list[dict[str, Any]]:
        """Compose's view of every container of the project (running or not)."""
        done = self.run(state, "ps", "--all", "--format", "json")
        if done.returncode != 0:
            return []
        text = done.stdout.strip()
        if text.startswith("["):  # older Compose prints one array, newer one object per line
            rows: list[dict[str, Any]] = json.loads(text)
            return rows
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def probe(self, state: st.State, service: Service, discover: bool) -> dict[str, Any]:
        """``probe.probe`` run inside the service's container, on its own port."""
        base = f"http://127.0.0.1:{container_port(service)}"
        args = json.dumps([base, True, discover])
        done = self.run(state, "exec", "-T", service.name, "python", "-c", PROBE_SOURCE, args)
        if done.returncode != 0:
            reason = (tail(done.stderr or done.stdout, 1) or ["no output"])[0]
            return {
                "ready": None,
                "ready_detail": reason,
                "metrics": None,
                "discover": {"error": reason},
            }
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def call(
        self,
        state: st.State,
        service: Service,
        *,
        method: str,
        args: list[str],
        timeout: float,
        token: str | None,
    ) -> int:
        """Run the service CLI's ``call`` inside the container; its output is the user's."""
        env = self.env(state)
        passed: list[str] = []
        if token is not None:
            env["SERVICE_CLIENT_TOKEN"] = token  # passed by name below: never on a command line
            passed = ["-e", "SERVICE_CLIENT_TOKEN"]
        url = f"http://127.0.0.1:{container_port(service)}/api"
        command = ["python", "-m", "service_template", "call", "--timeout", str(timeout)]
        full = self.argv(
            state, "exec", "-T", *passed, service.name, *command, url, method, "--", *args
        )
        return subprocess.run(full, env=env, check=False).returncode

    def logs(self, state: st.State, names: list[str], follow: bool, last: int | None) -> int:
        args = ["logs", "--no-color", *(["--follow"] if follow else [])]
        args += ["--tail", str(last)] if last is not None else []
        return subprocess.run(
            self.argv(state, *args, *names), env=self.env(state), check=False
        ).returncode

    # -- down --------------------------------------------------------------------------------

    def down(self, state: st.State) -> list[str]:
        """``compose down -v``, then remove by label anything still there; a report."""
        report: list[str] = []
        if state.project is None:  # stopped before Compose was asked to make anything
            return report
        done = self.run(
            state, "down", "--volumes", "--remove-orphans", "--timeout", "30", timeout=300
        )
        if done.returncode != 0:
            report.append(f"compose down failed ({(tail(done.stderr, 1) or ['?'])[0]})")
        assert state.project is not None
        for kind, removed in self.remove_leftovers(state.project).items():
            report.append(f"removed leftover {kind}: {', '.join(removed)}")
        return report

    def leftovers(self, project: str) -> dict[str, list[str]]:
        """Containers, networks and volumes still labelled with the project."""
        label = f"label={PROJECT_LABEL}={project}"
        found = {}
        for kind, args in (
            ("containers", ["ps", "--all", "--quiet", "--filter", label]),
            ("networks", ["network", "ls", "--quiet", "--filter", label]),
            ("volumes", ["volume", "ls", "--quiet", "--filter", label]),
        ):
            done = subprocess.run(
                [self.docker, *args], capture_output=True, text=True, timeout=60, check=False
            )
            ids = done.stdout.split() if done.returncode == 0 else []
            if ids:
                found[kind] = ids
        return found

    def remove_leftovers(self, project: str) -> dict[str, list[str]]:
        found = self.leftovers(project)
        commands = {
            "containers": ["rm", "--force", "--volumes"],
            "networks": ["network", "rm"],
            "volumes": ["volume", "rm", "--force"],
        }
        for kind in ("containers", "networks", "volumes"):  # containers hold the others
            if kind in found:
                subprocess.run(
                    [self.docker, *commands[kind], *found[kind]],
                    capture_output=True,
                    timeout=120,
                    check=False,
                )
        return found
