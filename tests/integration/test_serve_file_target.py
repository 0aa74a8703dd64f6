"""``serve path/to/file.py:Class``: the file's folder cannot shadow what the runtime imports."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ServiceProcess

pytestmark = pytest.mark.integration

SERVICE = """
from helper import GREETING  # a sibling module still imports, as in a script

from service_template import MicroService, public_method


class Planted(MicroService):
    name = "planted"

    @public_method
    def greet(self) -> str:
        return GREETING

    @public_method
    def client_module(self) -> str:
        import httpx  # imported after the service file was loaded

        return httpx.__file__
"""

# Modules the runtime imports, some of them only after the service file has been loaded.
PLANTED = ("tornado", "httptools", "httpx", "yaml", "prometheus_client", "orjson", "json")


def test_files_next_to_the_service_do_not_replace_the_runtimes_dependencies(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "service.py").write_text(SERVICE, encoding="utf-8")
    (folder / "helper.py").write_text('GREETING = "hi from a sibling"\n', encoding="utf-8")
    for name in PLANTED:
        (folder / f"{name}.py").write_text(
            f"raise SystemExit('planted {name}.py was imported')\n", encoding="utf-8"
        )
    service = start_service(f"{folder / 'service.py'}:Planted")
    for method, check in (
        ("greet", lambda result: result == "hi from a sibling"),
        ("client_module", lambda result: not result.startswith(str(folder))),
    ):
        body = json.dumps({"jsonrpc": "2.0", "method": method, "id": 1}).encode()
        request = urllib.request.Request(service.url, body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            reply = json.loads(response.read())
        assert check(reply["result"]), reply
    with urllib.request.urlopen(f"{service.base}/metrics", timeout=10) as response:
        assert b"rpc_calls_total" in response.read()
    assert not any("was imported" in line for line in service.lines)
    service.stop_cleanly()


def test_python_m_run_from_the_services_folder_does_not_import_files_planted_there(
    start_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    # `python -m` puts the working directory first on sys.path; launch() runs exactly that.
    folder = tmp_path / "svc"
    folder.mkdir()
    (folder / "service.py").write_text(SERVICE, encoding="utf-8")
    (folder / "helper.py").write_text('GREETING = "hi from a sibling"\n', encoding="utf-8")
    for name in ("tornado", "httptools", "httpx", "yaml", "prometheus_client"):
        (folder / f"{name}.py").write_text(
            f"raise SystemExit('planted {name}.py was imported')\n", encoding="utf-8"
        )
    service = start_service("service.py:Planted", cwd=folder)
    body = json.dumps({"jsonrpc": "2.0", "method": "greet", "id": 1}).encode()
    request = urllib.request.Request(service.url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["result"] == "hi from a sibling"
    assert not any("was imported" in line for line in service.lines)
    service.stop_cleanly()
