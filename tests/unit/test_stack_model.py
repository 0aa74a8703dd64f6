"""The stack orchestrator reads compose/compose.yaml as Compose would, and says what is wrong
with a broken one in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.stacklib import model, reader
from scripts.stacklib.errors import StackError
from scripts.stacklib.interpolate import InterpolationError, interpolate, read_env_file
from tests.conftest import REPO

# The tests' own stack, shaped like the template's example: these tests read the reader, not
# whatever services the project has (those are the definition's business).
COMPOSE_FILE = REPO / "tests" / "stackfixture" / "compose.yaml"


def load_text(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> model.Compose:
    path = tmp_path / "compose.yaml"
    path.write_text(text)
    return reader.load(path, environ or {}, "compose.yaml")


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(model.ComposeError) as caught:
        load_text(tmp_path, text)
    message = str(caught.value)
    assert "\n" not in message, "errors are one line"
    return message


# --- the template's own Compose file ------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> model.Compose:
    return reader.load(COMPOSE_FILE, {}, "compose.yaml")


def test_the_services_come_in_file_order(stack: model.Compose) -> None:
    assert list(stack.services) == ["greeter", "adder", "front", "prometheus"]


def test_template_services_are_told_apart_from_third_party_images(stack: model.Compose) -> None:
    ours = [name for name, s in stack.services.items() if stack.runs_template_image(s)]
    assert ours == ["greeter", "adder", "front"]
    assert stack.template_image == "service-template:latest"
    assert stack.services["greeter"].build is True
    assert stack.services["adder"].build is False


def test_commands_environment_and_merged_anchors_are_read(stack: model.Compose) -> None:
    front = stack.services["front"]
    assert front.command == ("serve", "tests.stackfixture.services:FrontService")
    assert front.environment["SERVICE_PEERS"] == (
        "greeter=http://greeter:8000/api,adder=http://adder:8000/api"
    )
    # From the x-environment anchor, with ${SERVICE_LOG_LEVEL:-INFO} at its default.
    assert front.environment["SERVICE_LOG_LEVEL"] == "INFO"
    assert front.environment["SERVICE_API_TOKEN_FILE"] == "/run/secrets/api_token"
    assert front.secrets == {"api_token": "/run/secrets/api_token"}


def test_dependencies_keep_their_condition(stack: model.Compose) -> None:
    assert stack.services["front"].depends_on == (
        model.Dependency("greeter", "service_healthy"),
        model.Dependency("adder", "service_healthy"),
    )


def test_ports_name_the_variables_that_choose_them(stack: model.Compose) -> None:
    (port,) = stack.services["front"].ports
    assert (port.host_ip, port.published, port.target) == ("127.0.0.1", "8080", 8000)
    assert port.variables == ("FRONT_BIND", "FRONT_PORT")


def test_healthcheck_timing_and_profiles_are_read(stack: model.Compose) -> None:
    check = stack.services["greeter"].healthcheck
    assert check == model.Healthcheck(interval=2.0, timeout=5.0, retries=3, start_period=30.0)
    assert check.patience() == 36.0
    assert stack.services["prometheus"].profiles == ("metrics",)
    assert stack.services["greeter"].stop_grace_period == 25.0


def test_an_unset_required_secret_file_is_kept_as_a_problem_not_an_error(
    stack: model.Compose,
) -> None:
    secret = stack.secrets["api_token"]
    assert secret.file is None
    assert secret.problem is not None and "API_TOKEN_FILE" in secret.problem


def test_the_environment_wins_over_defaults(tmp_path: Path) -> None:
    environ = {"SERVICE_LOG_LEVEL": "DEBUG", "API_TOKEN_FILE": "./secrets/token"}
    loaded = reader.load(COMPOSE_FILE, environ)
    assert loaded.services["greeter"].environment["SERVICE_LOG_LEVEL"] == "DEBUG"
    assert (
        loaded.secrets["api_token"].file
        == (REPO / "tests" / "stackfixture" / "secrets" / "token").resolve()
    )


def test_the_env_file_next_to_the_compose_file_gives_values_the_environment_does_not(
    tmp_path: Path,
) -> None:
    (tmp_path / ".env").write_text("# settings\nLEVEL=WARNING\nexport OTHER='quoted value'\n")
    text = "services:\n  a:\n    image: x\n    environment:\n      L: ${LEVEL}\n      O: ${OTHER}\n"
    assert load_text(tmp_path, text).services["a"].environment == {
        "L": "WARNING",
        "O": "quoted value",
    }
    assert load_text(tmp_path, text, {"LEVEL": "ERROR"}).services["a"].environment["L"] == "ERROR"


def test_list_form_environment_and_string_commands_are_read(tmp_path: Path) -> None:
    text = (
        "services:\n  a:\n    image: x\n    command: serve 'my module:Cls'\n"
        "    environment: [A=1, PASSED, MISSING]\n"
    )
    service = load_text(tmp_path, text, {"PASSED": "yes"}).services["a"]
    assert service.command == ("serve", "my module:Cls")
    assert service.environment == {"A": "1", "PASSED": "yes"}


# --- interpolation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "environ", "expected"),
    [
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A-d}", {}, "d"),
        ("${A:-d}", {"A": "v"}, "v"),
        ("$A/${A}", {"A": "v"}, "v/v"),
        ("cost $$5", {}, "cost $5"),
        ("${A:+set}", {"A": "v"}, "set"),
        ("${A:+set}", {"A": ""}, ""),
        ("${A+set}", {"A": ""}, "set"),
        ("${A:-${B:-inner}}", {}, "inner"),
        ("${UNSET}", {}, ""),
    ],
)
def test_interpolation_follows_compose(text: str, environ: dict[str, str], expected: str) -> None:
    assert interpolate(text, environ) == expected


def test_a_required_variable_names_itself_and_its_message() -> None:
    with pytest.raises(InterpolationError, match=r"variable TOKEN is missing a value: set it"):
        interpolate("${TOKEN:?set it}", {"TOKEN": ""})


@pytest.mark.parametrize("text", ["${A", "$-", "${-x}"])
def test_malformed_expressions_are_errors(text: str) -> None:
    with pytest.raises(InterpolationError):
        interpolate(text, {})


def test_unset_variables_without_default_are_reported() -> None:
    unset: set[str] = set()
    interpolate("${A}${B:-x}$C", {"A": "1"}, unset)
    assert unset == {"C"}


def test_a_missing_env_file_gives_no_values() -> None:
    assert read_env_file(Path("/nonexistent/.env")) == {}


# --- one-line errors ----------------------------------------------------------------------------


def test_malformed_yaml_names_the_file_line_and_column(tmp_path: Path) -> None:
    message = error_of(tmp_path, "services:\n  a:\n    image: [x\n")
    assert message.startswith("compose.yaml is not valid YAML (line ")
    assert "column" in message


def test_a_file_without_services_is_refused(tmp_path: Path) -> None:
    assert "services: expected a mapping of at least one service" in error_of(tmp_path, "x: 1\n")


def test_an_unknown_dependency_is_named_with_the_services_there_are(tmp_path: Path) -> None:
    text = "services:\n  hello:\n    image: x\n  gateway:\n    image: x\n    depends_on: [helo]\n"
    assert error_of(tmp_path, text) == (
        "compose.yaml: services.gateway.depends_on: unknown service 'helo' "
        "(services: hello, gateway)"
    )


def test_an_unknown_condition_lists_the_valid_ones(tmp_path: Path) -> None:
    text = (
        "services:\n  a:\n    image: x\n  b:\n    image: x\n    depends_on:\n"
        "      a:\n        condition: healthy\n"
    )
    assert "services.b.depends_on.a.condition: must be one of service_started" in error_of(
        tmp_path, text
    )


def test_several_problems_are_counted_after_the_first(tmp_path: Path) -> None:
    text = "services:\n  a: {}\n  b:\n    image: x\n    healthcheck: {interval: soon}\n"
    message = error_of(tmp_path, text)
    assert message.startswith("compose.yaml: services.a: needs an image or a build")
    assert message.endswith("(and 1 more problem)")


def test_an_unknown_secret_is_named_with_the_secrets_there_are(tmp_path: Path) -> None:
    text = "services:\n  a:\n    image: x\n    secrets: [token]\n"
    assert error_of(tmp_path, text) == (
        "compose.yaml: services.a.secrets: unknown secret 'token' (top-level secrets: none)"
    )


def test_a_port_that_is_not_a_number_is_reported(tmp_path: Path) -> None:
    text = "services:\n  a:\n    image: x\n    ports: ['8080:http']\n"
    assert "services.a.ports[0]: the container port must be a number, got 'http'" in error_of(
        tmp_path, text
    )


def test_asking_for_an_unknown_service_lists_the_known_ones(stack: model.Compose) -> None:
    with pytest.raises(StackError, match=r"no service named 'gretter' .*greeter, adder"):
        stack.get("gretter")


@pytest.mark.parametrize(
    ("text", "seconds"), [("2s", 2.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), (3, 3.0)]
)
def test_durations_read_as_compose_writes_them(text: str | int, seconds: float) -> None:
    assert reader.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "2 s", "s", "1x"])
def test_malformed_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        reader.parse_duration(text)
