"""The compute example over real HTTP."""

import pytest

from service_template.testing import ServiceFactory

pytestmark = pytest.mark.integration


def test_compute_adds_over_http() -> None:
    with ServiceFactory() as services:
        compute = services.process("services.compute:ComputeService")
        client = services.client(compute.url)
        assert client.methods.add(1, 2) == 3
        assert client.call("stats.sum", [1, 2, 3]) == 6
