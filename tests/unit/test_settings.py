"""The settings mechanism: a setting declared once, as a typed field, read like the runtime's."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest

from service_template import MicroService, Secret, Settings, StartupError, setting
from service_template.errors import ConfigError
from service_template.settings import BaseSettings
from service_template.settings.values import parser_for

URL = "postgresql://app:hunter2-secret@db:5432/app"


class AppSettings(Settings):
    database_url: Secret = setting(help="database URL")
    replicas: list[str] = setting(factory=list, help="read replicas")
    ratio: float = setting(default=0.5, low=0, high=1, help="a fraction")
    mode: str = setting(default="fast", choices=("fast", "safe"), help="how")
    labels: dict[str, int] = setting(factory=dict, help="name=number pairs")
    nickname: str | None = setting(default=None, help="optional text")


def problems(environ: dict[str, str], cls: type[BaseSettings] = AppSettings) -> list[str]:
    with pytest.raises(ConfigError) as info:
        cls.load(environ)
    return info.value.problems


def test_a_subclass_adds_settings_read_from_the_same_prefix() -> None:
    loaded = AppSettings.load(
        {
            "SERVICE_DATABASE_URL": URL,
            "SERVICE_REPLICAS": "r1, r2,",
            "SERVICE_RATIO": "0.25",
            "SERVICE_MODE": "SAFE",
            "SERVICE_LABELS": "a=1,b=2",
            "SERVICE_PORT": "9000",
        }
    )
    assert loaded.database_url.reveal() == URL
    assert loaded.replicas == ["r1", "r2"]
    assert (loaded.ratio, loaded.mode, loaded.labels) == (0.25, "safe", {"a": 1, "b": 2})
    assert (loaded.port, loaded.nickname) == (9000, None)


def test_a_setting_without_default_is_required() -> None:
    assert problems({}) == ["SERVICE_DATABASE_URL: required, not set"]


def test_bad_values_of_own_settings_are_reported_with_the_runtimes_at_once() -> None:
    found = problems(
        {
            "SERVICE_DATABASE_URL": URL,
            "SERVICE_RATIO": "2",
            "SERVICE_MODE": "slow",
            "SERVICE_LABELS": "a=x",
            "SERVICE_MAX_BATCH": "0",
            "SERVICE_RATOI": "1",
        }
    )
    assert sorted(found) == [
        "SERVICE_LABELS='a=x': a: not an integer",
        "SERVICE_MAX_BATCH='0': must be >= 1",
        "SERVICE_MODE='slow': must be one of fast, safe",
        "SERVICE_RATIO='2': must be between 0 and 1",
        "SERVICE_RATOI: unknown setting (did you mean SERVICE_RATIO?)",
    ]


def test_a_secret_setting_is_never_shown_and_may_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "url"
    path.write_text(URL + "\n")
    loaded = AppSettings.load({"SERVICE_DATABASE_URL_FILE": str(path)})
    assert loaded.database_url.reveal() == URL
    assert loaded.masked()["database_url"] == "***"
    assert "hunter2" not in repr(loaded)
    with pytest.raises(ConfigError) as info:
        AppSettings.load({"SERVICE_DATABASE_URL": URL, "SERVICE_RATIO": "x"}, overrides={"x": 1})
    assert "hunter2" not in str(info.value)
    assert "SERVICE_DATABASE_URL_FILE" in AppSettings.known_env_vars()


def test_the_table_lists_own_settings_with_required_and_file_rows() -> None:
    table = AppSettings.env_table()
    assert "| `database_url` | `SERVICE_DATABASE_URL` | required | database URL |" in table
    assert "| `ratio` | `SERVICE_RATIO` | `0.5` | a fraction |" in table
    assert "| | `SERVICE_DATABASE_URL_FILE` | unset | file holding `database_url`" in table


def test_a_type_without_a_parser_is_refused_when_the_class_is_made() -> None:
    with pytest.raises(TypeError, match="give the setting a parse= function"):

        class Odd(BaseSettings):
            when: complex = setting(default=1j, help="no parser for this")

    class Parsed(BaseSettings):
        when: complex = setting(default=1j, parse=complex, help="its own parser")

    assert Parsed.load({"SERVICE_WHEN": "2+3j"}).when == 2 + 3j


def test_a_setting_named_like_a_secrets_file_variable_is_refused() -> None:
    with pytest.raises(TypeError, match="SERVICE_KEY_FILE would name two settings"):

        class Clash(BaseSettings):
            key: Secret | None = setting(default=None, help="a key")
            key_file: str | None = setting(default=None, help="clashes with SERVICE_KEY_FILE")


@pytest.mark.parametrize(
    ("hint", "raw", "expected"),
    [
        (int, "7", 7),
        (float, "1.5", 1.5),
        (bool, "yes", True),
        (str, " x ", "x"),
        (int | None, "", None),
        (tuple[str, ...], "a,b", ("a", "b")),
        (frozenset[str], ["b", "a"], frozenset({"a", "b"})),
        (dict[str, bool], "a=on", {"a": True}),
    ],
)
def test_the_type_picks_the_parser(hint: object, raw: object, expected: object) -> None:
    assert parser_for(hint)(raw) == expected


def test_peek_reads_one_setting_before_the_class_is_known() -> None:
    environ = {"SERVICE_TARGET": "pkg.mod:Svc", "SERVICE_DATABASE_URL": URL}
    assert Settings.peek("target", environ) == ("pkg.mod:Svc", [])


def test_a_service_loads_its_settings_class_with_its_class_attributes() -> None:
    class App(MicroService):
        name = "app"
        port = 5000
        settings_class = AppSettings

    loaded = App.load_settings({"SERVICE_DATABASE_URL": URL})
    assert isinstance(loaded, AppSettings)
    assert (loaded.name, loaded.port) == ("app", 5000)


def test_a_settings_class_that_is_not_settings_is_refused() -> None:
    class Wrong(MicroService):
        settings_class = dict  # type: ignore[assignment]

    with pytest.raises(StartupError, match=r"must be a subclass of service_template\.Settings"):
        Wrong.load_settings({})


def test_the_metrics_registry_is_given_when_the_service_starts() -> None:
    with pytest.raises(RuntimeError, match="use it in lifespan or on_start"):
        _ = MicroService(Settings()).metrics_registry


class RangeSettings(BaseSettings):
    low: int = setting(default=0, help="bottom")
    high: int = setting(default=10, help="top")

    def check(self) -> Iterable[str]:
        yield from super().check()
        if self.low > self.high:
            yield f"low: {self.low} is above high ({self.high})"


def test_check_reports_how_values_fit_together_once_each_is_good() -> None:
    assert RangeSettings.load({"SERVICE_LOW": "3"}).low == 3
    assert problems({"SERVICE_LOW": "30"}, RangeSettings) == ["low: 30 is above high (10)"]
    # A bad value is reported first: relations between values are judged only once all parse.
    assert problems({"SERVICE_LOW": "30", "SERVICE_HIGH": "x"}, RangeSettings) == [
        "SERVICE_HIGH='x': not an integer"
    ]
