"""Fixtures for the container tier: the engine, the image (built once per session), a network
of the tier's own, and containers that are removed whatever happens to the test.

No engine or no ``docker compose``: the tier skips with a one-line reason, or fails when
``ST_REQUIRE_DOCKER=1`` (CI), where "Docker unavailable" must never pass as green. Every
container and network the tier makes itself carries the label ``LABEL`` with this session's id,
so a cleanup touches only its own (Compose stacks are found by their project label instead).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import docker
import pytest
from docker.errors import DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.models.networks import Network

from .compose_stack import Stack, up_stack
from .support import FACTS, REPO, note

# A suite run inside a scratch copy (test_copy_tiers.py) builds under a tag of its own, so it
# never replaces the image the outer session is testing.
IMAGE = os.environ.get("ST_TEST_IMAGE", "service-template:test")
LOCAL_BASE = "service-template-base:bookworm"
LOCAL_PROMETHEUS = "service-template-prometheus:bookworm"
LOCAL_POSTGRES = "service-template-postgres:bookworm"
SESSION = uuid.uuid4().hex[:8]
LABEL = "org.service-template.test-session"
DEFAULT_HOST = "unix:///var/run/docker.sock"


def unavailable(reason: str) -> NoReturn:
    """Skip with a one-line reason, or fail in CI (ST_REQUIRE_DOCKER=1)."""
    line = " ".join(reason.split())
    if os.environ.get("ST_REQUIRE_DOCKER") == "1":
        pytest.fail(f"{line} (ST_REQUIRE_DOCKER=1: the container tier must run)", pytrace=False)
    pytest.skip(line)


def run_step(argv: list[str], what: str, timeout: float, stdin: bytes | None = None) -> None:
    """Run a build step; a failure fails the test with the end of its output (never a skip:
    a broken build is a real defect, not a missing tool)."""
    proc = subprocess.run(
        argv,
        cwd=REPO,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.decode(errors="replace").splitlines()[-40:])
        pytest.fail(f"{what} failed (exit {proc.returncode}):\n{tail}", pytrace=False)


def docker_build(tag: str, base: str, context: str) -> list[str]:
    """``docker build`` argv; --force-rm because the classic builder keeps a failed step's
    container otherwise."""
    return [
        "docker",
        "build",
        "--force-rm",
        "--build-arg",
        f"BASE_IMAGE={base}",
        "-t",
        tag,
        context,
    ]


def image_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except ImageNotFound:
        return False
    return True


def unix_socket_problem(host: str) -> str | None:
    """Why the engine's Unix socket refuses a connection, or None (also for TCP hosts).

    Checked with a plain socket first: the SDK leaks its socket when the engine is not there,
    which the suite's warnings-as-errors would turn into an error of its own.
    """
    if not host.startswith("unix://"):
        return None
    path = host.removeprefix("unix://")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        try:
            sock.connect(path)
        except OSError as exc:
            return f"{path}: {exc.strerror or exc}"
    return None


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    """A client of a Docker engine that answers."""
    problem = unix_socket_problem(os.environ.get("DOCKER_HOST", DEFAULT_HOST))
    if problem:
        unavailable(f"Docker engine not reachable: {problem}")
    try:
        client = docker.from_env(timeout=300)
        client.ping()
    except (DockerException, OSError) as exc:  # requests' errors are OSErrors
        unavailable(f"Docker engine not reachable: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def compose(docker_client: docker.DockerClient) -> list[str]:
    """The argv prefix of the real ``docker compose`` CLI."""
    cli = shutil.which("docker")
    if cli is None:
        unavailable("docker compose not available: no docker CLI on PATH")
    proc = subprocess.run(
        [cli, "compose", "version"], capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        first = (proc.stderr or proc.stdout).strip().splitlines() or ["no output"]
        unavailable(f"docker compose not available: {first[0]}")
    note(proc.stdout.strip())
    return [cli, "compose"]


@pytest.fixture(scope="session")
def base_image(docker_client: docker.DockerClient) -> str:
    """The base the image builds on: $BASE_IMAGE, by default the locally made Debian base
    (made here if missing; CI's .ci/run has made it already)."""
    base = os.environ.get("BASE_IMAGE", LOCAL_BASE)
    if base == LOCAL_BASE and not image_exists(docker_client, base):
        started = time.monotonic()
        run_step(["bash", "scripts/make-base-image.sh", base], f"making {base}", timeout=900)
        note(f"made {base} in {time.monotonic() - started:.0f} s")
    return base


@pytest.fixture(scope="session")
def image(docker_client: docker.DockerClient, base_image: str) -> str:
    """The service image, built once per session from the working tree (Docker's layer cache
    makes a rebuild without changes take seconds)."""
    if shutil.which("docker") is None:
        unavailable("Docker CLI not found on PATH (needed for docker build)")
    wheels = REPO / ".cache" / "wheels"
    # Empty, or older than a lock it is made from (a pin may have moved): the offline build
    # would fail on a missing wheel, so refresh them (pip's cache makes it quick).
    locks = [REPO / "requirements" / name for name in ("runtime.txt", "build.txt")]
    if not any(wheels.glob("*.whl")) or wheels.stat().st_mtime < max(
        lock.stat().st_mtime for lock in locks
    ):
        run_step(["bash", "scripts/ci/build-wheels.sh"], "building wheels", timeout=600)
    started = time.monotonic()
    run_step(
        docker_build(IMAGE, base_image, str(REPO)),
        f"docker build -t {IMAGE}",
        timeout=900,
    )
    took = time.monotonic() - started
    # The image the tag named before is dangling now: remove it (as build-images.sh does). Only
    # final images carry stage=runtime; the dangling build stages are the layer cache.
    # On a line of its own, so that a rename's longer or shorter name never rewraps the call.
    runtime = "org.service-template.stage=runtime"
    docker_client.images.prune(filters={"dangling": True, "label": runtime})
    size = docker_client.images.get(IMAGE).attrs["Size"]
    note(f"image {IMAGE}: {size / 1e6:.1f} MB, built on {base_image} in {took:.1f} s")
    return IMAGE


@pytest.fixture(scope="session")
def prometheus_image(docker_client: docker.DockerClient, base_image: str) -> str:
    """Debian's Prometheus as an image, for the Compose profile ``observability`` (no registry here
    to pull prom/prometheus from). Built from compose/prometheus.Dockerfile if missing."""
    name = os.environ.get("PROMETHEUS_IMAGE", LOCAL_PROMETHEUS)
    if name == LOCAL_PROMETHEUS and not image_exists(docker_client, name):
        started = time.monotonic()
        run_step(
            docker_build(name, base_image, "-"),
            f"building {name}",
            timeout=900,
            # On stdin, as scripts/ci/build-images.sh does: no build context is sent.
            stdin=(REPO / "compose" / "prometheus.Dockerfile").read_bytes(),
        )
        note(f"built {name} in {time.monotonic() - started:.0f} s")
    return name


@pytest.fixture(scope="session")
def postgres_image(docker_client: docker.DockerClient, base_image: str) -> str:
    """Debian's PostgreSQL as an image with the official one's interface, for the Compose
    profile ``db`` (no registry here to pull postgres from). Built from compose/postgres each
    session, as build-images.sh does: the layer cache makes an unchanged rebuild take seconds."""
    name = os.environ.get("POSTGRES_IMAGE", LOCAL_POSTGRES)
    if name == LOCAL_POSTGRES:
        started = time.monotonic()
        run_step(
            docker_build(name, base_image, str(REPO / "compose" / "postgres")),
            f"building {name}",
            timeout=900,
        )
        note(f"built {name} in {time.monotonic() - started:.0f} s")
    return name


@pytest.fixture(scope="session")
def network(docker_client: docker.DockerClient) -> Iterator[Network]:
    """A bridge network of this session's own: the only one its containers join."""
    net = docker_client.networks.create(
        f"st-test-{SESSION}", driver="bridge", labels={LABEL: SESSION}
    )
    yield net
    # Safety net: every container fixture removes its own, but one left attached would keep
    # the network alive. Only containers labelled with this session are touched.
    mine = {"label": f"{LABEL}={SESSION}"}
    for leftover in docker_client.containers.list(all=True, filters=mine):
        leftover.remove(force=True, v=True)
    net.remove()


class Containers:
    """Creates containers on the session's network and removes every one of them."""

    def __init__(self, client: docker.DockerClient, network: Network) -> None:
        self.client = client
        self.network = network
        self.made: list[Container] = []

    def start(self, image: str, *, publish: int | None = None, **kwargs: Any) -> Container:
        """Create and start a container; ``publish`` maps that container port to a free port
        on 127.0.0.1. Registered for removal before it starts, so a failed start is cleaned."""
        kwargs.setdefault("labels", {})[LABEL] = SESSION
        if publish is not None:
            kwargs["ports"] = {f"{publish}/tcp": ("127.0.0.1", None)}
        container = self.client.containers.create(image, network=self.network.name, **kwargs)
        self.made.append(container)
        container.start()
        container.reload()
        return container

    def run(self, image: str, timeout: float = 60, **kwargs: Any) -> tuple[int, str]:
        """Run a container to completion: its exit status and output."""
        container = self.start(image, **kwargs)
        status = container.wait(timeout=timeout)["StatusCode"]
        output = container.logs().decode(errors="replace")
        container.remove(force=True)
        self.made.remove(container)
        return status, output

    def url(self, container: Container, port: int = 8000) -> str:
        """``http://127.0.0.1:<published port>`` for ``port`` of ``container``."""
        container.reload()
        bindings = container.attrs["NetworkSettings"]["Ports"][f"{port}/tcp"]
        assert bindings, f"port {port} of {container.name} is not published"
        return f"http://127.0.0.1:{bindings[0]['HostPort']}"

    def ip(self, container: Container) -> str:
        """The container's address on the session's network (what a kubelet would probe)."""
        container.reload()
        address: str = container.attrs["NetworkSettings"]["Networks"][self.network.name][
            "IPAddress"
        ]
        assert address, f"{container.name} has no address on {self.network.name}"
        return address

    def remove_all(self) -> None:
        for container in reversed(self.made):
            with contextlib.suppress(NotFound):  # already gone (e.g. removed by the test)
                container.remove(force=True, v=True)
        self.made.clear()


@pytest.fixture
def containers(docker_client: docker.DockerClient, network: Network) -> Iterator[Containers]:
    """Containers for one test, removed at its end even when it fails."""
    made = Containers(docker_client, network)
    yield made
    made.remove_all()


@pytest.fixture(scope="module")
def module_containers(docker_client: docker.DockerClient, network: Network) -> Iterator[Containers]:
    """Containers shared by the tests of one module, removed at its end."""
    made = Containers(docker_client, network)
    yield made
    made.remove_all()


@pytest.fixture(scope="session")
def stack(
    compose: list[str],
    docker_client: docker.DockerClient,
    image: str,
    prometheus_image: str,
    postgres_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The template's Compose stack, every profile on, up and healthy, shared by every module
    that tests it; down at the end of the session, leaving nothing."""
    images = {"SERVICE_IMAGE": image, "PROMETHEUS_IMAGE": prometheus_image}
    images["POSTGRES_IMAGE"] = postgres_image
    yield from up_stack(f"st-test-{SESSION}", compose, docker_client, images, tmp_path_factory)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print what the tier measured (image size, build and stop times)."""
    if FACTS:
        terminalreporter.section("container tier")
        for fact in FACTS:
            terminalreporter.write_line(fact)
