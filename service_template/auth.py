"""API tokens: where a request carries one (strategies) and how it is compared.

A strategy reads a token from the request headers; a service lists its strategies in
``MicroService.validation_strategies`` and the first one that finds a token wins. Tokens are
compared with ``hmac.compare_digest`` (constant time) and never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Protocol


class Headers(Protocol):
    """Case-insensitive header lookup (Tornado's HTTPHeaders and httpx.Headers both fit)."""

    def get(self, name: str, /) -> str | None: ...


class TokenStrategy(Protocol):
    """Finds the API token in a request, or returns None."""

    def extract(self, headers: Headers) -> str | None: ...


class HeaderStrategy:
    """Token in a header, ``X-Api-Token`` by default (gemstone's default)."""

    def __init__(self, header: str = "X-Api-Token") -> None:
        self.header = header

    def extract(self, headers: Headers) -> str | None:
        return headers.get(self.header) or None


class CookieStrategy:
    """Token in a cookie, ``api_token`` by default."""

    def __init__(self, cookie: str = "api_token") -> None:
        self.cookie = cookie

    def extract(self, headers: Headers) -> str | None:
        raw = headers.get("Cookie")
        if not raw:
            return None
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(self.cookie)
        return morsel.value or None if morsel is not None else None


class BearerStrategy:
    """Token in ``Authorization: Bearer <token>`` (RFC 6750 section 2.1)."""

    def extract(self, headers: Headers) -> str | None:
        raw = headers.get("Authorization")
        if not raw:
            return None
        scheme, _, token = raw.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None


# gemstone's names for the same strategies, so code written against it keeps working.
HeaderValidationStrategy = HeaderStrategy
BasicCookieStrategy = CookieStrategy


def extract_token(strategies: Iterable[TokenStrategy], headers: Headers) -> str | None:
    """The first token any strategy finds, in the service's order."""
    for strategy in strategies:
        token = strategy.extract(headers)
        if token is not None:
            return token
    return None


def tokens_match(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison; an absent or empty token on either side never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())
