"""The notes example against a real PostgreSQL (tests/postgres.py), as a real process on loopback:
rows written and read back, readiness that follows the database, a clear error for a call while
it is down, and the URL and password in no log line. ``stack.py remove notes`` deletes this file
with the example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from service_template import RPCError
from service_template.testing import ServiceFactory, ServiceProcess
from tests.postgres import postgres

pytestmark = pytest.mark.integration

NOTES = "services.notes:NotesService"
UNAVAILABLE = -32010


def raw_call(url: str, method: str, params: list[object]) -> tuple[int, dict[str, object]]:
    body = json.dumps({"jsonrpc": "2.0", "method": method, "params": params, "id": 7}).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status, json.loads(response.read())


def assert_no_secret(service: ServiceProcess, *secrets: str) -> None:
    for secret in secrets:
        assert not any(secret in line for line in service.lines), secret


def test_notes_are_written_read_listed_and_deleted_through_the_real_database() -> None:
    with postgres() as db, ServiceFactory() as services:
        notes = services.process(NOTES, env={"SERVICE_DATABASE_URL": db.url})
        client = services.client(notes.url)
        assert client.health("readyz").ok
        first = client.methods.add("buy milk")
        second = client.methods.add("call ada")
        assert (first["text"], second["id"]) == ("buy milk", first["id"] + 1)
        assert client.methods.get(first["id"]) == first
        assert [n["text"] for n in client.methods.recent(10)] == ["call ada", "buy milk"]
        assert client.methods.delete(first["id"]) is True
        assert client.methods.delete(first["id"]) is False
        with pytest.raises(RPCError) as missing:
            client.methods.get(first["id"])
        assert (missing.value.code, missing.value.data) == (404, {"id": first["id"]})
        with pytest.raises(RPCError) as empty:
            client.methods.add("   ")
        assert empty.value.code == -32602

        # The rows are in the database, not the process: a new process reads them.
        notes.stop_cleanly()
        again = services.process(NOTES, env={"SERVICE_DATABASE_URL": db.url})
        assert services.client(again.url).methods.recent(10) == [second]
        for process in (notes, again):
            assert_no_secret(process, db.url, db.password)


def test_readiness_follows_the_database_and_a_call_while_it_is_down_gets_a_clear_error() -> None:
    with postgres() as db, ServiceFactory() as services:
        notes = services.process(NOTES, env={"SERVICE_DATABASE_URL": db.url})
        client = services.client(notes.url)
        assert client.methods.add("before") is not None
        db.stop()

        ready = client.health("readyz")
        assert (ready.ok, ready.status_code) == (False, 503)
        assert ready.checks["database:responseTime"][0]["status"] == "fail"
        started = time.monotonic()
        status, answer = raw_call(notes.url, "add", ["while down"])
        took = time.monotonic() - started
        # An answer, not a 500 or a traceback: the JSON-RPC error names what is missing.
        assert status == 200
        assert answer["error"] == {
            "code": UNAVAILABLE,
            "message": "database is unavailable",
            "data": {"peer": "database"},
        }
        assert took < 5.0, f"a call with the database down took {took:.2f} s"
        assert client.health("livez").ok  # alive: nothing to gain from a restart

        db.start()
        assert client.health("readyz").ok  # the pool reconnects by itself
        assert [n["text"] for n in client.methods.recent(5)] == ["before"]
        notes.wait_for_log(lambda e: str(e.get("msg", "")).startswith("database is unavailable"))
        assert_no_secret(notes, db.url, db.password)


def test_the_service_starts_while_the_database_is_down_and_turns_ready_when_it_comes() -> None:
    with postgres(started=False) as db, ServiceFactory() as services:
        notes = services.process(NOTES, env={"SERVICE_DATABASE_URL": db.url})
        client = services.client(notes.url)
        assert not client.health("readyz").ok
        db.start()
        assert client.health("readyz").ok
        assert client.methods.add("first")["id"] == 1


def test_the_password_may_come_from_a_file_of_its_own(tmp_path: Path) -> None:
    # As in Compose: the database and the service read one secret file.
    with postgres() as db, ServiceFactory() as services:
        secret = tmp_path / "db_password"
        secret.write_text(db.password + "\n", encoding="utf-8")
        notes = services.process(
            NOTES,
            env={
                "SERVICE_DATABASE_URL": db.url_without_password,
                "SERVICE_DATABASE_PASSWORD_FILE": str(secret),
            },
        )
        assert services.client(notes.url).methods.add("from a file")["text"] == "from a file"
        assert_no_secret(notes, db.password)


def serve(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    return subprocess.run(
        [sys.executable, "-m", "service_template", *command],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_missing_or_malformed_url_stops_it_at_start_without_showing_the_value() -> None:
    missing = serve({}, "serve", NOTES, "--port", "0")
    assert missing.returncode == 2, missing
    assert "SERVICE_DATABASE_URL: required, not set" in missing.stderr
    bad = serve({"SERVICE_DATABASE_URL": "mysql://u:hunter2@db/x"}, "serve", NOTES, "--port", "0")
    assert bad.returncode == 2, bad
    assert "database_url: not a postgresql://user@host/db URL" in bad.stderr
    assert "hunter2" not in bad.stderr + bad.stdout
    assert "Traceback" not in missing.stderr + bad.stderr


def test_config_shows_the_database_settings_masked() -> None:
    url = "postgresql://notes:s3cret-pw@db:5432/notes"
    shown = serve({"SERVICE_DATABASE_URL": url}, "config", NOTES)
    assert shown.returncode == 0, shown
    assert "s3cret-pw" not in shown.stdout
    assert "database_url" in shown.stdout
    assert "***" in shown.stdout
