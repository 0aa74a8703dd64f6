"""The hello example over real HTTP: anyone may say hello, only token holders in private."""

import pytest

from service_template import AccessDenied
from service_template.testing import ServiceFactory

pytestmark = pytest.mark.integration

TARGET = "services.hello:HelloService"


def test_say_hello_answers_anyone() -> None:
    with ServiceFactory() as services:
        hello = services.in_process(TARGET)
        assert (
            services.client(hello.url, anonymous=True).methods.say_hello("world") == "hello world"
        )


def test_the_private_greeting_needs_the_configured_token() -> None:
    with ServiceFactory() as services:
        hello = services.process(TARGET)
        with pytest.raises(AccessDenied):
            services.client(hello.url, token="wrong").methods.say_private_hello("x")
        with pytest.raises(AccessDenied):
            services.client(hello.url, anonymous=True).methods.say_private_hello("x")
        private = services.client(hello.url).methods.say_private_hello("x")
        assert private == "this is secret: hello x"
