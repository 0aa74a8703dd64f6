"""The endpoint's URL: checked once, shown without credentials, split for the connection."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where requests go: what a connection needs, and ``target`` for the request line."""

    scheme: str
    host: str
    port: int
    target: str  # path and query, as the request line carries them
    host_header: str


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number)
    except (TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"invalid URL {url!r}: {exc}") from exc
    return parts


def check_url(url: str) -> str:
    """``url`` itself if a client can call it, else ValueError naming it."""
    if not isinstance(url, str):
        raise ValueError(f"invalid URL {url!r}: expected http(s)://host[:port]/path")
    parts = _split(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or " " in url:
        raise ValueError(f"invalid URL {url!r}: expected http(s)://host[:port]/path")
    return url


def safe_url(url: str) -> str:
    """``url`` without a user name or password, which must never reach a message or log."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def probe_url(url: str, probe: str) -> str:
    """The health probe beside the JSON-RPC endpoint: ``.../api`` -> ``.../livez``."""
    parts = urlsplit(url)
    folder = parts.path.rstrip("/").rpartition("/")[0]
    return parts._replace(path=f"{folder}/{probe}", query="", fragment="").geturl()


def endpoint(url: str) -> Endpoint:
    """The parts of a checked ``url`` that a connection and its request line need."""
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    port = parts.port or default
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    header = shown if port == default else f"{shown}:{port}"
    return Endpoint(parts.scheme, host, port, target, header)
