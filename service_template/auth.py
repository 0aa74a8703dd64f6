"""API tokens: where a request carries one (strategies) and how it is compared.

A strategy reads a token from the request headers; a service lists its strategies in
``MicroService.validation_strategies`` and the first one that finds a token wins. Tokens are
compared with ``hmac.compare_digest`` (constant time) and never logged.

A credential sent twice (two ``X-Api-Token`` fields, two ``Authorization`` fields, a cookie
named twice) raises ``DuplicateCredential``: picking one of them would let whatever sits in
front of the service (a proxy, a gateway) check one token while the service uses another.
The server denies access for such a request.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Protocol


class Headers(Protocol):
    """Case-insensitive header lookup (Tornado's HTTPHeaders and httpx.Headers both fit).

    An object that also has ``get_list(name)`` (every value of a repeated field, as Tornado's
    and httpx's headers and the server's requests have) lets the strategies see repeats.
    """

    def get(self, name: str, /) -> str | None: ...


class DuplicateCredential(ValueError):
    """The request carries the credential a strategy looks for more than once."""


def _values(headers: Headers, name: str) -> list[str]:
    """Every value of header ``name`` (one at most if ``headers`` cannot tell repeats)."""
    get_list = getattr(headers, "get_list", None)
    if get_list is not None:
        return list(get_list(name))
    value = headers.get(name)
    return [] if value is None else [value]


def _single(headers: Headers, name: str) -> str | None:
    values = _values(headers, name)
    if len(values) > 1:
        raise DuplicateCredential(name)
    return values[0] if values else None


class TokenStrategy(Protocol):
    """Finds the API token in a request, or returns None."""

    def extract(self, headers: Headers) -> str | None: ...


class HeaderStrategy:
    """Token in a header, ``X-Api-Token`` by default (gemstone's default)."""

    def __init__(self, header: str = "X-Api-Token") -> None:
        self.header = header

    def extract(self, headers: Headers) -> str | None:
        return _single(headers, self.header) or None


class CookieStrategy:
    """Token in a cookie, ``api_token`` by default."""

    def __init__(self, cookie: str = "api_token") -> None:
        self.cookie = cookie

    def extract(self, headers: Headers) -> str | None:
        # Several Cookie fields are legal in HTTP/2 and sent by some clients over HTTP/1.1:
        # look for the name in all of them, and refuse it if it appears more than once.
        found = [raw for raw in _values(headers, "Cookie") if self._named_in(raw)]
        if not found:
            return None
        if len(found) > 1:
            raise DuplicateCredential(self.cookie)
        raw = found[0]
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            return None
        morsel = jar.get(self.cookie)
        return morsel.value or None if morsel is not None else None

    def _named_in(self, raw: str) -> bool:
        """Whether cookie ``self.cookie`` is in the field ``raw``; raises if it is twice."""
        count = sum(1 for part in raw.split(";") if part.partition("=")[0].strip() == self.cookie)
        if count > 1:
            raise DuplicateCredential(self.cookie)
        return count == 1


class BearerStrategy:
    """Token in ``Authorization: Bearer <token>`` (RFC 6750 section 2.1)."""

    def extract(self, headers: Headers) -> str | None:
        raw = _single(headers, "Authorization")
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
    """The first token any strategy finds, in the service's order.

    Raises ``DuplicateCredential`` when a strategy finds its credential sent more than once.
    """
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
