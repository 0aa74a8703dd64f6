"""Find the service class named by a serve TARGET (``package.module:Class`` or
``path/to/file.py:Class``) and read its settings."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import sysconfig
import traceback
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from .config import Settings
from .errors import ConfigError, StartupError
from .service import MicroService

__all__ = ["load_service_class", "resolve"]

_FORM = "package.module:Class or path/to/file.py:Class"


def resolve(
    target: str | None,
    environ: Mapping[str, str],
    config_file: str | None,
    overrides: Mapping[str, Any],
) -> tuple[type[MicroService], Settings]:
    """The service class and its effective settings (``ConfigError``/``StartupError``).

    Without ``target``, ``SERVICE_TARGET`` (or ``target`` in the file, or a flag) names it. The
    settings are read once the class is known, since it may declare settings of its own.
    """
    if not target:
        target, problems = Settings.peek("target", environ, config_file, overrides)
        if not target and problems:
            raise ConfigError(problems)
    if not target:
        raise StartupError(
            "nothing to serve: give TARGET (package.module:Class or path/to/file.py:Class) "
            "or set SERVICE_TARGET"
        )
    cls = load_service_class(target)
    return cls, cls.load_settings(environ, config_file, overrides)


def load_service_class(target: str) -> type[MicroService]:
    """Import the module and return the class; ``StartupError`` says what is wrong."""
    module_part, sep, attr = target.rpartition(":")
    if not sep or not module_part or not attr.isidentifier():
        raise StartupError(f"TARGET must look like {_FORM}, got {target!r}")
    if module_part.endswith(".py") or os.sep in module_part or "/" in module_part:
        module = _load_file(Path(module_part))
    else:
        module = _import(module_part)
    cls = getattr(module, attr, None)
    if cls is None:
        found = [name for name, value in vars(module).items() if _is_service(value)]
        hint = f"; services there: {', '.join(found)}" if found else ""
        raise StartupError(f"{module_part!r} has no attribute {attr!r}{hint}")
    if not _is_service(cls):
        raise StartupError(f"{target!r} is not a MicroService subclass")
    return cls  # type: ignore[no-any-return]


def _is_service(value: object) -> bool:
    return inspect.isclass(value) and issubclass(value, MicroService) and value is not MicroService


def _import(name: str) -> ModuleType:
    # Like `python -m`, let modules in the working directory be found by the console script too
    # (last, so that nothing there shadows the runtime's own dependencies).
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.append(os.getcwd())
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):  # the target itself is missing
            raise StartupError(f"cannot import {name!r}: {exc}") from exc
        raise StartupError(f"importing {name!r} failed: {describe_error(exc)}") from exc
    except Exception as exc:
        raise StartupError(f"importing {name!r} failed: {describe_error(exc)}") from exc


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise StartupError(f"no such file: {path}")
    name = f"_service_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise StartupError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    # Sibling modules of the file import as they would when it runs as a script, but from the
    # END of the path: a yaml.py or tornado.py planted next to the service must never replace
    # the runtime's own dependencies (tests/integration/test_serve_file_target.py).
    folder = str(path.resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise StartupError(f"loading {path} failed: {describe_error(exc)}") from exc
    return module


def describe_error(exc: BaseException) -> str:
    """``file:line: Type: message`` for an error raised while a module was imported: the place
    is the user's code (the innermost frame outside the import machinery), or the spot a
    ``SyntaxError`` points at. The full traceback is for ``--debug`` (``SERVICE_DEBUG``)."""
    where = ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f"{exc.filename}:{exc.lineno}: "
        detail = exc.msg
    else:
        detail = str(exc)
        frames = traceback.extract_tb(exc.__traceback__)
        # The user's code: not this module, the import machinery, the standard library or an
        # installed package (a JSONDecodeError is the fault of the line that called json).
        own = [f for f in frames if f.filename != __file__ and not _library(f.filename)]
        if own:
            where = f"{own[-1].filename}:{own[-1].lineno}: "
    return f"{where}{type(exc).__name__}: {detail}"


_LIBRARY_DIRS = tuple(
    {sysconfig.get_paths()[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
)


def _library(filename: str) -> bool:
    return filename.startswith("<frozen") or filename.startswith(_LIBRARY_DIRS)
