"""Token strategies (header, cookie, bearer), their order, and the constant-time comparison."""

from __future__ import annotations

import hmac

import pytest

from service_template.auth import (
    BasicCookieStrategy,
    BearerStrategy,
    CookieStrategy,
    DuplicateCredential,
    HeaderStrategy,
    HeaderValidationStrategy,
    extract_token,
    tokens_match,
)


class Headers:
    """Case-insensitive request headers, like Tornado's and httpx's."""

    def __init__(self, **headers: str) -> None:
        self._headers = {name.replace("_", "-").lower(): value for name, value in headers.items()}

    def get(self, name: str, /) -> str | None:
        return self._headers.get(name.lower())


# --- header -------------------------------------------------------------------------------------


def test_the_header_strategy_reads_x_api_token_by_default() -> None:
    assert HeaderStrategy().extract(Headers(X_Api_Token="tok")) == "tok"


def test_the_header_strategy_reads_a_configured_header() -> None:
    strategy = HeaderStrategy("X-Service-Key")
    assert strategy.extract(Headers(X_Service_Key="key")) == "key"
    assert strategy.extract(Headers(X_Api_Token="tok")) is None


@pytest.mark.parametrize("headers", [Headers(), Headers(X_Api_Token="")])
def test_the_header_strategy_finds_nothing_in_a_missing_or_empty_header(headers: Headers) -> None:
    assert HeaderStrategy().extract(headers) is None


# --- cookie -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cookie",
    [
        "api_token=tok",
        "other=1; api_token=tok; more=2",
        'api_token="tok"',
        "$Version=1; api_token=tok",
    ],
)
def test_the_cookie_strategy_reads_the_api_token_cookie(cookie: str) -> None:
    assert CookieStrategy().extract(Headers(Cookie=cookie)) == "tok"


def test_the_cookie_strategy_reads_a_configured_cookie() -> None:
    strategy = CookieStrategy("session_key")
    assert strategy.extract(Headers(Cookie="api_token=no; session_key=yes")) == "yes"


@pytest.mark.parametrize(
    "cookie",
    [
        "",
        "other=1",
        "api_token=",
        "api_token",
        'api_token="unterminated',
        "api_token=a b",
        "=;;;",
        "\x00",
    ],
)
def test_the_cookie_strategy_finds_nothing_in_missing_empty_or_malformed_cookies(
    cookie: str,
) -> None:
    assert CookieStrategy().extract(Headers(Cookie=cookie)) is None


def test_the_cookie_strategy_finds_nothing_without_a_cookie_header() -> None:
    assert CookieStrategy().extract(Headers(X_Api_Token="tok")) is None


# --- bearer -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["Bearer tok", "bearer tok", "BEARER tok", "BeArEr tok", "  Bearer   tok  "]
)
def test_the_bearer_strategy_accepts_the_scheme_in_any_case(value: str) -> None:
    assert BearerStrategy().extract(Headers(Authorization=value)) == "tok"


@pytest.mark.parametrize(
    "value", ["", "Bearer", "Bearer ", "Bearer    ", "Basic dXNlcjpwdw==", "Bearertok", "tok"]
)
def test_the_bearer_strategy_finds_nothing_without_a_bearer_token(value: str) -> None:
    assert BearerStrategy().extract(Headers(Authorization=value)) is None


def test_the_bearer_strategy_finds_nothing_without_an_authorization_header() -> None:
    assert BearerStrategy().extract(Headers(X_Api_Token="tok")) is None


# --- order --------------------------------------------------------------------------------------


def test_the_first_strategy_that_finds_a_token_wins() -> None:
    headers = Headers(X_Api_Token="from-header", Authorization="Bearer from-bearer")
    assert extract_token([HeaderStrategy(), BearerStrategy()], headers) == "from-header"
    assert extract_token([BearerStrategy(), HeaderStrategy()], headers) == "from-bearer"


def test_later_strategies_are_asked_when_earlier_ones_find_nothing() -> None:
    headers = Headers(Cookie="api_token=from-cookie")
    assert extract_token([HeaderStrategy(), BearerStrategy(), CookieStrategy()], headers) == (
        "from-cookie"
    )


def test_no_strategy_and_no_token_give_none() -> None:
    assert extract_token([], Headers(X_Api_Token="tok")) is None
    assert extract_token([HeaderStrategy(), CookieStrategy()], Headers()) is None


def test_gemstone_strategy_names_still_work() -> None:
    assert HeaderValidationStrategy is HeaderStrategy
    assert BasicCookieStrategy is CookieStrategy


# --- credentials sent twice ---------------------------------------------------------------------


class RepeatedHeaders:
    """Headers that keep every value of a repeated field (``get_list``), like the server's."""

    def __init__(self, *fields: tuple[str, str]) -> None:
        self._fields = [(name.lower(), value) for name, value in fields]

    def get(self, name: str, /) -> str | None:
        values = self.get_list(name)
        return values[0] if values else None

    def get_list(self, name: str, /) -> list[str]:
        return [value for field, value in self._fields if field == name.lower()]


@pytest.mark.parametrize(
    ("strategy", "fields"),
    [
        (HeaderStrategy(), [("X-Api-Token", "a"), ("X-Api-Token", "a")]),
        (HeaderStrategy(), [("X-Api-Token", "a"), ("X-Api-Token", "b")]),
        (BearerStrategy(), [("Authorization", "Bearer a"), ("Authorization", "Bearer b")]),
        (CookieStrategy(), [("Cookie", "api_token=a; api_token=b")]),
        (CookieStrategy(), [("Cookie", "api_token=a"), ("Cookie", "x=1; api_token=a")]),
    ],
    ids=["same header twice", "two headers", "two bearers", "cookie twice", "two cookie fields"],
)
def test_a_credential_sent_twice_is_refused_not_resolved(
    strategy: HeaderStrategy | BearerStrategy | CookieStrategy, fields: list[tuple[str, str]]
) -> None:
    with pytest.raises(DuplicateCredential):
        strategy.extract(RepeatedHeaders(*fields))
    with pytest.raises(DuplicateCredential):
        extract_token([strategy], RepeatedHeaders(*fields))


def test_other_repeated_fields_do_not_matter() -> None:
    headers = RepeatedHeaders(
        ("Cookie", "a=1"), ("Cookie", "api_token=tok; b=2"), ("Accept", "x"), ("Accept", "y")
    )
    assert CookieStrategy().extract(headers) == "tok"
    assert HeaderStrategy().extract(RepeatedHeaders(("X-Api-Token", "tok"))) == "tok"


# --- comparison ---------------------------------------------------------------------------------


def test_equal_tokens_match() -> None:
    assert tokens_match("s3cret", "s3cret") is True
    assert tokens_match("clé-é", "clé-é") is True


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("s3cret", "s3cret "),
        ("s3cret", "S3CRET"),
        ("s3cre", "s3cret"),
        ("", "s3cret"),
        (None, "s3cret"),
        ("s3cret", ""),
        ("s3cret", None),
        ("", ""),
        (None, None),
    ],
)
def test_different_absent_or_empty_tokens_never_match(
    given: str | None, expected: str | None
) -> None:
    assert tokens_match(given, expected) is False


def test_tokens_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def compare(a: bytes, b: bytes) -> bool:
        seen.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", compare)
    assert tokens_match("abc", "abc") is True
    assert tokens_match("abc", "abd") is False
    assert seen == [(b"abc", b"abc"), (b"abc", b"abd")]
