"""The gemstone hello service, written for this runtime.

Its private method needs the API token: the runtime compares the caller's ``X-Api-Token`` with
``SERVICE_API_TOKEN`` (or the file named by ``SERVICE_API_TOKEN_FILE``) in constant time.
"""

from service_template import MicroService, private_api_method, public_method


class HelloService(MicroService):
    """Greets callers; the private greeting needs a token."""

    name = "hello"

    @public_method(idempotent=True)
    async def say_hello(self, name: str) -> str:
        """Return a greeting for ``name``."""
        return f"hello {name}"

    @private_api_method(idempotent=True)
    async def say_private_hello(self, name: str) -> str:
        """Return a greeting only callers with a valid token may see."""
        return f"this is secret: hello {name}"
