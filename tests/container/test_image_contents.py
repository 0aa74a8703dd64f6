"""What is inside the image, checked against what the Dockerfile, the docs and the lock claim:
exactly the locked dependencies, and nothing to install, shell into or escalate with.

Each listing runs the image's own Python as root (``user="0:0"``), so no file is hidden from it
by permissions; the service itself runs as uid 10001 (test_image.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.errors import APIError
from packaging.utils import canonicalize_name

from ..lockfile import read_lock
from .conftest import Containers
from .support import REPO, note, wait_for

pytestmark = pytest.mark.container

PYTHON = "/opt/venv/bin/python"
# The healthcheck tests serve a module of their own, mounted into the image's working directory
# (as test_image.py does), so they hold whichever example services the project keeps.
CHECKED = "checked_service:CheckedService"
UNREADY = "checked_service:UnreadyService"
CHECKED_SERVICE = """
from service_template import MicroService, public_method, readiness_check


class CheckedService(MicroService):
    name = "checked"

    @public_method
    async def ping(self) -> str:
        return "pong"


class UnreadyService(CheckedService):
    name = "unready"

    @readiness_check
    async def never(self) -> bool:
        return False
"""


def checked_volume(folder: Path) -> dict[str, dict[str, str]]:
    """CHECKED_SERVICE as a read-only file in the image's working directory."""
    module = folder / "checked_service.py"
    module.write_text(CHECKED_SERVICE)
    module.chmod(0o644)  # the service runs as uid 10001
    return {str(module): {"bind": "/app/checked_service.py", "mode": "ro"}}


# Prints the distributions the service's interpreter sees and the values pip's markers use
# (PEP 508), computed the way packaging computes them, with the standard library only.
LIST_DISTRIBUTIONS = """
import importlib.metadata, json, os, platform, sys
info = sys.implementation.version
version = f"{info.major}.{info.minor}.{info.micro}"
if info.releaselevel != "final":
    version += info.releaselevel[0] + str(info.serial)
print(json.dumps({
    "distributions": [[d.metadata["Name"], d.version] for d in importlib.metadata.distributions()],
    "environment": {
        "implementation_name": sys.implementation.name,
        "implementation_version": version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    },
}))
"""

# What an intruder, or a careless `docker exec`, would reach for. The base interpreter is run
# too (outside the venv), since its own site-packages held pip and setuptools.
LIST_TOOLS = """
import importlib.util, json, os, shutil, stat, subprocess, sys
MODULES = ["pip", "setuptools", "wheel", "pkg_resources", "ensurepip", "_distutils_hack"]
probe = ("import importlib.util, json; "
         "print(json.dumps([m for m in %r if importlib.util.find_spec(m)]))")
base = os.path.realpath(sys.executable)
folders = ["/bin", "/sbin", "/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin"]
programs = sorted(
    os.path.join(folder, name)
    for folder in folders if os.path.isdir(folder) and not os.path.islink(folder)
    for name in os.listdir(folder)
)
special = []
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in {"/proc", "/sys", "/dev"}]
    for name in files:
        mode = os.lstat(os.path.join(root, name)).st_mode
        if stat.S_ISREG(mode) and mode & (stat.S_ISUID | stat.S_ISGID):
            special.append(os.path.join(root, name))
print(json.dumps({
    "venv_modules": [m for m in MODULES if importlib.util.find_spec(m)],
    "base_modules": json.loads(subprocess.run(
        [base, "-I", "-c", probe % MODULES], capture_output=True, text=True, check=True
    ).stdout),
    "on_path": {n: shutil.which(n) for n in ["sh", "bash", "dash", "apt", "apt-get", "dpkg", "su",
                                             "pip", "pip3", "perl", "ls", "env"]},
    "programs": programs,
    "interpreter": base,
    "setuid_or_setgid": special,
}))
"""


def run_json(containers: Containers, image: str, source: str) -> Any:
    status, output = containers.run(image, entrypoint=[PYTHON], command=["-c", source], user="0:0")
    assert status == 0, output
    return json.loads(output)


