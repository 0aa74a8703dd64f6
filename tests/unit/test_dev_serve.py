"""``dev.py serve [NAME]`` finds the services in services/ instead of a list of examples, so
it keeps working when the examples are deleted and new services are added."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import dev


@pytest.fixture
def services(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(dev, "SERVICES", tmp_path / "services")
    (tmp_path / "services").mkdir()
    return tmp_path / "services"


def test_a_name_is_the_module_and_its_service_class(services: Path) -> None:
    (services / "__init__.py").write_text("")
    (services / "billing.py").write_text(
        "from service_template import MicroService\n\n\nclass Helper:\n    pass\n\n\n"
        "class BillingService(MicroService):\n    name = 'billing'\n"
    )
    assert dev.serve_target("billing") == "services.billing:BillingService"
    assert dev.serve_target(None) == "services.billing:BillingService"
    assert dev.serve_target("pkg.mod:Cls") == "pkg.mod:Cls"


def test_an_unknown_name_lists_the_services_there_are(services: Path) -> None:
    (services / "billing.py").write_text("import x\n\nclass B(x.MicroService):\n    pass\n")
    with pytest.raises(SystemExit, match=r"no service 'hello' in services/ \(there: billing\)"):
        dev.serve_target("hello")


def test_without_any_service_it_says_how_to_make_one(services: Path) -> None:
    with pytest.raises(SystemExit, match=r"stack.py new NAME"):
        dev.serve_target(None)


def test_the_projects_own_services_are_found() -> None:
    from tests.conftest import defined_stack

    targets = set(dev.service_targets().values())
    assert {s.target for s in defined_stack().app_services()} <= targets
