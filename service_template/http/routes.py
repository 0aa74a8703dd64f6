"""The GET routes, on a regular ``tornado.web.Application``: health, metrics, OpenRPC.

``make_app`` serves them beside ``/api``; with an admin port, ``make_admin_app`` serves
``/metrics`` and the probes there, and the API port stops serving ``/metrics``.

These are not hot paths, so they use ``RequestHandler`` for its conveniences. Every response is
JSON (or the Prometheus text or OpenMetrics format), including errors; no ``Server`` header is sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import tornado.web

from .. import health
from ..protocol import codec
from ..protocol.calls import HeaderView
from .service_routes import service_rules

if TYPE_CHECKING:
    from ..runtime import Runtime


class _Base(tornado.web.RequestHandler):
    SUPPORTED_METHODS: tuple[str, ...] = ("GET", "HEAD")

    def initialize(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def set_default_headers(self) -> None:
        self.clear_header("Server")  # do not advertise the framework or its version

    def send_json(
        self, doc: Any, status: int = 200, content_type: str = "application/json"
    ) -> None:
        self.set_status(status)
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-store")
        self.finish(codec.dumps(doc))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:
            self.set_header("Allow", "GET, HEAD")
        self.send_json({"error": self._reason}, status_code)

    def head(self) -> Any:
        return self.get()


class LivezHandler(_Base):
    def get(self) -> None:
        self.send_json(self.runtime.liveness(), content_type=health.CONTENT_TYPE)


class ReadyzHandler(_Base):
    async def get(self) -> None:
        doc = await self.runtime.readiness()
        status = 200 if doc["status"] == "pass" else 503
        self.send_json(doc, status, content_type=health.CONTENT_TYPE)


class MetricsHandler(_Base):
    def get(self) -> None:
        metrics = self.runtime.metrics
        if metrics is None:
            raise tornado.web.HTTPError(404, reason="Metrics are disabled")
        page, content_type = metrics.render(self.request.headers.get("Accept"))
        self.set_header("Content-Type", content_type)
        self.set_header("Vary", "Accept")  # the format follows the scraper's Accept header
        self.finish(page)


class OpenRPCHandler(_Base):
    async def get(self) -> None:
        headers = HeaderView(self.request.headers)
        self.send_json(
            await self.runtime.discover(lambda: self.runtime.access.authenticate(headers), headers)
        )


class NotFoundHandler(_Base):
    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS")

    def prepare(self) -> None:
        raise tornado.web.HTTPError(404, reason="Not found")


def make_app(runtime: Runtime) -> tornado.web.Application:
    """The API port's GET routes; ``/metrics`` only when no admin port serves it instead."""
    args = {"runtime": runtime}
    routes: list[Any] = [
        ("/livez", LivezHandler, args),
        ("/readyz", ReadyzHandler, args),
        ("/openrpc.json", OpenRPCHandler, args),
    ]
    if runtime.settings.admin_port is None:
        routes.append(("/metrics", MetricsHandler, args))
    routes.extend(service_rules(runtime))  # the service's own routes (``routes``)
    return _application(routes, args, runtime)


def make_admin_app(runtime: Runtime) -> tornado.web.Application:
    """The admin port's routes: ``/metrics`` and the probes, nothing else (no ``/api``)."""
    args = {"runtime": runtime}
    routes: list[Any] = [
        ("/livez", LivezHandler, args),
        ("/readyz", ReadyzHandler, args),
        ("/metrics", MetricsHandler, args),
    ]
    return _application(routes, args, runtime)


def _application(
    routes: list[Any], args: dict[str, Any], runtime: Runtime
) -> tornado.web.Application:
    return tornado.web.Application(
        routes,
        default_handler_class=NotFoundHandler,
        default_handler_args=args,
        log_function=lambda handler: None,  # per-call logs come from the runtime, not here
        service=runtime.service,  # what ServiceHandler.service reads
        runtime=runtime,  # and ServiceHandler.authenticate
    )
