"""Peers: the services a service calls, by name, with their JSON-RPC URLs. The one parser.

A service's peers are declared once, as ``SERVICE_PEERS`` on the calling service in
``compose/compose.yaml`` (``hello=http://hello:8000/api,compute=http://compute:8000/api``); the
Kubernetes copy (the callers' peers and the NetworkPolicies) is generated from it by
``stack.py peers`` and checked against it by the test suite. Whoever reads that value (the runtime's
settings, ``discovery``, the stack orchestrator, the manifest checks) parses it here, so they
all accept and refuse the same text with the same message.

Standard library only: the stack orchestrator imports this module too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

__all__ = ["PEERS_ENV", "format_peers", "parse_peers", "peer_host", "validate_url"]

PEERS_ENV = "SERVICE_PEERS"
# A Compose service name, which is also the host name peers use on the stack's network.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def validate_url(value: Any) -> str:
    """``value`` stripped if it is an http(s) URL with a host; ``ValueError`` otherwise."""
    if not isinstance(value, str):
        kind = "null" if value is None else type(value).__name__
        raise ValueError(f"expected text, got {kind}")
    text = value.strip()
    if not text:
        raise ValueError("must not be empty")
    try:
        parts = urlsplit(text)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # urlsplit rejects some malformed hosts, e.g. an unclosed "[::1"
        usable = False
    if not usable:
        raise ValueError("not an http(s) URL")
    return text


def pairs(value: Any) -> list[tuple[Any, Any]]:
    """The (name, value) pairs of a mapping or of 'name=value,...' text (the settings'
    mapping values read it too); ValueError naming what is wrong, never the value."""
    if isinstance(value, Mapping):
        return list(value.items())
    if not isinstance(value, str):
        kind = "null" if value is None else type(value).__name__
        raise ValueError(f"expected a mapping or 'name=value,...', got {kind}")
    pairs = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, sep, rest = item.partition("=")  # first '=' only: URLs may hold more
        if not sep:
            raise ValueError(f"{item!r} is not name=value")
        pairs.append((key.strip(), rest.strip()))
    return pairs


def parse_peers(value: str | Mapping[Any, Any]) -> dict[str, str]:
    """Peers from ``name=url,name2=url2`` (the environment form) or a mapping (YAML).

    Names are Compose service names (letters, digits, ``_.-``); each URL must be http(s) with
    a host; a name given twice is refused. ``ValueError`` names the first problem.
    """
    peers: dict[str, str] = {}
    for name, url in pairs(value):
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"bad name {name!r}")
        if name in peers:
            raise ValueError(f"{name!r} given twice")
        try:
            peers[name] = validate_url(url)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    return peers


def format_peers(peers: Mapping[str, str]) -> str:
    """The environment form of ``peers``: ``parse_peers(format_peers(p)) == p``."""
    return ",".join(f"{name}={url}" for name, url in peers.items())


def peer_host(url: str) -> str:
    """The host a peer URL names, first DNS label only: ``http://hello.ns.svc:8000`` -> hello."""
    host = urlsplit(url).hostname or ""
    return host.split(".")[0]
