"""The hello example's methods, called directly: no server, no sockets.

The example is the template's, not the runtime's: ``stack.py remove hello`` deletes this file
with ``services/hello.py``.
"""

import asyncio

from service_template.config import Settings
from services.hello import HelloService


def make_service() -> HelloService:
    return HelloService(Settings.load({}, defaults=HelloService.class_defaults()))


def test_say_hello_greets_by_name() -> None:
    assert asyncio.run(make_service().say_hello("world")) == "hello world"


def test_only_the_private_greeting_needs_the_token() -> None:
    registry = make_service().build_registry()
    assert registry["say_hello"].requires_auth is False
    assert registry["say_private_hello"].requires_auth is True
