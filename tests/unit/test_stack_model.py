"""The orchestrator's model of a Compose file is Compose's own reading of it (rendered.py), and
what Compose refuses reaches the user as one line."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from scripts.stacklib import model, rendered
from scripts.stacklib.docker_backend import DockerBackend
from scripts.stacklib.errors import StackError
from scripts.stacklib.state import Paths, State
from scripts.stacklib.ui import UI
from tests.conftest import REPO

# The tests' own stack, shaped like the template's example: these tests read the model, not
# whatever services the project has (those are the definition's business).
COMPOSE_FILE = REPO / "tests" / "stackfixture" / "compose.yaml"


def load_text(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> model.Compose:
    path = tmp_path / "compose.yaml"
    path.write_text(text)
    return rendered.read(path, environ or {})


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(model.ComposeError) as caught:
        load_text(tmp_path, text)
    message = str(caught.value)
    assert "\n" not in message, "errors are one line"
    return message


# --- the tests' own Compose file ----------------------------------------------------------------


@pytest.fixture(scope="module")
def stack() -> model.Compose:
    return rendered.read(COMPOSE_FILE, {})


def test_every_service_is_there_whatever_its_profile(stack: model.Compose) -> None:
    assert sorted(stack.services) == ["adder", "front", "greeter", "prometheus"]
    assert stack.project_name == "stack-fixture"


def test_template_services_are_told_apart_from_third_party_images(stack: model.Compose) -> None:
    ours = sorted(name for name, s in stack.services.items() if stack.runs_template_image(s))
    assert ours == ["adder", "front", "greeter"]
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
    assert sorted(stack.services["front"].depends_on, key=lambda d: d.service) == [
        model.Dependency("adder", "service_healthy"),
        model.Dependency("greeter", "service_healthy"),
    ]


def test_ports_are_read_with_the_variables_that_choose_them(stack: model.Compose) -> None:
    (port,) = stack.services["front"].ports
    assert (port.host_ip, port.published, port.target) == ("127.0.0.1", "8080", 8000)
    # From Compose's rendering before interpolation: what to set when the port is taken.
    assert port.variables == ("FRONT_BIND", "FRONT_PORT")


def test_a_port_range_is_read_without_variables_rather_than_misassigned(tmp_path: Path) -> None:
    text = "services:\n  a:\n    image: x\n    ports: ['${LOW:-7000}-7001:7000-7001']\n"
    ports = load_text(tmp_path, text).services["a"].ports
    assert [(p.published, p.target, p.variables) for p in ports] == [
        ("7000", 7000, ()),
        ("7001", 7001, ()),
    ]


def test_a_port_taken_on_the_host_names_the_variable_that_moves_it(
    stack: model.Compose, tmp_path: Path
) -> None:
    # The Docker backend's diagnosis of a failed `up`, on the engine's own words.
    paths = Paths(tmp_path, tmp_path / "compose.yaml")
    backend = DockerBackend(paths, UI(io.StringIO(), io.StringIO()), {})
    output = [
        "Error response from daemon: driver failed programming external connectivity on "
        "endpoint front: Bind for 127.0.0.1:8080 failed: port is already allocated"
    ]
    error = backend.diagnose(State("docker", str(COMPOSE_FILE)), stack, output)
    assert str(error) == (
        "host port 8080 is already in use (front publishes it); stop what uses it, "
        "or set a free port with FRONT_PORT=0"
    )


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
    assert secret.problem == "API_TOKEN_FILE is not set"
    assert secret.file_text == "${API_TOKEN_FILE}"  # the Docker backend sets that variable


def test_the_environment_wins_over_defaults() -> None:
    environ = {"SERVICE_LOG_LEVEL": "DEBUG", "API_TOKEN_FILE": "./secrets/token"}
    loaded = rendered.read(COMPOSE_FILE, environ)
    assert loaded.services["greeter"].environment["SERVICE_LOG_LEVEL"] == "DEBUG"
    assert loaded.secrets["api_token"].file == REPO / "tests" / "stackfixture" / "secrets" / "token"


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


def test_a_services_env_file_is_merged_into_its_environment(tmp_path: Path) -> None:
    # The key the hand-written reader once ignored in silence.
    (tmp_path / "a.env").write_text("FROM_FILE=1\nBOTH=file\n")
    text = "services:\n  a:\n    image: x\n    env_file: [a.env]\n    environment: {BOTH: own}\n"
    assert load_text(tmp_path, text).services["a"].environment == {"FROM_FILE": "1", "BOTH": "own"}


def test_list_form_environment_and_string_commands_are_read(tmp_path: Path) -> None:
    text = (
        "services:\n  a:\n    image: x\n    command: serve 'my module:Cls'\n"
        "    environment: [A=1, PASSED, MISSING]\n"
    )
    service = load_text(tmp_path, text, {"PASSED": "yes"}).services["a"]
    assert service.command == ("serve", "my module:Cls")
    assert service.environment == {"A": "1", "PASSED": "yes"}


def test_text_is_read_in_place_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "compose.yaml"
    path.write_text("services:\n  a:\n    image: x\n")
    (tmp_path / ".env").write_text("LEVEL=WARNING\n")
    text = "services:\n  b:\n    image: x\n    environment: {L: $LEVEL}\n"
    compose = rendered.read(path, {}, text)
    assert list(compose.services) == ["b"]
    assert compose.services["b"].environment == {"L": "WARNING"}


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("2s", 2.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), (3, 3.0), (None, None)],
)
def test_durations_read_as_compose_writes_them(value: str | int, seconds: float) -> None:
    assert rendered.duration(value) == seconds


# --- one-line errors ----------------------------------------------------------------------------


def test_malformed_yaml_is_refused_with_its_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, "services:\n  a:\n    image: [x\n")
    assert message.startswith("compose.yaml: ")
    assert "L3" in message, message


def test_an_unknown_key_is_refused(tmp_path: Path) -> None:
    assert "additional properties 'x' not allowed" in error_of(tmp_path, "x: 1\n")


def test_an_unknown_dependency_is_named(tmp_path: Path) -> None:
    text = "services:\n  hello:\n    image: x\n  gateway:\n    image: x\n    depends_on: [helo]\n"
    assert error_of(tmp_path, text) == (
        'compose.yaml: service "gateway" depends on undefined service "helo": '
        "invalid compose project"
    )


def test_a_dependency_cycle_is_refused_with_its_path(tmp_path: Path) -> None:
    text = (
        "services:\n  a:\n    image: x\n    depends_on: [b]\n"
        "  b:\n    image: x\n    depends_on: [a]\n"
    )
    assert "dependency cycle detected: a -> b -> a" in error_of(tmp_path, text)


def test_an_unknown_secret_is_named(tmp_path: Path) -> None:
    text = "services:\n  a:\n    image: x\n    secrets: [token]\n"
    assert "refers to undefined secret token" in error_of(tmp_path, text)


def test_a_message_over_several_lines_becomes_one_and_warnings_are_left_out(
    tmp_path: Path,
) -> None:
    # ${UNSET} draws a warning; the malformed ${A is the error, which Compose spreads over lines.
    text = "services:\n  a:\n    image: x\n    environment:\n      W: ${UNSET}\n      X: ${A\n"
    message = error_of(tmp_path, text)
    assert message.startswith("compose.yaml: invalid interpolation format for services.a")
    assert "escape any $ with another $" in message
    assert "UNSET" not in message


def test_a_missing_file_is_named() -> None:
    with pytest.raises(model.ComposeError, match=r"/nonexistent/compose.yaml does not exist"):
        rendered.read(Path("/nonexistent/compose.yaml"), {})


def test_without_compose_the_error_says_how_to_install_it() -> None:
    with pytest.raises(StackError) as caught:
        rendered.load(None, COMPOSE_FILE, {})
    assert str(caught.value) == rendered.INSTALL_HINT
    assert "\n" not in rendered.INSTALL_HINT


def test_asking_for_an_unknown_service_lists_the_known_ones(stack: model.Compose) -> None:
    with pytest.raises(StackError, match=r"no service named 'gretter' .*adder, front, greeter"):
        stack.get("gretter")
