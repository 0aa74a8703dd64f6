"""Which parameter names hold secrets, and copies of params with those values masked.

A name is compared in a normal form: lower case, with ``_``, ``-``, ``.`` and spaces removed,
so ``apiKey``, ``api_key``, ``API-KEY`` and ``api.key`` are one name. It is secret when

- its normal form contains a secret-looking fragment (``token``, ``secret``, ``password``,
  ``passwd``, ``apikey``, ``privatekey``, ``credential``, ``cookie``...): ``access_token``,
  ``client_secret``, ``refresh-token``, ``private_key``, ``credentials``;
- one of its words is a short secret word (``auth``, ``pwd``, ``session``, ``jwt``...): ``X-Auth``,
  ``auth_header``, ``session``, but not ``author`` (words split at separators and camelCase);
- or its normal form is one of the names the service adds (``redact_params``), matched exactly.

Over-masking a harmless value costs a log reader a little; under-masking leaks a secret, so
the fragments err on the side of masking (``tokenizer`` is masked too).

``Redactor.is_secret`` caches its answers (names repeat on every call), and ``positions``
computes once, at start, which positional params of a method are secret, so the per-call path
runs no pattern for positional params.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["REDACTED", "SECRET_FRAGMENTS", "SECRET_WORDS", "Redactor", "normal_name"]

REDACTED = "***"

SECRET_FRAGMENTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "privatekey",
    "accesskey",
    "signingkey",
    "encryptionkey",
    "credential",
    "authorization",
    "cookie",
    "sessionid",
    "sessionkey",
)
SECRET_WORDS = frozenset({"auth", "pwd", "pass", "session", "jwt", "otp", "bearer", "sid"})

_SEPARATORS = re.compile(r"[\s_.\-]+")
# Word starts: after a separator, and at a lower-to-upper case change (camelCase, XAuth).
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_CACHE_LIMIT = 4096  # names come from clients: never let them grow the cache without end


def normal_name(name: str) -> str:
    """``name`` in lower case without separators: ``X-Api_Key`` -> ``xapikey``."""
    return _SEPARATORS.sub("", name).lower()


def _words(name: str) -> list[str]:
    return [word.lower() for part in _SEPARATORS.split(name) for word in _WORDS.findall(part)]


class Redactor:
    """Decides which names are secret and masks their values; ``extra`` adds exact names."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.extra = frozenset(normal_name(name) for name in extra)
        self._cache: dict[str, bool] = {}

    def is_secret(self, name: str) -> bool:
        """Whether a parameter or member called ``name`` holds a secret."""
        known = self._cache.get(name)
        if known is not None:
            return known
        flat = normal_name(name)
        secret = (
            flat in self.extra
            or any(fragment in flat for fragment in SECRET_FRAGMENTS)
            or not SECRET_WORDS.isdisjoint(_words(name))
        )
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[name] = secret
        return secret

    def positions(self, names: Sequence[str]) -> frozenset[int]:
        """Indexes of the positional parameters (named ``names``, in order) that are secret."""
        return frozenset(i for i, name in enumerate(names) if self.is_secret(name))

    def redact(self, value: Any) -> Any:
        """A copy of ``value`` with every object member whose name is secret masked."""
        if isinstance(value, dict):
            return {
                key: REDACTED if isinstance(key, str) and self.is_secret(key) else self.redact(item)
                for key, item in value.items()
            }
        if isinstance(value, list):
            return [self.redact(item) for item in value]
        return value

    def redact_params(self, params: Any, secret_positions: frozenset[int] = frozenset()) -> Any:
        """Redact call params: members by name, positional ones by the index given."""
        if isinstance(params, list):
            return [
                REDACTED if i in secret_positions else self.redact(item)
                for i, item in enumerate(params)
            ]
        return self.redact(params)

    def any_secret(self, names: Iterable[str]) -> bool:
        """Whether any of ``names`` is secret (a cheap pre-check before copying params)."""
        return any(self.is_secret(name) for name in names)
