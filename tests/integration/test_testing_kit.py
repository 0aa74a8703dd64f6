"""``service_template.testing``, the kit users import: what it starts, it stops, even when the
test fails; a service that cannot start says why; clients get the token unless told not to."""

from __future__ import annotations

import socket

import pytest

from service_template import AccessDenied, MicroService
from service_template.testing import ServiceFactory, serve_in_thread
from tests.conftest import REPO
from tests.integration.services import ProbeService

pytestmark = pytest.mark.integration

PROBE = "tests.integration.services:ProbeService"


def refused(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_an_in_process_service_answers_then_stops_and_frees_its_port() -> None:
    with serve_in_thread(ProbeService, token="t", call_timeout=2) as running:
        assert running.url == f"http://127.0.0.1:{running.port}/api"
        assert running.client().methods.secret("a") == "secret for a"
        with pytest.raises(AccessDenied):
            running.client(anonymous=True).methods.secret("a")
        assert running.service.settings.call_timeout == 2
    assert refused(running.port)


def test_a_factory_stops_every_service_it_started_when_the_test_fails() -> None:
    with pytest.raises(RuntimeError, match="the test failed"), ServiceFactory() as services:
        process = services.process(PROBE, cwd=REPO)
        in_process = services.in_process(ProbeService)
        assert services.client(process.url).methods.echo(1) == 1
        raise RuntimeError("the test failed")
    assert process.proc.poll() == 0, "SIGTERM, drained, exit 0"
    assert refused(process.port) and refused(in_process.port)


class FailsToStart(MicroService):
    name = "fails"

    async def on_start(self) -> None:
        raise RuntimeError("the database is unreachable")


def test_a_service_that_cannot_start_raises_its_own_error() -> None:
    with (
        pytest.raises(RuntimeError, match="the database is unreachable"),
        serve_in_thread(FailsToStart),
    ):
        pass


def test_a_process_that_cannot_start_fails_with_its_output() -> None:
    with pytest.raises(AssertionError, match="NoSuchService"), ServiceFactory() as services:
        services.process("tests.integration.services:NoSuchService", cwd=REPO)
