"""Finding the service class a serve TARGET names, and saying clearly what is wrong."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from service_template import MicroService, StartupError
from service_template.loader import load_service_class
from tests.integration.services import ProbeService

SERVICES = """
from service_template import MicroService, public_method

class Alpha(MicroService):
    name = "alpha"

    @public_method
    def ping(self) -> str:
        return "pong"

class Beta(MicroService):
    name = "beta"

def helper():
    return 1

class Plain:
    pass
"""


@pytest.fixture(autouse=True)
def isolated_imports() -> Iterator[None]:
    """The loader adds to sys.path and sys.modules, as running a script would: undo it."""
    path, modules = sys.path[:], set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def error_for(target: str) -> str:
    with pytest.raises(StartupError) as info:
        load_service_class(target)
    return str(info.value)


def test_a_module_target_gives_the_class() -> None:
    assert load_service_class("tests.integration.services:ProbeService") is ProbeService


def test_a_file_target_gives_the_class(tmp_path: Path) -> None:
    path = write(tmp_path, "shop.py", SERVICES)
    cls = load_service_class(f"{path}:Alpha")
    assert issubclass(cls, MicroService)
    assert cls.name == "alpha"


def test_a_relative_file_target_is_found_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "shop.py", SERVICES)
    monkeypatch.chdir(tmp_path)
    assert load_service_class("shop.py:Beta").name == "beta"


def test_a_file_may_import_its_sibling_modules(tmp_path: Path) -> None:
    write(tmp_path, "greetings.py", "WORD = 'hi'\n")
    path = write(
        tmp_path,
        "sibling_service.py",
        """
        from greetings import WORD
        from service_template import MicroService

        class Greeter(MicroService):
            name = WORD
        """,
    )
    assert load_service_class(f"{path}:Greeter").name == "hi"


def test_a_module_in_the_working_directory_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "local_shop_module.py", SERVICES)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert load_service_class("local_shop_module:Alpha").name == "alpha"


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.py"
    assert error_for(f"{missing}:Service") == f"no such file: {missing}"


def test_a_missing_module_is_named() -> None:
    message = error_for("no_such_module_here:Service")
    assert message.startswith("cannot import 'no_such_module_here'")


def test_a_file_that_fails_to_import_says_why(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.py", "raise RuntimeError('database url missing')\n")
    message = error_for(f"{path}:Service")
    assert message == f"loading {path} failed: {path}:1: RuntimeError: database url missing"


def test_a_module_that_fails_to_import_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "broken_module_x.py", "import json\njson.loads('{')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    message = error_for("broken_module_x:Service")
    assert message.startswith("importing 'broken_module_x' failed: ")
    assert "broken_module_x.py:2: JSONDecodeError: " in message


def test_a_file_with_a_syntax_error_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, "typo.py", "def broken(:\n")
    assert error_for(f"{path}:Service").startswith(f"loading {path} failed: {path}:")
    assert "SyntaxError" in error_for(f"{path}:Service")


def test_a_missing_class_lists_the_services_the_module_has(tmp_path: Path) -> None:
    path = write(tmp_path, "shop.py", SERVICES)
    message = error_for(f"{path}:Gamma")
    assert message == f"'{path}' has no attribute 'Gamma'; services there: Alpha, Beta"


def test_a_missing_class_in_a_module_without_services_says_only_that() -> None:
    assert error_for("json:Service") == "'json' has no attribute 'Service'"


@pytest.mark.parametrize("attr", ["helper", "Plain"])
def test_an_attribute_that_is_not_a_service_class_is_refused(tmp_path: Path, attr: str) -> None:
    path = write(tmp_path, "shop.py", SERVICES)
    target = f"{path}:{attr}"
    assert error_for(target) == f"{target!r} is not a MicroService subclass"


def test_the_base_class_itself_is_not_a_service() -> None:
    target = "service_template:MicroService"
    assert error_for(target) == f"{target!r} is not a MicroService subclass"


@pytest.mark.parametrize(
    "target", ["", "no_colon", ":Service", "module:", "module:not-an-identifier", "module:1st"]
)
def test_a_malformed_target_shows_the_expected_form(target: str) -> None:
    message = error_for(target)
    assert message == (
        f"TARGET must look like package.module:Class or path/to/file.py:Class, got {target!r}"
    )


def test_a_module_planted_next_to_a_service_file_does_not_shadow_an_installed_one(
    tmp_path: Path,
) -> None:
    import importlib.util

    write(tmp_path, "services.py", SERVICES)
    # colorsys: a standard module that nothing here has imported yet (find_spec searches).
    assert "colorsys" not in sys.modules
    write(tmp_path, "colorsys.py", "raise SystemExit('planted')\n")
    write(tmp_path, "sibling_helper.py", "VALUE = 1\n")
    load_service_class(f"{tmp_path / 'services.py'}:Alpha")
    found = importlib.util.find_spec("colorsys")
    assert found is not None and found.origin is not None
    assert not found.origin.startswith(str(tmp_path))
    sibling = importlib.util.find_spec("sibling_helper")  # siblings still import
    assert sibling is not None and sibling.origin == str(tmp_path / "sibling_helper.py")