def test_image_holds_exactly_the_locked_runtime_versions(
    containers: Containers, image: str
) -> None:
    seen = run_json(containers, image, LIST_DISTRIBUTIONS)
    installed: dict[str, str] = {}
    for name, version in seen["distributions"]:
        key = canonicalize_name(name)
        assert key not in installed, f"{name} is installed twice in the image"
        installed[key] = version
    locked = {
        pin.name: pin.version
        for pin in read_lock("runtime.txt").values()
        if pin.applies(seen["environment"])
    }
    project = installed.pop("service-template", None)
    assert project is not None, f"the project itself is not installed: {sorted(installed)}"
    assert installed == locked, {
        "not locked": sorted(set(installed) - set(locked)),
        "locked, missing": sorted(set(locked) - set(installed)),
        "other version": {n: (v, locked[n]) for n, v in installed.items() if locked.get(n) != v},
    }
    note(f"image holds the {len(locked)} distributions of requirements/runtime.txt, all as locked")


def test_image_has_no_shell_package_manager_python_installer_or_setuid_file(
    containers: Containers, image: str
) -> None:
    seen = run_json(containers, image, LIST_TOOLS)
    assert seen["venv_modules"] == [], "packaging tools importable by the service"
    assert seen["base_modules"] == [], "packaging tools importable by the base interpreter"
    assert {name: path for name, path in seen["on_path"].items() if path} == {}
    # The only programs left are the interpreter and the links that lead to it.
    others = [p for p in seen["programs"] if not p.rsplit("/", 1)[1].startswith("python")]
    assert others == [], f"programs besides Python: {others}"
    assert seen["setuid_or_setgid"] == []
    note(f"image programs: {', '.join(seen['programs'])}")


def test_no_shell_can_be_started_in_the_image(containers: Containers, image: str) -> None:
    for shell in ("/bin/sh", "sh", "/bin/bash"):
        with pytest.raises(APIError, match=r"no such file or directory|not found"):
            containers.run(image, entrypoint=[shell], command=["-c", "true"])


def test_healthcheck_reports_an_unready_service_as_unhealthy_in_one_line(
    docker_client: docker.DockerClient, containers: Containers, image: str, tmp_path: Path
) -> None:
    probe = docker_client.images.get(image).attrs["Config"]["Healthcheck"]["Test"][1:]
    # A service whose readiness check fails: running, but /readyz says 503.
    unready = containers.start(
        image, command=["serve", UNREADY], volumes=checked_volume(tmp_path), read_only=True
    )

    def answered() -> tuple[int, str] | None:
        code, output = unready.exec_run(probe)
        text = output.decode(errors="replace").strip()
        return None if "refused" in text else (code, text)

    code, text = wait_for(answered, 30, "the service to listen")
    assert (code, text) == (1, "unhealthy: HTTP/1.1 503 Service Unavailable")
    code, output = unready.exec_run(probe, environment={"SERVICE_PORT": "9"})
    assert code == 1
    assert output.decode().strip() == "unhealthy: [Errno 111] Connection refused"


def test_healthcheck_probe_costs_little_cpu_at_the_compose_interval(
    docker_client: docker.DockerClient, containers: Containers, image: str, tmp_path: Path
) -> None:
    probe = docker_client.images.get(image).attrs["Config"]["Healthcheck"]["Test"][1:]
    service = containers.start(
        image, command=["serve", CHECKED], volumes=checked_volume(tmp_path), read_only=True
    )
    wait_for(lambda: service.exec_run(probe).exit_code == 0, 30, "the probe to pass")

    def cpu_ns() -> int:
        # The container's cgroup: the probe process and the service's answer, as Docker
        # accounts them (what `docker stats` shows).
        return int(service.stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"])

    probes = 10
    before = cpu_ns()
    for _ in range(probes):
        assert service.exec_run(probe).exit_code == 0
    per_probe_ms = (cpu_ns() - before) / probes / 1e6
    compose = (REPO / "compose" / "compose.yaml").read_text()
    found = re.search(r"interval: \$\{HEALTHCHECK_INTERVAL:-(\d+)s\}", compose)
    assert found, "compose.yaml's healthcheck interval changed form: update this test"
    interval = int(found[1])
    steady = per_probe_ms / (interval * 1000) * 100
    # Measured about 40 ms (an interpreter start with -I -S); urllib.request cost about 75 ms.
    assert per_probe_ms < 150, f"one probe costs {per_probe_ms:.0f} ms of CPU"
    note(
        f"healthcheck probe: {per_probe_ms:.0f} ms of CPU each; at the Compose interval of "
        f"{interval} s about {steady:.1f} % of a core per container"
    )
