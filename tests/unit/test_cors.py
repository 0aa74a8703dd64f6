"""CORS: the settings that turn it on, and the headers ``/api`` answers each origin with.

The same policy against a real server and a real browser: tests/clients/test_cors_http.py and
tests/clients/test_browser.py.
"""

from __future__ import annotations

import pytest

from service_template.auth import BearerStrategy, CookieStrategy, HeaderStrategy
from service_template.config import ConfigError, Settings
from service_template.http.cors import make_policy

APP = "https://app.example.com"
HEADER = (HeaderStrategy(),)


def policy(credentials: bool = False, strategies=HEADER):
    made = make_policy([APP], strategies, max_age=600, credentials=credentials)
    assert made is not None
    return made


def test_cors_is_off_by_default():
    settings = Settings.load({})
    assert settings.cors_origins == ()
    assert settings.cors_allow_credentials is False
    assert (
        make_policy(settings.cors_origins, (HeaderStrategy(),), max_age=1, credentials=False)
        is None
    )


@pytest.mark.parametrize(
    ("given", "origins"),
    [
        ("https://App.Example.com", ("https://app.example.com",)),
        ("https://a.example:443, http://b.example:80", ("https://a.example", "http://b.example")),
        ("http://127.0.0.1:8080,http://127.0.0.1:8080", ("http://127.0.0.1:8080",)),
        ("http://[::1]:3000", ("http://[::1]:3000",)),
    ],
)
def test_origins_are_read_as_a_browser_sends_them(given, origins):
    assert Settings.load({"SERVICE_CORS_ORIGINS": given}).cors_origins == origins


def test_origins_can_be_a_yaml_list(tmp_path):
    path = tmp_path / "settings.yaml"
    path.write_text("cors_origins:\n  - https://a.example\n  - http://localhost:5173\n")
    settings = Settings.load({}, path)
    assert settings.cors_origins == ("https://a.example", "http://localhost:5173")


@pytest.mark.parametrize(
    "given",
    [
        "*",
        "app.example.com",
        "ftp://app.example.com",
        "https://app.example.com/",
        "https://app.example.com/path",
        "https://app.example.com?x=1",
        "https://user@app.example.com",
        "https://app.example.com:99999",
        "https://",
    ],
)
def test_anything_but_an_origin_is_a_clear_error(given):
    with pytest.raises(ConfigError) as caught:
        Settings.load({"SERVICE_CORS_ORIGINS": given})
    assert "SERVICE_CORS_ORIGINS" in str(caught.value)


def test_max_age_is_bounded():
    with pytest.raises(ConfigError, match="SERVICE_CORS_MAX_AGE"):
        Settings.load({"SERVICE_CORS_MAX_AGE": "-1"})


def test_an_allowed_origin_gets_its_own_name_back_and_vary():
    headers = dict(policy().headers_for(APP))
    assert headers["Access-Control-Allow-Origin"] == APP
    assert headers["Vary"] == "Origin"
    assert headers["Access-Control-Expose-Headers"] == "X-Request-Id"
    assert "Access-Control-Allow-Credentials" not in headers


@pytest.mark.parametrize(
    "origin", [None, "https://evil.example", "https://app.example.com.evil.example", "null"]
)
def test_any_other_origin_gets_only_vary(origin):
    assert policy().headers_for(origin) == (("Vary", "Origin"),)
    assert policy().preflight(origin, "POST") is None


def test_credentials_only_when_configured():
    assert dict(policy(credentials=True).headers_for(APP))["Access-Control-Allow-Credentials"] == (
        "true"
    )
    preflight = dict(policy(credentials=True).preflight(APP, "POST") or ())
    assert preflight["Access-Control-Allow-Credentials"] == "true"
    assert "Access-Control-Allow-Credentials" not in dict(policy().preflight(APP, "POST") or ())


def test_a_preflight_names_methods_headers_and_max_age():
    headers = dict(policy().preflight(APP, "POST") or ())
    assert headers["Access-Control-Allow-Origin"] == APP
    assert headers["Access-Control-Allow-Methods"] == "POST"
    assert headers["Access-Control-Allow-Headers"] == "content-type, x-request-id, x-api-token"
    assert headers["Access-Control-Max-Age"] == "600"
    assert headers["Vary"] == "Origin"


@pytest.mark.parametrize("method", [None, "GET", "PUT", "post"])
def test_a_preflight_for_another_method_is_not_allowed(method):
    assert policy().preflight(APP, method) is None


def test_the_allowed_headers_follow_the_token_strategies():
    strategies = (HeaderStrategy("X-Service-Key"), BearerStrategy(), CookieStrategy())
    headers = dict(policy(strategies=strategies).preflight(APP, "POST") or ())
    assert headers["Access-Control-Allow-Headers"] == (
        "content-type, x-request-id, x-service-key, authorization"
    )
