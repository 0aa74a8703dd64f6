"""Settings: flags, environment, YAML file, class defaults by precedence; all problems at once."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from service_template.config import (
    DEFAULT_REDACT_PARAMS,
    KNOWN_ENV_VARS,
    ConfigError,
    Secret,
    Settings,
    env_table_markdown,
)

TOKEN = "s3cr3t-token-value"


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(**kwargs: Any) -> list[str]:
    kwargs.setdefault("environ", {})
    with pytest.raises(ConfigError) as info:
        Settings.load(**kwargs)
    return info.value.problems


# --- defaults and precedence -------------------------------------------------------------------


def test_an_empty_environment_gives_the_built_in_defaults() -> None:
    settings = Settings.load({})
    assert settings == Settings()
    assert (settings.name, settings.host, settings.port) == (None, "127.0.0.1", 8000)
    assert settings.api_token is None
    assert settings.log_level == "INFO"
    assert settings.max_body_bytes == 1048576
    assert settings.call_timeout == 30.0
    assert settings.method_timeouts == {}
    assert settings.peers == {}
    assert settings.redact_params == DEFAULT_REDACT_PARAMS


@pytest.mark.parametrize(
    ("use_defaults", "use_file", "use_env", "use_flag"),
    list(itertools.product([False, True], repeat=4)),
)
def test_the_highest_precedence_source_given_wins(
    tmp_path: Path, use_defaults: bool, use_file: bool, use_env: bool, use_flag: bool
) -> None:
    # Each source gives its own port; the expected one is that of the highest source present.
    expected = 8000
    defaults, config_file, environ, overrides = None, None, {}, None
    if use_defaults:
        defaults, expected = {"port": 1001}, 1001
    if use_file:
        config_file, expected = write(tmp_path, "port: 1002\n"), 1002
    if use_env:
        environ, expected = {"SERVICE_PORT": "1003"}, 1003
    if use_flag:
        overrides, expected = {"port": 1004}, 1004
    settings = Settings.load(environ, config_file, overrides=overrides, defaults=defaults)
    assert settings.port == expected


def test_sources_combine_field_by_field(tmp_path: Path) -> None:
    settings = Settings.load(
        {"SERVICE_HOST": "0.0.0.0"},
        write(tmp_path, "max_batch: 7\nhost: 10.0.0.1\n"),
        overrides={"workers": 3},
        defaults={"name": "hello", "port": 5000},
    )
    assert (settings.name, settings.host, settings.port) == ("hello", "0.0.0.0", 5000)
    assert (settings.max_batch, settings.workers) == (7, 3)


def test_none_values_in_flags_and_defaults_mean_not_set() -> None:
    settings = Settings.load(
        {"SERVICE_PORT": "9000"},
        overrides={"port": None, "host": None},
        defaults={"name": None, "host": "0.0.0.0"},
    )
    assert (settings.name, settings.host, settings.port) == (None, "0.0.0.0", 9000)


def test_the_file_named_by_service_config_file_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, "port: 1234\n")
    assert Settings.load({"SERVICE_CONFIG_FILE": str(path)}).port == 1234


def test_the_config_file_argument_beats_service_config_file(tmp_path: Path) -> None:
    from_env = write(tmp_path, "port: 1111\n", "env.yaml")
    from_flag = write(tmp_path, "port: 2222\n", "flag.yaml")
    settings = Settings.load({"SERVICE_CONFIG_FILE": str(from_env)}, str(from_flag))
    assert settings.port == 2222


def test_an_empty_variable_leaves_an_optional_setting_to_lower_sources(tmp_path: Path) -> None:
    # Compose files pass "${TARGET:-}", which sets the variable to an empty string.
    path = write(tmp_path, "target: pkg.mod:Svc\n")
    settings = Settings.load({"SERVICE_TARGET": "", "SERVICE_NAME": ""}, path)
    assert settings.target == "pkg.mod:Svc"
    assert settings.name is None


def test_variables_without_the_prefix_are_ignored() -> None:
    settings = Settings.load({"PATH": "/bin", "HOME": "/root", "PORT": "x", "service_port": "x"})
    assert settings.port == 8000


# --- accepted value forms ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", True),
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("no", False),
        ("OFF", False),
    ],
)
def test_booleans_accept_the_usual_spellings(text: str, expected: bool) -> None:
    assert Settings.load({"SERVICE_DEBUG": text}).debug is expected


def test_text_values_are_read_the_same_from_every_source(tmp_path: Path) -> None:
    from_env = Settings.load({"SERVICE_MAX_BATCH": "5", "SERVICE_DEBUG": "yes"})
    from_file = Settings.load({}, write(tmp_path, "max_batch: '5'\ndebug: 'yes'\n"))
    from_flags = Settings.load({}, overrides={"max_batch": "5", "debug": "yes"})
    assert from_env == from_file == from_flags
    assert (from_env.max_batch, from_env.debug) == (5, True)


def test_yaml_native_types_are_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "port: 0\ndebug: true\ncall_timeout: 5\ndrain_timeout: 0.5\n"
        "peers:\n  hello: http://hello:8000/api\n"
        "method_timeouts:\n  slow: 120\n  users.get: 2.5\n"
        "redact_params: [SSN, pin]\n",
    )
    settings = Settings.load({}, path)
    assert (settings.port, settings.debug) == (0, True)
    assert settings.call_timeout == 5.0
    assert isinstance(settings.call_timeout, float)
    assert settings.drain_timeout == 0.5
    assert settings.peers == {"hello": "http://hello:8000/api"}
    assert settings.method_timeouts == {"slow": 120.0, "users.get": 2.5}
    assert settings.redact_params == DEFAULT_REDACT_PARAMS | {"ssn", "pin"}


def test_log_level_is_case_insensitive() -> None:
    assert Settings.load({"SERVICE_LOG_LEVEL": "warning"}).log_level == "WARNING"


def test_yaml_merge_keys_work_and_may_be_overridden(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "peers:\n  <<: &base {hello: 'http://a:1/api'}\n  hello: 'http://b:2/api'\n",
    )
    assert Settings.load({}, path).peers == {"hello": "http://b:2/api"}


# --- peers, method timeouts, redaction ----------------------------------------------------------


def test_peers_are_parsed_from_the_environment_form() -> None:
    settings = Settings.load(
        {"SERVICE_PEERS": "hello=http://hello:8000/api, compute=https://compute:8443/api,"}
    )
    assert settings.peers == {
        "hello": "http://hello:8000/api",
        "compute": "https://compute:8443/api",
    }


def test_a_peer_url_may_contain_an_equals_sign() -> None:
    settings = Settings.load({"SERVICE_PEERS": "search=http://search:8000/api?x=1"})
    assert settings.peers == {"search": "http://search:8000/api?x=1"}


def test_method_timeouts_are_parsed_and_used_by_timeout_for() -> None:
    settings = Settings.load(
        {"SERVICE_METHOD_TIMEOUTS": "a=1.5,users.get=3", "SERVICE_CALL_TIMEOUT": "10"}
    )
    assert settings.method_timeouts == {"a": 1.5, "users.get": 3.0}
    assert settings.timeout_for("a") == 1.5
    assert settings.timeout_for("users.get") == 3.0
    assert settings.timeout_for("other") == 10.0


def test_redact_params_from_the_environment_add_to_the_defaults() -> None:
    settings = Settings.load({"SERVICE_REDACT_PARAMS": "SSN, card_number,"})
    assert settings.redact_params == DEFAULT_REDACT_PARAMS | {"ssn", "card_number"}


# --- bad values ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("SERVICE_PORT", "abc", "SERVICE_PORT='abc': not an integer"),
        ("SERVICE_PORT", "8000.5", "SERVICE_PORT='8000.5': not an integer"),
        ("SERVICE_PORT", "70000", "SERVICE_PORT='70000': must be between 0 and 65535"),
        ("SERVICE_PORT", "-1", "SERVICE_PORT='-1': must be between 0 and 65535"),
        ("SERVICE_MAX_BATCH", "0", "SERVICE_MAX_BATCH='0': must be >= 1"),
        ("SERVICE_MAX_BODY_BYTES", "1023", "SERVICE_MAX_BODY_BYTES='1023': must be >= 1024"),
        ("SERVICE_MAX_CONCURRENCY", "0", "SERVICE_MAX_CONCURRENCY='0': must be >= 1"),
        ("SERVICE_THREAD_POOL_SIZE", "0", "SERVICE_THREAD_POOL_SIZE='0': must be >= 1"),
        ("SERVICE_WORKERS", "0", "SERVICE_WORKERS='0': must be >= 1"),
        ("SERVICE_CALL_TIMEOUT", "soon", "SERVICE_CALL_TIMEOUT='soon': not a number"),
        ("SERVICE_CALL_TIMEOUT", "0", "must be a positive number of seconds"),
        ("SERVICE_BODY_TIMEOUT", "-5", "must be a positive number of seconds"),
        ("SERVICE_IDLE_TIMEOUT", "nan", "must be a positive number of seconds"),
        ("SERVICE_DRAIN_TIMEOUT", "inf", "must be a positive number of seconds"),
        ("SERVICE_READINESS_TIMEOUT", "", "SERVICE_READINESS_TIMEOUT='': not a number"),
        ("SERVICE_DEBUG", "maybe", "SERVICE_DEBUG='maybe': not a boolean"),
        ("SERVICE_METRICS_ENABLED", "2", "SERVICE_METRICS_ENABLED='2': not a boolean"),
        ("SERVICE_LOG_LEVEL", "TRACE", "must be one of DEBUG, INFO, WARNING, ERROR"),
        ("SERVICE_HOST", "  ", "SERVICE_HOST='  ': must not be empty"),
        ("SERVICE_ACCESSIBLE_AT", "hello:8000/api", "not an http(s) URL"),
        ("SERVICE_PEERS", "hello=ftp://h/api", "hello: not an http(s) URL"),
        ("SERVICE_PEERS", "hello=http://[::1/api", "hello: not an http(s) URL"),
        ("SERVICE_PEERS", "hello", "'hello' is not name=value"),
        ("SERVICE_PEERS", "=http://x/api", "bad name ''"),
        ("SERVICE_METHOD_TIMEOUTS", "a=0", "a: must be a positive number of seconds"),
        ("SERVICE_METHOD_TIMEOUTS", "a=fast", "a: not a number"),
        ("SERVICE_METHOD_TIMEOUTS", "a=1,a=2", "'a' given twice"),
    ],
)
def test_a_bad_environment_value_is_reported_with_its_variable(
    name: str, value: str, message: str
) -> None:
    problems = problems_of(environ={name: value})
    assert len(problems) == 1
    assert message in problems[0]
    assert problems[0].startswith(f"{name}={value!r}: ")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("port: true", "port: not an integer (bool)"),
        ("port: 1.5", "port: not an integer (float)"),
        ("port: [1]", "port: not an integer (list)"),
        ("max_batch: 0", "max_batch: must be >= 1"),
        ("debug: 3", "debug: not a boolean (use 1/0, true/false, yes/no or on/off)"),
        ("call_timeout: true", "call_timeout: not a number (bool)"),
        ("call_timeout: -1", "call_timeout: must be a positive number of seconds"),
        ("host: 12", "host: expected text, got int"),
        ("log_level: 1", "log_level: expected text, got int"),
        ("api_token: 123", "api_token: expected text, got int"),
        ("peers: [a, b]", "peers: expected a mapping or 'name=value,...', got list"),
        ("peers: {1: 'http://x/api'}", "peers: bad name 1"),
        ("method_timeouts: {a: '1s'}", "method_timeouts: a: not a number"),
        ("redact_params: 5", "redact_params: expected a list of names, got int"),
        ("redact_params: [a, 1]", "redact_params: expected a list of names"),
    ],
)
def test_a_value_of_the_wrong_type_in_the_file_is_reported(
    tmp_path: Path, line: str, message: str
) -> None:
    path = write(tmp_path, line + "\n")
    assert problems_of(config_file=path) == [f"{path}: {message}"]


def test_a_bad_flag_value_names_the_flag() -> None:
    assert problems_of(overrides={"max_batch": 0}) == ["--max-batch=0: must be >= 1"]


def test_a_bad_class_attribute_names_the_attribute() -> None:
    assert problems_of(defaults={"port": "eighty"}) == [
        "class attribute port='eighty': not an integer"
    ]


def test_a_bad_value_is_reported_even_when_a_higher_source_overrides_it(tmp_path: Path) -> None:
    path = write(tmp_path, "port: http\n")
    assert problems_of(environ={"SERVICE_PORT": "9000"}, config_file=path) == [
        f"{path}: port: not an integer"
    ]


def test_unknown_flags_and_class_attributes_are_reported() -> None:
    problems = problems_of(overrides={"prot": 1}, defaults={"hots": "x"})
    assert problems == [
        "class attribute hots: unknown setting (did you mean host?)",
        "--prot: unknown setting (did you mean port?)",
    ]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, "max_batch: 0\nworkerz: 2\n")
    with pytest.raises(ConfigError) as info:
        Settings.load(
            {"SERVICE_PORT": "abc", "SERVICE_DEBGU": "1", "SERVICE_LOG_LEVEL": "LOUD"},
            path,
            overrides={"call_timeout": -1},
        )
    problems = info.value.problems
    assert len(problems) == 6
    text = str(info.value)
    lines = text.splitlines()
    assert lines[0] == "invalid configuration (6 problems):"
    assert [line.strip() for line in lines[1:]] == problems
    for expected in [
        f"{path}: max_batch: must be >= 1",
        f"{path}: unknown setting 'workerz' (did you mean workers?)",
        "SERVICE_PORT='abc': not an integer",
        "SERVICE_DEBGU: unknown setting (did you mean SERVICE_DEBUG?)",
        "SERVICE_LOG_LEVEL='LOUD': must be one of DEBUG, INFO, WARNING, ERROR",
        "--call-timeout=-1: must be a positive number of seconds",
    ]:
        assert expected in problems


def test_config_error_is_a_value_error_with_a_singular_header() -> None:
    error = ConfigError(["SERVICE_PORT='abc': not an integer"])
    assert isinstance(error, ValueError)
    assert str(error) == "invalid configuration (1 problem):\n  SERVICE_PORT='abc': not an integer"


# --- unknown environment variables ---------------------------------------------------------------


def test_a_misspelt_variable_is_reported_with_the_closest_name() -> None:
    assert problems_of(environ={"SERVICE_PROT": "9000"}) == [
        "SERVICE_PROT: unknown setting (did you mean SERVICE_PORT?)"
    ]


def test_an_unknown_variable_unlike_any_name_gets_no_suggestion() -> None:
    assert problems_of(environ={"SERVICE_ZQXJ": "1"}) == ["SERVICE_ZQXJ: unknown setting"]


def test_the_value_of_an_unknown_variable_is_not_shown() -> None:
    problems = problems_of(environ={"SERVICE_API_TOKN": TOKEN})
    assert problems == ["SERVICE_API_TOKN: unknown setting (did you mean SERVICE_API_TOKEN?)"]


def test_known_env_vars_lists_every_field_the_file_variables_and_the_client_token() -> None:
    names = Settings.env_names()
    assert names["port"] == "SERVICE_PORT"
    assert names["max_body_bytes"] == "SERVICE_MAX_BODY_BYTES"
    assert set(names) == {f.name for f in dataclasses.fields(Settings)}
    extra = {"SERVICE_API_TOKEN_FILE", "SERVICE_CONFIG_FILE", "SERVICE_CLIENT_TOKEN"}
    assert set(names.values()) | extra == KNOWN_ENV_VARS


def test_every_known_variable_is_accepted(tmp_path: Path) -> None:
    token_file = write(tmp_path, TOKEN, "token")
    config_file = write(tmp_path, "{}\n")
    values = {
        "SERVICE_NAME": "svc",
        "SERVICE_HOST": "0.0.0.0",
        "SERVICE_PORT": "8000",
        "SERVICE_ACCESSIBLE_AT": "http://svc:8000/api",
        "SERVICE_TARGET": "pkg.mod:Svc",
        "SERVICE_API_TOKEN_FILE": str(token_file),
        "SERVICE_CONFIG_FILE": str(config_file),
        "SERVICE_CLIENT_TOKEN": "read by the CLI, ignored by services",
        "SERVICE_DEBUG": "0",
        "SERVICE_PUBLISH_PRIVATE_METHODS": "1",
        "SERVICE_LOG_LEVEL": "DEBUG",
        "SERVICE_LOG_FORMAT": "json",
        "SERVICE_LOG_CALLS": "1",
        "SERVICE_MAX_BODY_BYTES": "2048",
        "SERVICE_ROUTE_MAX_BODY_BYTES": "0",
        "SERVICE_MAX_HEADER_BYTES": "2048",
        "SERVICE_MAX_RESPONSE_BYTES": "2048",
        "SERVICE_MAX_CONNECTIONS": "10",
        "SERVICE_MAX_BATCH": "10",
        "SERVICE_MAX_PIPELINED": "2",
        "SERVICE_WRITE_BUFFER_BYTES": "8192",
        "SERVICE_MAX_UNSENT_BYTES": "2097152",
        "SERVICE_HEADER_TIMEOUT": "1",
        "SERVICE_MAX_CONTAINERS": "10",
        "SERVICE_BODY_TIMEOUT": "1",
        "SERVICE_IDLE_TIMEOUT": "1",
        "SERVICE_WRITE_TIMEOUT": "1",
        "SERVICE_CALL_TIMEOUT": "1",
        "SERVICE_METHOD_TIMEOUTS": "a=1",
        "SERVICE_MAX_CONCURRENCY": "1",
        "SERVICE_THREAD_POOL_SIZE": "1",
        "SERVICE_DRAIN_TIMEOUT": "1",
        "SERVICE_READINESS_TIMEOUT": "1",
        "SERVICE_METRICS_ENABLED": "0",
        "SERVICE_WORKERS": "2",
        "SERVICE_PEERS": "a=http://a/api",
        "SERVICE_PEER_TOKEN_FILES": f"a={token_file}",
        "SERVICE_ADMIN_PORT": "9000",
        "SERVICE_REDACT_PARAMS": "x",
        "SERVICE_CORS_ORIGINS": "https://app.example.com",
        "SERVICE_CORS_ALLOW_CREDENTIALS": "1",
        "SERVICE_CORS_MAX_AGE": "60",
    }
    assert set(values) == KNOWN_ENV_VARS - {"SERVICE_API_TOKEN"}
    settings = Settings.load(values)
    assert settings.workers == 2
    assert settings.api_token is not None


# --- YAML file problems ---------------------------------------------------------------------------


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert problems_of(config_file=path) == [f"{path}: cannot read: No such file or directory"]


def test_a_directory_as_file_is_reported(tmp_path: Path) -> None:
    assert problems_of(config_file=tmp_path) == [f"{tmp_path}: cannot read: Is a directory"]


def test_a_file_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_bytes(b"name: \xff\xfe\n")
    assert problems_of(config_file=path) == [f"{path}: not UTF-8 text"]


def test_malformed_yaml_is_reported_with_its_position_but_not_its_content(tmp_path: Path) -> None:
    path = write(tmp_path, f"api_token: {TOKEN}\nport: [1, 2\n")
    problems = problems_of(config_file=path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: invalid YAML at line ")
    assert TOKEN not in problems[0]


def test_a_duplicate_key_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "port: 1\nhost: x\nport: 2\n")
    assert problems_of(config_file=path) == [
        f"{path}: invalid YAML at line 3, column 1: duplicate key 'port'"
    ]


@pytest.mark.parametrize(("text", "kind"), [("- 1\n- 2\n", "list"), ("just text\n", "str")])
def test_a_top_level_that_is_not_a_mapping_is_reported(
    tmp_path: Path, text: str, kind: str
) -> None:
    path = write(tmp_path, text)
    assert problems_of(config_file=path) == [
        f"{path}: top level must be a mapping of settings, got {kind}"
    ]


def test_an_unknown_key_is_reported_with_the_closest_name(tmp_path: Path) -> None:
    path = write(tmp_path, "max_bacth: 3\nzzz: 1\n")
    assert problems_of(config_file=path) == [
        f"{path}: unknown setting 'max_bacth' (did you mean max_batch?)",
        f"{path}: unknown setting 'zzz'",
    ]


def test_an_empty_file_and_null_values_set_nothing(tmp_path: Path) -> None:
    assert Settings.load({}, write(tmp_path, "", "empty.yaml")) == Settings()
    nulls = write(tmp_path, "port:\nname: null\n", "nulls.yaml")
    assert Settings.load({}, nulls, defaults={"port": 5000}).port == 5000


def test_unsafe_yaml_tags_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "name: !!python/object/apply:os.getcwd []\n")
    problems = problems_of(config_file=path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: invalid YAML at line 1")


# --- the API token --------------------------------------------------------------------------------


def test_the_token_comes_from_the_environment() -> None:
    settings = Settings.load({"SERVICE_API_TOKEN": TOKEN})
    assert settings.api_token is not None
    assert settings.api_token.reveal() == TOKEN


@pytest.mark.parametrize("ending", ["", "\n", "\r\n"])
def test_the_token_file_is_read_without_its_trailing_newline(tmp_path: Path, ending: str) -> None:
    path = write(tmp_path, f"  {TOKEN}{ending}", "token")
    settings = Settings.load({"SERVICE_API_TOKEN_FILE": str(path)})
    assert settings.api_token is not None
    assert settings.api_token.reveal() == f"  {TOKEN}"


def test_the_token_file_beats_the_yaml_file(tmp_path: Path) -> None:
    token_file = write(tmp_path, TOKEN, "token")
    config_file = write(tmp_path, "api_token: from-yaml\n")
    settings = Settings.load({"SERVICE_API_TOKEN_FILE": str(token_file)}, config_file)
    assert settings.api_token is not None
    assert settings.api_token.reveal() == TOKEN


def test_setting_both_the_token_and_its_file_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, TOKEN, "token")
    environ = {"SERVICE_API_TOKEN": TOKEN, "SERVICE_API_TOKEN_FILE": str(path)}
    assert problems_of(environ=environ) == [
        "SERVICE_API_TOKEN and SERVICE_API_TOKEN_FILE: set only one of them"
    ]


def test_a_missing_token_file_is_reported_by_its_path(tmp_path: Path) -> None:
    path = str(tmp_path / "absent")
    assert problems_of(environ={"SERVICE_API_TOKEN_FILE": path}) == [
        f"SERVICE_API_TOKEN_FILE={path!r}: cannot read: No such file or directory"
    ]


def test_an_empty_token_file_is_reported(tmp_path: Path) -> None:
    path = str(write(tmp_path, "\n", "token"))
    assert problems_of(environ={"SERVICE_API_TOKEN_FILE": path}) == [
        f"SERVICE_API_TOKEN_FILE={path!r}: must not be empty (leave it unset to run without it)"
    ]


def test_an_empty_token_variable_is_reported() -> None:
    # An empty token is most likely a secret that did not arrive: refuse to start without auth.
    assert problems_of(environ={"SERVICE_API_TOKEN": ""}) == [
        "SERVICE_API_TOKEN: must not be empty (leave it unset to run without it)"
    ]


def test_a_secret_given_as_a_flag_is_kept() -> None:
    secret = Secret(TOKEN)
    assert Settings.load({}, overrides={"api_token": secret}).api_token is secret


# --- secrets never leak ---------------------------------------------------------------------------


def test_a_secret_hides_its_value_in_every_rendering() -> None:
    secret = Secret(TOKEN)
    assert secret.reveal() == TOKEN
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}", repr([secret])):
        assert TOKEN not in shown
    assert str(secret) == "***"


def test_secrets_compare_by_identity_not_by_value() -> None:
    secret = Secret(TOKEN)
    assert secret == secret
    assert secret != Secret(TOKEN)


def test_the_token_never_appears_in_masked_repr_or_str() -> None:
    settings = Settings.load({"SERVICE_API_TOKEN": TOKEN})
    masked = settings.masked()
    assert masked["api_token"] == "***"
    for text in (repr(settings), str(settings), repr(masked), yaml.safe_dump(masked)):
        assert TOKEN not in text


def test_the_token_never_appears_in_a_config_error(tmp_path: Path) -> None:
    yaml_path = write(tmp_path, f"api_token: {TOKEN}\nport: x\n")
    token_path = write(tmp_path, TOKEN, "token")
    cases: list[dict[str, Any]] = [
        {"environ": {"SERVICE_API_TOKEN": TOKEN, "SERVICE_PORT": "x"}},
        {"environ": {"SERVICE_API_TOKEN": TOKEN, "SERVICE_API_TOKEN_FILE": str(token_path)}},
        {"environ": {}, "config_file": yaml_path},
        {"environ": {}, "overrides": {"api_token": TOKEN, "port": "x"}},
    ]
    for kwargs in cases:
        with pytest.raises(ConfigError) as info:
            Settings.load(**kwargs)
        assert TOKEN not in str(info.value)
        assert TOKEN not in repr(info.value)


def test_masked_is_plain_data() -> None:
    settings = Settings.load(
        {
            "SERVICE_PEERS": "hello=http://hello:8000/api",
            "SERVICE_METHOD_TIMEOUTS": "slow=90",
            "SERVICE_REDACT_PARAMS": "ssn",
        }
    )
    masked = settings.masked()
    assert masked["api_token"] is None
    assert masked["name"] is None
    assert masked["redact_params"] == sorted(DEFAULT_REDACT_PARAMS | {"ssn"})
    assert masked["peers"] == {"hello": "http://hello:8000/api"}
    assert masked["method_timeouts"] == {"slow": 90.0}
    assert set(masked) == {f.name for f in dataclasses.fields(Settings)}
    masked["peers"]["other"] = "http://x/api"
    assert "other" not in settings.peers
    assert yaml.safe_load(yaml.safe_dump(masked)) == masked


# --- the dataclass and the README table -----------------------------------------------------------


def test_settings_are_immutable() -> None:
    settings = Settings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.port = 1  # type: ignore[misc]


def test_every_runtime_setting_has_help_text() -> None:
    specs = Settings._settings_specs
    assert list(specs) == [f.name for f in dataclasses.fields(Settings)]
    assert all(spec.help for spec in specs.values())


def test_the_readme_configuration_table_is_the_generated_one() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert env_table_markdown() in readme


def test_the_readme_table_lists_every_variable_with_its_default() -> None:
    table = env_table_markdown()
    rows = table.splitlines()
    assert rows[0] == "| Setting | Environment variable | Default | Meaning |"
    assert len(rows) == 2 + len(KNOWN_ENV_VARS)
    for env in KNOWN_ENV_VARS:
        assert f"`{env}`" in table
    assert "| `port` | `SERVICE_PORT` | `8000` | " in table
    assert "| `debug` | `SERVICE_DEBUG` | `false` | " in table
    assert "| `peers` | `SERVICE_PEERS` | empty | " in table
    assert "| `name` | `SERVICE_NAME` | unset | " in table
