"""Typed settings, each declared once, read from flags, the environment and a YAML file.

Declare a subclass of ``BaseSettings`` (or of the runtime's ``config.Settings``, to extend it)
with ``setting(...)`` fields; ``load`` reads them from every source, ``masked`` shows them with
secrets hidden. Types pick their parser: see ``values.parser_for``.
"""

from .base import BaseSettings, ConfigError, setting
from .values import Secret

__all__ = ["BaseSettings", "ConfigError", "Secret", "setting"]
