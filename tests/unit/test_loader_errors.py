"""An error while a service's module is imported names the file and line of the user's code;
``--debug`` adds the whole traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from service_template import StartupError, cli
from service_template.loader import load_service_class


@pytest.fixture(autouse=True)
def isolated_imports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    path, modules = sys.path[:], set(sys.modules)
    monkeypatch.chdir(tmp_path)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        del sys.modules[name]


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_a_name_error_at_import_names_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "billing_a.py", "import os\n\nRATE = 2\nTOTAL = RATE * undefined_rate\n")
    with pytest.raises(StartupError) as caught:
        load_service_class("billing_a:BillingService")
    message = str(caught.value)
    assert f"{tmp_path / 'billing_a.py'}:4: NameError: name 'undefined_rate' is not defined" in (
        message
    )


def test_a_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "billing_b.py", "class BillingService:\n    def charge(self:\n")
    with pytest.raises(StartupError) as caught:
        load_service_class(f"{path}:BillingService")
    assert f"{path}:2: SyntaxError" in str(caught.value)


def test_a_missing_dependency_of_the_service_names_its_import_line(tmp_path: Path) -> None:
    write(tmp_path, "billing_c.py", "\nimport no_such_driver_xyz\n")
    with pytest.raises(StartupError) as caught:
        load_service_class("billing_c:BillingService")
    message = str(caught.value)
    assert f"{tmp_path / 'billing_c.py'}:2: ModuleNotFoundError" in message
    assert "no_such_driver_xyz" in message


def test_a_missing_target_module_still_says_it_cannot_be_imported() -> None:
    with pytest.raises(StartupError, match="cannot import 'no_such_service_module'"):
        load_service_class("no_such_service_module:Service")


def test_serve_prints_one_line_and_only_debug_adds_the_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SERVICE_DEBUG", raising=False)
    write(tmp_path, "billing_d.py", "def helper():\n    return 1 / 0\n\nhelper()\n")
    assert cli.main(["serve", "billing_d:BillingService"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "billing_d.py:2: ZeroDivisionError" in err
    assert cli.main(["serve", "billing_d:BillingService", "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert 'billing_d.py", line 4, in <module>' in err
