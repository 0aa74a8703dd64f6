"""The notes example's settings and shape, without a database (tests/integration has one)."""

from pathlib import Path

import pytest

from service_template.settings import ConfigError
from services.notes import NotesService, NotesSettings

URL = "postgresql://notes:pa55-word@db:5432/notes"


def test_notes_exposes_its_four_calls_publicly() -> None:
    service = NotesService(NotesSettings.load({"SERVICE_DATABASE_URL": URL}))
    registry = service.build_registry()
    assert sorted(registry) == ["add", "delete", "get", "recent"]
    assert not [name for name, m in registry.items() if m.requires_auth]


def test_the_url_is_a_secret_shown_nowhere() -> None:
    settings = NotesSettings.load({"SERVICE_DATABASE_URL": URL})
    assert settings.database_url.reveal() == URL
    assert "pa55-word" not in repr(settings) + str(settings.masked())
    assert settings.masked()["database_url"] == "***"


def test_the_url_and_password_may_come_from_files(tmp_path: Path) -> None:
    (tmp_path / "url").write_text("postgresql://notes@db/notes\n")
    (tmp_path / "password").write_text("pa55-word\n")
    settings = NotesSettings.load(
        {
            "SERVICE_DATABASE_URL_FILE": str(tmp_path / "url"),
            "SERVICE_DATABASE_PASSWORD_FILE": str(tmp_path / "password"),
        }
    )
    assert settings.database_url.reveal() == "postgresql://notes@db/notes"
    assert settings.database_password is not None
    assert settings.database_password.reveal() == "pa55-word"


@pytest.mark.parametrize(
    "url", ["mysql://u:pa55-word@db/x", "postgresql:///only-a-path", "pa55-word", "http://db"]
)
def test_a_url_that_is_not_postgresql_is_refused_without_being_quoted(url: str) -> None:
    with pytest.raises(ConfigError) as caught:
        NotesSettings.load({"SERVICE_DATABASE_URL": url})
    assert "database_url: not a postgresql://user@host/db URL" in str(caught.value)
    assert "pa55-word" not in str(caught.value)


def test_the_url_is_required() -> None:
    with pytest.raises(ConfigError) as caught:
        NotesSettings.load({})
    assert "SERVICE_DATABASE_URL: required, not set" in str(caught.value)
