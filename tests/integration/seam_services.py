"""Services that use the extension seams, served by the integration tests
(``serve tests.integration.seam_services:X``).

``BillingService`` is the README's "Write a service" example grown by what a test must observe:
its own settings (a required secret URL, a prefix, a bounded number), a resource opened and
closed by ``lifespan``, a readiness check added there, and a Prometheus counter of its own.
It imports prometheus_client itself: a service may, the runtime's own code may not (only
``service_template/metrics.py`` does). Each step of its lifecycle is a log line the tests
read, in order.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from prometheus_client import Counter

from service_template import MicroService, RPCError, Secret, Settings, public_method, setting

log = logging.getLogger("tests.integration.seam_services")


class BillingSettings(Settings):
    """The billing service's own settings, next to the runtime's."""

    database_url: Secret = setting(
        help="URL of the billing database (a secret: it holds a password)"
    )
    invoice_prefix: str = setting(default="INV", help="text before each invoice number")
    pool_size: int = setting(default=2, low=1, high=50, help="database connections to keep open")


class FakePool:
    """Stands in for a database pool: opened, closed, and up or down as a test says."""

    def __init__(self, url: str, size: int) -> None:
        self.host = urlsplit(url).hostname or ""
        self.size = size
        self.up = True
        self.closed = False

    async def ping(self) -> bool:
        return self.up and not self.closed


class BillingService(MicroService):
    """Numbers invoices; its database pool lives as long as the service serves."""

    name = "billing"
    settings_class = BillingSettings
    settings: BillingSettings  # for type checkers: the class above is what it gets

    pool: FakePool
    invoices: Counter

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        self.pool = FakePool(self.settings.database_url.reveal(), self.settings.pool_size)
        log.info("pool opened")
        self.invoices = Counter(
            "billing_invoices", "Invoices numbered.", registry=self.metrics_registry
        )
        self.add_readiness_check("database", self.pool.ping)
        try:
            yield
        finally:
            self.pool.closed = True
            log.info("pool closed")

    async def on_start(self) -> None:
        log.info("on_start ran")

    async def on_stop(self) -> None:
        log.info("on_stop ran")

    @public_method
    async def next_invoice(self, number: int) -> str:
        """The invoice name for ``number``, counted on /metrics."""
        self.invoices.inc()
        return f"{self.settings.invoice_prefix}-{number:05d}"

    @public_method
    async def database(self) -> dict[str, object]:
        """What the pool was opened with (never the URL itself: it holds a password)."""
        return {"host": self.pool.host, "size": self.pool.size, "pid": os.getpid()}

    @public_method
    async def set_database_up(self, up: bool) -> bool:
        """Make the database readiness check pass or fail."""
        if not isinstance(up, bool):
            raise RPCError(4000, "up must be true or false")
        self.pool.up = up
        return up


class FailingStartService(BillingService):
    """``on_start`` fails halfway: what was opened must still be closed, in reverse order."""

    name = "failing-start"

    async def on_start(self) -> None:
        log.info("on_start began")
        raise RuntimeError("the cache would not warm up")


class LateChecksService(MicroService):
    """Readiness checks registered in ``on_start`` and by a call while serving: ``/readyz``
    reads the checks when asked, so both count (before, a check added in ``on_start`` never
    reached it)."""

    name = "late-checks"
    warm = False

    async def on_start(self) -> None:
        self.warm = True
        self.add_readiness_check("cache", lambda: self.warm)

    @public_method
    async def set_cache_warm(self, warm: bool) -> bool:
        """Make the check registered in ``on_start`` pass or fail."""
        self.warm = bool(warm)
        return self.warm

    @public_method
    async def add_check(self, name: str, passing: bool) -> str:
        """Register a check while serving, passing or failing as asked."""
        self.add_readiness_check(name, lambda: bool(passing))
        return name


if __name__ == "__main__":  # the gemstone way: `python seam_services.py` runs like `serve`
    BillingService().start()
