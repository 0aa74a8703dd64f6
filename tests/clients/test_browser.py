"""A real browser calls ``/api`` from a page of another origin: headless Chromium (the Debian
package) loads tests/clients/browser/page.html from a small static server on its own loopback
port, and the page calls the service with ``fetch`` (JSON and a token header, so the browser
sends a preflight first), then posts what it saw back to the static server.

What the browser enforces, not what a test client would: a page of a listed origin reads the
results; a page of any other origin gets only "Failed to fetch", and the call never runs;
``credentials: "include"`` works only when the service allows credentials.
"""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.clients.cases import mark
from tests.clients.conftest import require_command, served
from tests.conftest import TOKEN, ServiceProcess

PAGE = (Path(__file__).resolve().parent / "browser" / "page.html").read_bytes()
BROWSERS = ("chromium", "chromium-browser", "google-chrome")  # Debian, Ubuntu, Google's
REPORT_TIMEOUT = 60.0  # seconds for the browser to start, load the page and call (shared host)


class Origin:
    """A static server on a free loopback port: serves the page, collects the page's report."""

    def __init__(self) -> None:
        self.reports: list[Any] = []
        self.reported = threading.Event()
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(PAGE)))
                self.end_headers()
                self.wfile.write(PAGE)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                origin.reports.append(json.loads(body))
                origin.reported.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the page's requests are not the test's output

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path is not None:
            return path
    return require_command("chromium", "Debian: chromium; run: bash scripts/ci/install-tools.sh")


@pytest.fixture(scope="module")
def app_origin() -> Iterator[Origin]:
    origin = Origin()
    yield origin
    origin.close()


@pytest.fixture(scope="module")
def other_origin() -> Iterator[Origin]:
    origin = Origin()
    yield origin
    origin.close()


@pytest.fixture(scope="module")
def service(app_origin: Origin) -> Iterator[ServiceProcess]:
    yield from served({"SERVICE_CORS_ORIGINS": app_origin.url, "SERVICE_LOG_FORMAT": "json"})


@pytest.fixture(scope="module")
def credentials_service(app_origin: Origin) -> Iterator[ServiceProcess]:
    env = {"SERVICE_CORS_ORIGINS": app_origin.url, "SERVICE_CORS_ALLOW_CREDENTIALS": "1"}
    yield from served({**env, "SERVICE_LOG_FORMAT": "json"})


def open_page(
    browser: str, tmp_path: Path, origin: Origin, service: ServiceProcess, **query: Any
) -> Any:
    """Load the page from ``origin`` in headless Chromium; what the page reported."""
    origin.reports.clear()
    origin.reported.clear()
    params = urlencode({"api": service.url, "token": TOKEN, **query})
    command = [
        browser,
        "--headless",
        "--no-sandbox",  # root has no sandbox (CI runs as root)
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        f"--user-data-dir={tmp_path / 'profile'}",
        f"{origin.url}/page.html?{params}",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        reported = origin.reported.wait(REPORT_TIMEOUT)
    finally:
        proc.terminate()
        try:
            _, errors = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, errors = proc.communicate()
    assert reported, f"the page reported nothing within {REPORT_TIMEOUT}s:\n{errors[-3000:]}"
    return origin.reports[0]


def called(service: ServiceProcess, value: int) -> bool:
    """Whether the service ran ``add(value, 1)`` (its call log says so)."""
    return any(
        entry.get("method") == "add" and entry.get("params") == [value, 1]
        for entry in service.logs()
    )


def test_a_page_of_a_listed_origin_calls_the_service(browser, tmp_path, app_origin, service):
    value = mark()
    seen = open_page(browser, tmp_path, app_origin, service, mark=value)
    assert seen["status"] == 200, seen
    by_id = {reply["id"]: reply for reply in seen["body"]}
    assert by_id[1]["result"] == value + 1
    assert by_id[2]["result"] is True  # the private method: the token header got through
    assert seen["requestId"]  # exposed to the page (Access-Control-Expose-Headers)


def test_a_page_of_another_origin_is_refused(browser, tmp_path, other_origin, service):
    value = mark()
    seen = open_page(browser, tmp_path, other_origin, service, mark=value)
    assert seen == {"error": "TypeError: Failed to fetch"}
    # The preflight was refused, so the browser never sent the call.
    assert not called(service, value)


def test_credentials_need_the_setting(browser, tmp_path, app_origin, service, credentials_service):
    refused = open_page(browser, tmp_path, app_origin, service, mark=mark(), credentials="include")
    assert refused == {"error": "TypeError: Failed to fetch"}
    value = mark()
    seen = open_page(
        browser, tmp_path, app_origin, credentials_service, mark=value, credentials="include"
    )
    assert seen["status"] == 200, seen
    assert {reply["id"]: reply["result"] for reply in seen["body"]} == {1: value + 1, 2: True}
