"""Read the lock files in requirements/ (pip's requirements format with hashes, written by
``python3 scripts/dev.py lock``), for the tests that hold the locks, the environments and the
image to each other."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
LOCKS = REPO / "requirements"
_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;]+)\s*(?:;(?P<marker>.*))?$"
)


@dataclass(frozen=True)
class Pin:
    """One locked distribution: canonical name, exact version, its marker, its allowed files."""

    name: str
    version: str
    marker: Marker | None
    hashes: frozenset[str]

    def applies(self, environment: dict[str, str] | None = None) -> bool:
        """Whether pip installs it where ``environment`` (default: this interpreter) holds."""
        return self.marker is None or self.marker.evaluate(environment)


def read_lock(name: str) -> dict[str, Pin]:
    """The pins of ``requirements/<name>`` by canonical name; AssertionError on a line that is
    neither a comment nor a hashed pin (the lock must pin everything, by hash)."""
    text = (LOCKS / name).read_text().replace("\\\n", " ")
    pins: dict[str, Pin] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):  # uv's header and "# via" annotations
            continue
        requirement, *options = line.split(" --hash=")
        match = _PIN.match(requirement.strip())
        assert match, f"{name}: not an exact pin: {raw!r}"
        hashes = frozenset(option.strip() for option in options)
        assert hashes, f"{name}: {match['name']} has no hash"
        marker = match["marker"]
        pin = Pin(
            canonicalize_name(match["name"]),
            match["version"],
            Marker(marker.strip()) if marker else None,
            hashes,
        )
        pins[pin.name] = pin
    return pins
