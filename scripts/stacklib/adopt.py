"""A stack the raw Compose commands started, seen by stack.py.

compose/README.md documents raw ``docker compose -f compose/compose.yaml ...`` commands; they
drive the same Compose project as ``stack.py up --docker`` (the file's ``name:``). When nothing
is recorded but the engine runs containers of that project, started from this checkout's
compose folder, ``status``, ``call``, ``logs``, ``smoke`` and ``down`` adopt them: the stack is
recorded as a background Docker stack, and then works as one that ``up --docker -d`` started.
``up`` refuses an adopted stack as it refuses any running one (``--replace`` stops it first).
Only containers whose Compose project directory is this checkout's count: a project of the same
name from another clone is not this stack.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from . import rendered
from . import state as st
from .errors import StackError
from .ui import UI

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
WORKING_DIR_LABEL = "com.docker.compose.project.working_dir"


def running_services(docker: str, environ: dict[str, str], project: str, folder: Path) -> list[str]:
    """The services of ``project`` with a running container that Compose started with
    ``folder`` as its project directory; [] when there are none or no engine answers."""
    shape = f'{{{{.Label "{SERVICE_LABEL}"}}}}\t{{{{.Label "{WORKING_DIR_LABEL}"}}}}'
    try:
        done = subprocess.run(
            [docker, "ps", "--filter", f"label={PROJECT_LABEL}={project}", "--format", shape],
            env=environ,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    if done.returncode != 0:
        return []
    wanted = str(folder.resolve())
    rows = [line.split("\t", 1) for line in done.stdout.splitlines() if "\t" in line]
    return sorted({service for service, where in rows if where == wanted})


def unrecorded(paths: st.Paths, environ: dict[str, str], ui: UI) -> st.State | None:
    """The checkout's Compose project when it runs without a record, now recorded (the caller
    holds the stack's lock, or only reads); None when there is nothing to adopt."""
    docker = shutil.which("docker", path=environ.get("PATH"))
    command = rendered.compose_command()
    if docker is None or command is None or not paths.compose_file.is_file():
        return None
    try:
        document, unset = rendered.render(command, paths.compose_file, environ)
    except StackError:
        return None  # a file Compose refuses: the command says so itself when it reads it
    project = document.get("name")
    running = running_services(docker, environ, str(project), paths.compose_file.parent)
    if not project or not running:
        return None
    services = document.get("services") or {}
    profiles = sorted({p for name in running for p in services.get(name, {}).get("profiles", [])})
    # Whoever started it passed the variables the file requires (a token file's path); later
    # Compose commands only need them to read the file again, not their values.
    recorded = st.State(
        backend="docker",
        compose_file=str(paths.compose_file),
        project=str(project),
        profiles=profiles,
        env=dict.fromkeys(sorted(unset), os.devnull),
        adopted=True,
    )
    st.save(paths, recorded)
    ui.say(
        f"the Compose project {project} runs {', '.join(running)} without stack.py's record "
        "(started by docker compose): adopted"
    )
    return recorded
