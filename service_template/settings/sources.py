"""Where raw setting values come from: a YAML file, the environment, flags, class attributes.

Each source gives a *layer*: setting name -> (raw value, where it came from). Nothing is parsed
here; unknown names are reported (with the closest known name), and values of secret settings
are never written into a message. The environment is always a parameter: this module never
reads ``os.environ``.
"""

from __future__ import annotations

import difflib
import functools
import os
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .values import kind

if TYPE_CHECKING:
    import yaml

ENV_PREFIX = "SERVICE_"
CONFIG_FILE_ENV = ENV_PREFIX + "CONFIG_FILE"
# Read by the CLI client commands (call, methods, ...), not by a service; known so it is no typo.
CLIENT_TOKEN_ENV = ENV_PREFIX + "CLIENT_TOKEN"
FILE_SUFFIX = "_FILE"

Layer = dict[str, tuple[Any, str]]  # setting name -> (raw value, where it came from)


def env_name(name: str) -> str:
    """The environment variable of a setting: ``max_batch`` -> ``SERVICE_MAX_BATCH``."""
    return ENV_PREFIX + name.upper()


def suggest(word: str, choices: Iterable[str], prefix: str = "") -> str:
    """`` (did you mean X?)`` for the closest choice, or nothing when none is close."""
    # Compare without the shared prefix, which would make every SERVICE_ name look close.
    bare = [choice.removeprefix(prefix) for choice in sorted(choices)]
    close = difflib.get_close_matches(word.removeprefix(prefix), bare, n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def shown(raw: Any, secret: bool) -> str:
    return "" if secret else f"={raw!r}"


def from_mapping(
    values: Mapping[str, Any] | None,
    known: Collection[str],
    hidden: Collection[str],
    label: Callable[[str], str],
    problems: list[str],
) -> Layer:
    """Flags or class attributes; ``None`` means not given. Values of ``hidden`` settings are
    never quoted."""
    layer: Layer = {}
    for name, raw in (values or {}).items():
        if name not in known:
            problems.append(f"{label(name)}: unknown setting{suggest(name, known)}")
        elif raw is not None:
            layer[name] = (raw, label(name) + shown(raw, name in hidden))
    return layer


@functools.cache
def _unique_key_loader() -> type[yaml.SafeLoader]:
    """``SafeLoader`` that rejects a key given twice (plain PyYAML silently keeps the last).

    Made on first use: ``import service_template`` must not import PyYAML, since
    ``python -m service_template`` takes a planted ``yaml.py`` in the working directory off
    ``sys.path`` only after the package itself was imported (see ``__main__``).
    """
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[str] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # keys merged in by "<<" may legitimately be overridden
                key = self.construct_object(key_node, deep=deep)
                if isinstance(key, str) and key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark
                    )
                if isinstance(key, str):
                    seen.add(key)
            return super().construct_mapping(node, deep)

    return UniqueKeyLoader


def _read_yaml(label: str, problems: list[str]) -> Any:
    """The parsed file, or ``None`` (with a problem recorded) when it cannot be used."""
    import yaml

    try:
        content = Path(label).read_text(encoding="utf-8")
        # A SafeLoader subclass, so exactly as safe as yaml.safe_load.
        data = yaml.load(content, Loader=_unique_key_loader())  # noqa: S506
    except OSError as exc:
        problems.append(f"{label}: cannot read: {exc.strerror or exc}")
        return None
    except UnicodeDecodeError:
        problems.append(f"{label}: not UTF-8 text")
        return None
    except yaml.YAMLError as exc:
        # Only the position and the parser's complaint: the full message quotes file content.
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problems.append(f"{label}: invalid YAML{at}: {getattr(exc, 'problem', None) or 'error'}")
        return None
    if data is not None and not isinstance(data, dict):
        problems.append(f"{label}: top level must be a mapping of settings, got {kind(data)}")
        return None
    return data  # None for an empty file, which sets nothing


def from_yaml(
    config_file: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
    known: Collection[str],
    problems: list[str],
) -> Layer:
    """The file given (``--config``), else the one ``SERVICE_CONFIG_FILE`` names, if any."""
    path = config_file if config_file is not None else environ.get(CONFIG_FILE_ENV)
    if not path:
        return {}
    label = os.fspath(path)
    layer: Layer = {}
    for key, raw in (_read_yaml(label, problems) or {}).items():
        if key not in known:
            problems.append(f"{label}: unknown setting {key!r}{suggest(str(key), known)}")
        elif raw is not None:
            layer[key] = (raw, f"{label}: {key}")
    return layer


def from_environ(
    environ: Mapping[str, str],
    known: Collection[str],
    secrets: Collection[str],
    hidden: Collection[str],
    problems: list[str],
) -> Layer:
    """``SERVICE_<NAME>`` for every setting, and ``SERVICE_<NAME>_FILE`` for secret ones: a file
    holding the value (a mounted Kubernetes Secret), its final newline removed."""
    by_env = {env_name(name): name for name in known}
    by_file_env = {env_name(name) + FILE_SUFFIX: name for name in secrets}
    accepted = {*by_env, *by_file_env, CONFIG_FILE_ENV, CLIENT_TOKEN_ENV}
    layer: Layer = {}
    for env, raw in environ.items():
        if not env.startswith(ENV_PREFIX) or env in (CONFIG_FILE_ENV, CLIENT_TOKEN_ENV):
            continue
        if env in by_env:
            name = by_env[env]
            layer[name] = (raw, env + shown(raw, name in hidden))
        elif env not in by_file_env:  # the value is not shown: a misspelt name may hold a secret
            problems.append(f"{env}: unknown setting{suggest(env, accepted, ENV_PREFIX)}")
    for file_env, name in by_file_env.items():
        path = environ.get(file_env)
        if path is None:
            continue
        where = f"{file_env}={path!r}"
        if env_name(name) in environ:
            problems.append(f"{env_name(name)} and {file_env}: set only one of them")
            continue
        try:
            # Files written by editors and `echo` end in a newline that is not the value.
            layer[name] = (Path(path).read_text(encoding="utf-8").rstrip("\r\n"), where)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            problems.append(f"{where}: cannot read: {reason or exc}")
    return layer
