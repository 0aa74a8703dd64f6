"""The Python files ``new NAME`` writes: a service module and its two tests.

Each is formatted as ``ruff format`` would format it and stays under 100 columns for any name
``new`` accepts (at most 20 characters), so the new files pass the project's lint at once.
"""

from __future__ import annotations

PACKAGE = "services"

PACKAGE_INIT = '''\
"""The project's own services, one module each: `python3 scripts/stack.py new NAME` adds one.

Each is served by the template's runtime as ``services.<module>:<Class>``: from Compose
(``command: ["serve", "services.<module>:<Class>"]``), Kubernetes (the Deployment's ``args``) or
``python -m service_template serve services.<module>:<Class>``.
"""
'''

MODULE = '''\
"""The {name} service, made by `python3 scripts/stack.py new {name}`.

Replace the two example methods with your own and keep its tests in step:
tests/unit/test_{name}_service.py calls the methods directly, and
tests/integration/test_{name}_service.py calls them over HTTP.
`python3 scripts/stack.py up` runs it with the rest of the stack, and
`python3 scripts/stack.py call {name} greet world` calls it there.
"""

from service_template import MicroService, private_api_method, public_method


class {cls}(MicroService):
    """An example service: a public greeting and a private one."""

    name = "{name}"

    @public_method
    async def greet(self, name: str) -> str:
        """Return a greeting for ``name``; anyone may call it."""
        return f"hello {{name}}, this is {name}"

    @private_api_method
    async def private_greet(self, name: str) -> str:
        """Return a greeting that only callers with the API token may see."""
        return f"hello {{name}}, this is {name}, privately"
'''

UNIT_TEST = '''\
"""The {name} service's methods, called directly: no server, no sockets."""

import asyncio

from service_template.config import Settings
from services.{name} import {cls}


def make_service() -> {cls}:
    # Settings from an empty environment: the caller's SERVICE_* variables never leak in.
    defaults = {cls}.class_defaults()
    return {cls}(Settings.load({{}}, defaults=defaults))


def test_greet_greets_the_caller_by_name() -> None:
    answer = asyncio.run(make_service().greet("world"))
    assert answer == "hello world, this is {name}"


def test_private_greet_answers_with_the_private_greeting() -> None:
    answer = asyncio.run(make_service().private_greet("world"))
    assert answer == "hello world, this is {name}, privately"


def test_only_private_greet_needs_the_api_token() -> None:
    registry = make_service().build_registry()
    assert registry["greet"].requires_auth is False
    assert registry["private_greet"].requires_auth is True
'''

INTEGRATION_TEST = '''\
"""The {name} service over real HTTP: anyone may greet, token holders privately.

It uses the runtime's test kit (service_template.testing), so it runs in any project.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from service_template import AccessDenied
from service_template.testing import RunningService, ServiceFactory, serve_in_thread
from services.{name} import {cls}

pytestmark = pytest.mark.integration

PROJECT = Path(__file__).resolve().parents[2]
TARGET = "services.{name}:{cls}"


@pytest.fixture
def service() -> Iterator[RunningService]:
    # In this process, on a free loopback port; drained and stopped after the test.
    with serve_in_thread({cls}, token="test-token") as running:
        yield running


def test_greet_answers_anyone(service: RunningService) -> None:
    answer = service.client(anonymous=True).methods.greet("world")
    assert answer == "hello world, this is {name}"


def test_private_greet_refuses_a_caller_without_the_token(service: RunningService) -> None:
    with pytest.raises(AccessDenied):
        service.client(anonymous=True).methods.private_greet("world")


def test_private_greet_answers_a_caller_with_the_token(service: RunningService) -> None:
    answer = service.client().methods.private_greet("world")
    assert answer == "hello world, this is {name}, privately"


def test_it_serves_as_compose_and_kubernetes_run_it() -> None:
    # The target of its Compose `command` and Deployment `args`, as a real process.
    with ServiceFactory() as services:
        process = services.process(TARGET, cwd=PROJECT)
        answer = services.client(process.url).methods.greet("you")
        assert answer == "hello you, this is {name}"
        process.stop_cleanly()
'''


def class_name(name: str) -> str:
    """``billing`` -> ``BillingService`` (names are lower-case letters and digits)."""
    return name.capitalize() + "Service"


def render(template: str, name: str) -> str:
    return template.format(name=name, cls=class_name(name))
