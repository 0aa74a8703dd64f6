"""Find a peer service by name: ``get_service_by_name("hello").methods.say_hello("x")``.

Peers map a service name to its JSON-RPC URL. Pass them in (a service passes
``settings.peers``), or let them come from ``SERVICE_PEERS`` in the environment, read at call
time, in the form ``hello=http://hello:8000/api,compute=http://compute:8000/api`` and parsed by
``service_template.peers.parse_peers``, the one parser every reader of that value uses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from service_template.client import AsyncRemoteClient, RemoteClient
from service_template.peers import PEERS_ENV, parse_peers

__all__ = [
    "PEERS_ENV",
    "ServiceNotFound",
    "get_async_service_by_name",
    "get_service_by_name",
    "parse_peers",
    "resolve_url",
]


class ServiceNotFound(LookupError):
    """No peer of that name is configured; the message lists the names that are."""

    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(sorted(known)) if known else f"none (set {PEERS_ENV})"
        super().__init__(f"no service named {name!r}; known services: {listed}")
        self.name = name
        self.known = sorted(known)


def resolve_url(name: str, peers: Mapping[str, str]) -> str:
    """The URL of peer ``name``; raise ``ServiceNotFound`` listing the known names."""
    try:
        return peers[name]
    except KeyError:
        raise ServiceNotFound(name, list(peers)) from None


def _peers(peers: Mapping[str, str] | None, environ: Mapping[str, str] | None) -> Mapping[str, str]:
    if peers is not None:
        return peers
    text = (os.environ if environ is None else environ).get(PEERS_ENV, "")
    try:
        return parse_peers(text)
    except ValueError as exc:
        raise ValueError(f"{PEERS_ENV}: {exc}") from None


def get_service_by_name(
    name: str,
    peers: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    **client_kwargs: Any,
) -> RemoteClient:
    """A ``RemoteClient`` for peer ``name``; ``client_kwargs`` go to its constructor.

    Its errors name the peer (``service 'hello'``), not its URL, unless ``peer=`` says otherwise.
    """
    client_kwargs.setdefault("peer", name)
    return RemoteClient(resolve_url(name, _peers(peers, environ)), **client_kwargs)


def get_async_service_by_name(
    name: str,
    peers: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
    **client_kwargs: Any,
) -> AsyncRemoteClient:
    """An ``AsyncRemoteClient`` for peer ``name``; ``client_kwargs`` go to its constructor.

    Its errors name the peer, not its URL, as for ``get_service_by_name``.
    """
    client_kwargs.setdefault("peer", name)
    return AsyncRemoteClient(resolve_url(name, _peers(peers, environ)), **client_kwargs)
