"""The project's version: ``pyproject.toml`` is its one source, read back from the metadata of the
installed distribution, so the package, the OpenRPC document, the image label and the manifests
all follow one line (a test ties the image tag in the prod overlay to it).
"""

from __future__ import annotations

import functools
from importlib import metadata

UNKNOWN = "0+unknown"


@functools.cache
def distribution_name() -> str | None:
    """The name of the distribution that installed this package (the project's own name, which
    ``scripts/rename.py`` sets), or None when it runs from a source tree never installed."""
    for dist in metadata.packages_distributions().get(__package__ or "service_template", ()):
        return dist
    return None


@functools.cache
def project_version() -> str:
    """The version of the distribution that installed this package; ``0+unknown`` when the
    package runs from a source tree that was never installed."""
    # Looked up by package rather than by distribution name: renaming the project (its
    # distribution) must not break it.
    dist = distribution_name()
    return UNKNOWN if dist is None else metadata.version(dist)
