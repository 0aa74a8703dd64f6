"""Settings added for the admin port and per-peer tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from service_template.config import ConfigError, Settings

PEERS = "hello=http://hello:8000/api,compute=http://compute:8000/api"


def problems(environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        Settings.load(environ)
    return caught.value.problems


# --- admin_port ---------------------------------------------------------------------------------


def test_the_admin_port_is_unset_by_default_and_read_from_the_environment() -> None:
    assert Settings.load({}).admin_port is None
    assert Settings.load({"SERVICE_ADMIN_PORT": ""}).admin_port is None
    assert Settings.load({"SERVICE_ADMIN_PORT": "9000"}).admin_port == 9000


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"SERVICE_ADMIN_PORT": "8000"}, "admin_port: 8000 is also the API port; choose another"),
        (
            {"SERVICE_ADMIN_PORT": "9000", "SERVICE_PORT": "9000"},
            "admin_port: 9000 is also the API port; choose another",
        ),
        ({"SERVICE_ADMIN_PORT": "http"}, "SERVICE_ADMIN_PORT='http': not an integer"),
        (
            {"SERVICE_ADMIN_PORT": "70000"},
            "SERVICE_ADMIN_PORT='70000': must be between 0 and 65535",
        ),
    ],
)
def test_a_bad_admin_port_is_reported(environ: dict[str, str], problem: str) -> None:
    assert problems(environ) == [problem]


def test_both_ports_may_be_0_for_any_free_ones() -> None:
    settings = Settings.load({"SERVICE_PORT": "0", "SERVICE_ADMIN_PORT": "0"})
    assert (settings.port, settings.admin_port) == (0, 0)


# --- peer tokens --------------------------------------------------------------------------------


def token_file(tmp_path: Path, name: str, value: str) -> str:
    path = tmp_path / name
    path.write_text(value, encoding="utf-8")
    return str(path)


def test_each_peer_gets_its_own_token_and_never_this_services_token(tmp_path: Path) -> None:
    hello = token_file(tmp_path, "hello_token", "hello-s3cret\n")
    settings = Settings.load(
        {
            "SERVICE_API_TOKEN": "own-token",
            "SERVICE_PEERS": PEERS,
            "SERVICE_PEER_TOKEN_FILES": f"hello={hello}",
        }
    )
    secret = settings.peer_token("hello")
    assert secret is not None and secret.reveal() == "hello-s3cret"
    assert settings.peer_token("compute") is None  # not listed: no token, not our own


def test_without_peer_token_files_every_peer_gets_the_shared_token() -> None:
    settings = Settings.load({"SERVICE_API_TOKEN": "shared", "SERVICE_PEERS": PEERS})
    secret = settings.peer_token("hello")
    assert secret is not None and secret.reveal() == "shared"


def test_the_config_output_shows_the_token_paths_never_the_tokens(tmp_path: Path) -> None:
    hello = token_file(tmp_path, "hello_token", "hello-s3cret")
    settings = Settings.load({"SERVICE_PEERS": PEERS, "SERVICE_PEER_TOKEN_FILES": f"hello={hello}"})
    masked = settings.masked()
    assert masked["peer_token_files"] == {"hello": hello}
    assert "hello-s3cret" not in repr(masked) + repr(settings)


def test_peer_token_file_problems_are_reported_at_start(tmp_path: Path) -> None:
    empty = token_file(tmp_path, "empty", "\n")
    missing = str(tmp_path / "missing")
    found = problems(
        {
            "SERVICE_PEERS": PEERS,
            "SERVICE_PEER_TOKEN_FILES": f"hello={empty},compute={missing},helo={empty}",
        }
    )
    assert found == [
        f"peer_token_files: hello={empty!r}: the file is empty",
        f"peer_token_files: compute={missing!r}: cannot read: No such file or directory",
        f"peer_token_files: helo={empty!r}: no peer of that name in peers (known: compute, hello)",
    ]


def test_a_token_pasted_where_a_path_belongs_is_never_echoed() -> None:
    pasted = "s3cret-pasted-token"
    for environ in (
        {"SERVICE_PEERS": PEERS, "SERVICE_PEER_TOKEN_FILES": f"hello={pasted}"},
        {"SERVICE_PEERS": PEERS, "SERVICE_PEER_TOKEN_FILES": pasted},  # not even name=value
    ):
        found = problems(environ)
        assert found and not any(pasted in problem for problem in found), found
    assert problems({"SERVICE_PEERS": PEERS, "SERVICE_PEER_TOKEN_FILES": f"hello={pasted}"}) == [
        "peer_token_files: hello=(not a path): cannot read: No such file or directory"
    ]
