"""A service may expose a method named ``version``: it hides ``MicroService.version`` (the
published version), and health, discovery and the method itself must all still work."""

from __future__ import annotations

import json
import urllib.request

from service_template import MicroService, public_method
from service_template.testing import serve_in_thread
from service_template.version import project_version


class VersionedService(MicroService):
    name = "versioned"

    @public_method
    async def version(self) -> str:
        return "the method's answer"


class PinnedService(MicroService):
    name = "pinned"
    version = "2.5.0"


def _get(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return reply.status, json.loads(reply.read())


def test_a_method_named_version_works_and_health_and_discovery_publish_the_projects() -> None:
    with serve_in_thread(VersionedService) as running:
        assert running.client().methods.version() == "the method's answer"
        for path in ("/livez", "/readyz"):
            status, document = _get(running.base + path)
            assert status == 200
            assert document["version"] == project_version()
        discovered = running.client().methods.__getattr__("rpc.discover")()
        assert discovered["info"]["version"] == project_version()


def test_a_version_string_on_the_class_is_published() -> None:
    with serve_in_thread(PinnedService) as running:
        status, document = _get(running.base + "/livez")
        assert (status, document["version"]) == (200, "2.5.0")
