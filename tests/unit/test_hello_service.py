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


def test_its_pure_methods_are_published_as_idempotent() -> None:
    # Safe to run twice, so callers may retry them (the gateway does: services/gateway.py).
    from service_template.openrpc import build_document

    methods = make_service().build_registry().values()
    document = build_document("HelloService", "1.0.0", methods)
    marked = {m["name"] for m in document["methods"] if m.get("x-idempotent")}
    assert marked == {"say_hello", "say_private_hello"}
