"""Services for the call-context, hook and route tests (served by the integration tests).

Each makes one seam observable from outside: methods that answer with what
``current_call()`` told them, hooks that leave a trace in the result or the log, an
``authenticate`` that accepts a made-up bearer scheme (``user:NAME``) or fails on demand, and
routes (a webhook with a small body limit, a plain Tornado handler, a slow handler for drain).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import tornado.web

from service_template import (
    AccessDenied,
    CallInfo,
    MicroService,
    Principal,
    Route,
    RPCError,
    current_call,
    private_api_method,
    public_method,
)
from service_template.context import HeaderView
from service_template.hooks import Hook, Proceed
from service_template.http import ServiceHandler

log = logging.getLogger("tests.integration.context_services")

WEBHOOK_LIMIT = 1024
MAX_SLEEP = 5.0


def describe(call: CallInfo) -> dict[str, Any]:
    """What a method can know about its call, as plain data."""
    principal = call.principal
    try:
        call.headers["x-test-agent"] = "changed"  # type: ignore[index]
        read_only = False
    except TypeError:
        read_only = True
    return {
        "method": call.method,
        "id": call.id,
        "notification": call.is_notification,
        "request_id": call.request_id,
        "agent": call.headers.get("X-TEST-Agent"),
        "headers_read_only": read_only,
        "principal": principal.subject if isinstance(principal, Principal) else principal,
        "thread": threading.current_thread().name,
    }


class ContextService(MicroService):
    """Methods that report their own call."""

    name = "context"

    @public_method
    async def whoami(self) -> dict[str, Any]:
        return describe(current_call())

    @public_method
    def whoami_plain(self) -> dict[str, Any]:
        """Runs in the thread pool: the context must have been copied there."""
        return describe(current_call())

    @public_method
    async def whoami_later(self, seconds: float) -> dict[str, Any]:
        """Reads the context after suspending (batch members then run concurrently)."""
        await asyncio.sleep(min(seconds, MAX_SLEEP))
        return describe(current_call())

    @private_api_method
    async def whoami_private(self) -> dict[str, Any]:
        return describe(current_call())


class HookedService(ContextService):
    """Four hooks, outermost first, and a bearer-style ``authenticate``."""

    name = "hooked"

    def call_hooks(self) -> Sequence[Hook]:
        return [self.timing, self.first, self.second, self.gate]

    async def timing(self, call: CallInfo, proceed: Proceed) -> Any:
        """Observes every call: its outcome and duration, in one log line."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            return await proceed()
        except RPCError as exc:
            outcome = str(exc.code)
            raise
        except Exception as exc:
            outcome = type(exc).__name__
            raise
        finally:
            fields = {
                "hook_method": call.method,
                "hook_outcome": outcome,
                "hook_ms": (time.perf_counter() - started) * 1000,
                "hook_request_id": call.request_id,
            }
            log.info("timed call", extra={"fields": fields})

    async def first(self, call: CallInfo, proceed: Proceed) -> Any:
        result = await proceed()
        return [*result, "first"] if call.method == "layers" else result

    async def second(self, call: CallInfo, proceed: Proceed) -> Any:
        result = await proceed()
        return [*result, "second"] if call.method == "layers" else result

    async def gate(self, call: CallInfo, proceed: Proceed) -> Any:
        """Refuses tenant.* calls without X-Tenant, and user.* calls without a principal."""
        if call.method.startswith("tenant.") and "x-tenant" not in call.headers:
            raise RPCError(4030, "X-Tenant header required")
        if call.method.startswith("user.") and await call.authenticate() is None:
            raise AccessDenied()
        return await proceed()

    async def authenticate(self, headers: HeaderView) -> Any:
        scheme, _, value = headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer":
            return None
        if value == "empty":
            return ""  # falsy: no identity, like None
        if value == "explode":
            raise RuntimeError("key server unreachable: s3cr3t-detail")
        if value.startswith("user:"):
            return Principal(value[5:], {"scopes": ["read"]})
        return None

    @public_method
    async def layers(self) -> list[str]:
        return ["method"]

    @public_method(name="tenant.info")
    async def tenant_info(self) -> str:
        return current_call().headers["X-Tenant"]

    @public_method(name="user.me")
    def user_me(self) -> dict[str, Any]:
        """Public, but the gate hook authenticates: the principal is there."""
        return describe(current_call())

    @public_method
    async def fail(self) -> None:
        raise ValueError("boom")


class StripeWebhook(ServiceHandler):
    """A webhook: counts what it received on the service instance."""

    async def post(self) -> None:
        service: RoutedService = self.service
        service.webhooks += 1
        principal = await self.authenticate()
        self.finish(
            {
                "principal": principal.subject if isinstance(principal, Principal) else None,
                "received": len(self.request.body),
                "request_id": self.request_id,
                "service": service.service_name,
                "webhooks": service.webhooks,
            }
        )


class PlainUpload(tornado.web.RequestHandler):
    """A plain Tornado handler (no ServiceHandler): gets the default body limit."""

    def initialize(self, label: str) -> None:
        self.label = label

    def put(self) -> None:
        self.finish({"label": self.label, "received": len(self.request.body)})


class SlowHandler(ServiceHandler):
    """Answers after ``?seconds=`` (bounded); logs when it starts, so a test can time SIGTERM."""

    async def get(self) -> None:
        seconds = min(float(self.get_argument("seconds", "1")), MAX_SLEEP)
        log.info("slow handler started", extra={"fields": {"slow_request_id": self.request_id}})
        await asyncio.sleep(seconds)
        self.finish({"slept": seconds})


class RoutedService(ContextService):
    """A service with routes of its own next to /api."""

    name = "routed"
    routes = (
        Route("/webhooks/stripe", StripeWebhook, max_body_bytes=WEBHOOK_LIMIT),
        Route("/uploads", PlainUpload, kwargs={"label": "plain"}),
        ("/slow", SlowHandler),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.webhooks = 0


class ReservedRouteService(MicroService):
    """Cannot start: a route that would take /metrics."""

    name = "reserved"
    routes = (Route("/(metrics|stats)", SlowHandler),)
