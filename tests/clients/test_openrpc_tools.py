"""The OpenRPC document (``rpc.discover``) checked with the OpenRPC project's own tools, in
Node (tests/clients/js/openrpc.mjs): the official meta-schema (@open-rpc/meta-schema, with
ajv), schema-utils-js' ``validateOpenRPCDocument``, and a call to every method built from the
document alone, first checked by schema-utils-js' ``MethodCallValidator``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.clients.conftest import CASES, require_js_packages, run_node
from tests.conftest import REPO, TOKEN, ServiceProcess, launch

# The suite's service, the typed shop (dataclasses, enums, dates, Decimal, declared errors,
# *args, keyword-only: named types under components.schemas), and the examples that answer on
# their own while the project has them.
TYPED = "tests.integration.contract_services:TypedShop"
EXAMPLES = ["services.compute:ComputeService", "services.hello:HelloService"]
SERVICES = [CASES, TYPED] + [
    target
    for target in EXAMPLES
    if (REPO / (target.split(":")[0].replace(".", "/") + ".py")).is_file()
]


@pytest.fixture(scope="module", params=SERVICES, ids=lambda target: target.split(":")[1])
def report(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    require_js_packages()  # before starting a service it would not use
    service: ServiceProcess = launch(request.param)
    try:
        yield run_node("openrpc.mjs", service.url, TOKEN)
    finally:
        service.stop_cleanly()


def test_the_document_is_valid_against_the_official_meta_schema(report):
    assert report["metaSchema"] is True, report["metaSchema"]
    assert report["schemaUtils"] is True, report["schemaUtils"]
    assert report["parsed"] is True, report["parsed"]


def test_every_method_is_called_with_params_built_from_the_document(report):
    assert report["methods"], "the document lists no method"
    for name, method in report["methods"].items():
        assert method["validatorErrors"] == [], (name, method)
        assert "error" not in method, (name, method)
        assert method["resultMatchesSchema"] is True, (name, method)


def test_the_method_call_validator_rejects_a_call_against_the_document(report):
    # Proof that the validator reads the published schemas (an empty schema accepts anything).
    checked = {name: m for name, m in report["methods"].items() if "wrongCallErrors" in m}
    assert checked
    for name, method in checked.items():
        assert method["wrongCallErrors"], f"{name}: a wrongly typed call passed the validator"
