"""Building the image: a failed build says why in one line and leaves nothing behind, and two
builds of one commit hold the same dependencies, byte for byte.

Both run the real classic builder. The failed build runs the project's own commands
(scripts/ci/build-images.sh, and `stack.py up --docker`) on a copy of the build inputs whose
Dockerfile asks for a distribution that is not in the lock.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from scripts.stacklib.buildlog import explain

from .conftest import SESSION, Containers, docker_build
from .support import REPO, note

pytestmark = pytest.mark.container

STAGE_LABEL = "org.service-template.stage"
ANSI = "\x1b["
PYTHON = "/opt/venv/bin/python"
BUILD_INPUTS = [
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "README.md",
    "service_template",
    "services",
    "scripts",
    "requirements",
    "compose",
    ".cache/wheels",
]
# Every file of the environment with its digest, and the distributions it holds: the same
# listing from two images means the same dependencies (and the same bytecode) were shipped.
LIST_ENVIRONMENT = """
import hashlib, importlib.metadata, json, os
files = {}
for root, dirs, names in os.walk("/opt/venv"):
    dirs.sort()
    for name in sorted(names):
        path = os.path.join(root, name)
        if os.path.islink(path):
            files[path] = "-> " + os.readlink(path)
        else:
            with open(path, "rb") as f:
                files[path] = hashlib.sha256(f.read()).hexdigest()
dists = importlib.metadata.distributions()
print(json.dumps({
    "distributions": sorted([d.metadata["Name"], d.version] for d in dists),
    "files": files,
}))
"""


def labelled_dangling(client: docker.DockerClient) -> set[str]:
    return {
        image.id for image in client.images.list(filters={"dangling": True, "label": STAGE_LABEL})
    }


def all_containers(client: docker.DockerClient) -> set[str]:
    return {container.id for container in client.containers.list(all=True)}


@pytest.fixture
def broken_checkout(tmp_path: Path) -> Path:
    """A copy of the build inputs whose dependency step asks for a distribution not locked."""
    copy = tmp_path / "checkout"
    for name in BUILD_INPUTS:
        source = REPO / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", ".env", "api_token*")
            shutil.copytree(source, copy / name, ignore=ignore)
        else:
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    dockerfile = copy / "Dockerfile"
    text = dockerfile.read_text()
    locked = "-r /tmp/wheels/runtime.txt;"
    assert text.count(locked) == 1, "the Dockerfile's dependency step changed: update this test"
    dockerfile.write_text(text.replace(locked, "-r /tmp/wheels/runtime.txt no-such-dist==1.0;"))
    return copy


def test_a_failed_build_ends_in_one_readable_line_and_leaves_nothing_behind(
    docker_client: docker.DockerClient, base_image: str, broken_checkout: Path
) -> None:
    tag = f"service-template:broken-{SESSION}"
    dangling_before = labelled_dangling(docker_client)
    containers_before = all_containers(docker_client)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "PYTHON": sys.executable,  # build-wheels.sh: the copy has no .venv of its own
        "SERVICE_IMAGE": tag,
        "BASE_IMAGE": base_image,
        "PROMETHEUS_IMAGE": "",
    }
    done = subprocess.run(
        ["bash", str(broken_checkout / "scripts/ci/build-images.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert ANSI not in done.stderr + done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        rf"build-images: error: building {re.escape(tag)} failed: step \d+/\d+ "
        r"\(Dockerfile line \d+, RUN\) failed: ERROR: .*no-such-dist.* \(exit 1\)",
        last,
    ), last
    assert len(last) < 250, last
    assert labelled_dangling(docker_client) - dangling_before == set()
    assert all_containers(docker_client) - containers_before == set()
    assert not docker_client.images.list(name=tag)
    note(f"failed build: {last}")


def test_stack_up_docker_reports_a_failed_build_in_one_line_and_leaves_nothing_behind(
    docker_client: docker.DockerClient, base_image: str, broken_checkout: Path
) -> None:
    tag = f"service-template:broken-stack-{SESSION}"
    dangling_before = labelled_dangling(docker_client)
    containers_before = all_containers(docker_client)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(Path.home()),  # where the docker CLI finds its compose plugin
        "SERVICE_IMAGE": tag,
        "BASE_IMAGE": base_image,
        "GATEWAY_PORT": "0",
    }
    done = subprocess.run(
        [sys.executable, "scripts/stack.py", "up", "--docker", "-d"],
        cwd=broken_checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode != 0, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert re.fullmatch(
        r"stack: error: building the image failed: step \d+/\d+ \(RUN\) failed: "
        r"ERROR: No matching distribution found for no-such-dist==1\.0 \(exit 1\)",
        last,
    ), last
    assert labelled_dangling(docker_client) - dangling_before == set()
    assert all_containers(docker_client) - containers_before == set()
    note(f"failed build under stack.py up --docker: {last}")


@pytest.fixture
def rebuilt(docker_client: docker.DockerClient, image: str, base_image: str) -> Iterator[str]:
    """The session's image built a second time from the same tree, without Docker's cache."""
    tag = f"service-template:rebuild-{SESSION}"
    argv = docker_build(tag, base_image, str(REPO))
    done = subprocess.run(
        [*argv[:2], "--no-cache", *argv[2:]],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    made = explain(done.stdout + done.stderr, "")[1]
    try:
        assert done.returncode == 0, done.stdout[-3000:]
        yield tag
    finally:
        # The tag, then every stage image this build made (the cache of the first build stays).
        for name in [tag, *made]:
            subprocess.run(
                ["docker", "image", "rm", "--no-prune", name], capture_output=True, check=False
            )


def test_two_builds_of_one_commit_hold_identical_environments(
    containers: Containers, image: str, rebuilt: str
) -> None:
    listings = []
    for name in (image, rebuilt):
        status, output = containers.run(name, entrypoint=[PYTHON], command=["-c", LIST_ENVIRONMENT])
        assert status == 0, output
        listings.append(json.loads(output))
    first, second = listings
    assert first["distributions"] == second["distributions"]
    differ = sorted(
        path
        for path in first["files"].keys() | second["files"].keys()
        if first["files"].get(path) != second["files"].get(path)
    )
    assert differ == [], f"files of /opt/venv that differ between the builds: {differ[:20]}"
    note(
        f"two builds (the second without cache): the same {len(first['distributions'])} "
        f"distributions and {len(first['files'])} identical files in /opt/venv"
    )
