"""A setting declared once: ``BaseSettings`` subclasses and their ``setting(...)`` fields.

Each field is the whole declaration of one setting: its name (and so its environment variable,
``SERVICE_`` + the name in upper case), its type (and so how its value is read, see
``values.parser_for``), its default, its help text, its bounds, and whether it is secret (its
type holds a ``Secret``). ``load`` reads every source by precedence and reports every problem
at once; ``masked`` gives plain data for printing; ``env_table`` the README table.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self, TypeVar, dataclass_transform, overload

from ..errors import ConfigError
from . import sources
from .values import Parse, Secret, bounded, is_secret, one_of, parser_for

__all__ = ["BaseSettings", "ConfigError", "setting"]

T = TypeVar("T")
_META = "service_template.setting"


@dataclass(frozen=True, slots=True)
class _Declared:
    """What ``setting(...)`` records on a field besides its default."""

    help: str
    parse: Parse | None
    low: float | None
    high: float | None
    choices: Sequence[str] | None
    redact: bool


@dataclass(frozen=True, slots=True)
class Spec:
    """One setting of a settings class, as the loader uses it."""

    name: str
    env: str
    help: str
    parse: Parse
    secret: bool
    required: bool
    redact: bool  # its raw value never appears in a problem (true for every secret)


@overload
def setting(
    *,
    default: T,
    help: str,
    parse: Parse | None = None,
    low: float | None = None,
    high: float | None = None,
    choices: Sequence[str] | None = None,
    redact: bool = False,
) -> T: ...
@overload
def setting(
    *,
    factory: Callable[[], T],
    help: str,
    parse: Parse | None = None,
    low: float | None = None,
    high: float | None = None,
    choices: Sequence[str] | None = None,
    redact: bool = False,
) -> T: ...
@overload
def setting(
    *,
    help: str,
    parse: Parse | None = None,
    low: float | None = None,
    high: float | None = None,
    choices: Sequence[str] | None = None,
    redact: bool = False,
) -> Any: ...
def setting(
    *,
    default: Any = dataclasses.MISSING,
    factory: Any = dataclasses.MISSING,
    help: str,
    parse: Parse | None = None,
    low: float | None = None,
    high: float | None = None,
    choices: Sequence[str] | None = None,
    redact: bool = False,
) -> Any:
    """Declare one setting on a ``BaseSettings`` subclass.

    ``default`` (or ``factory`` for a mutable one; neither: the setting is required), ``help``
    (one line, shown in the README table), ``low``/``high`` (inclusive bounds of a number),
    ``choices`` (allowed text, compared case-insensitively), ``parse`` (a function from the raw
    value to the typed one, raising ``ValueError``; replaces the parser the type would pick),
    ``redact`` (never quote the raw value in a problem, e.g. paths that may be a pasted token;
    a ``Secret`` never is quoted anyway).
    """
    declared = _Declared(help, parse, low, high, choices, redact)
    return dataclasses.field(default=default, default_factory=factory, metadata={_META: declared})


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(setting,))
class BaseSettings:
    """Base of a settings class: subclass it and declare fields with ``setting(...)``.

    A subclass becomes a frozen, keyword-only dataclass. Constructing it directly skips every
    check (meant for tests); ``load`` is the way a running service gets one.
    """

    _settings_specs: ClassVar[dict[str, Spec]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)
        cls._settings_specs = _specs(cls)

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Setting name -> environment variable, e.g. ``{"port": "SERVICE_PORT", ...}``."""
        return {name: spec.env for name, spec in cls._settings_specs.items()}

    @classmethod
    def known_env_vars(cls) -> frozenset[str]:
        """Every ``SERVICE_*`` variable a service with these settings accepts."""
        files = {
            spec.env + sources.FILE_SUFFIX for spec in cls._settings_specs.values() if spec.secret
        }
        return frozenset(
            {*cls.env_names().values(), *files, sources.CONFIG_FILE_ENV, sources.CLIENT_TOKEN_ENV}
        )

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str],
        config_file: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> Self:
        """Merge every source by precedence; raise ``ConfigError`` listing all problems found.

        Highest first: ``overrides`` (flags), ``SERVICE_*`` variables in ``environ``, the YAML
        file (``config_file``, else the one ``SERVICE_CONFIG_FILE`` names), ``defaults`` (the
        service's class attributes), then the fields' defaults. Every value any source gives is
        checked, also one a higher source overrides. ``None`` means "not set" in every source.
        Once every value is good, ``check`` looks at how they fit together.
        """
        problems: list[str] = []
        chosen = cls._read(environ, config_file, overrides, defaults, problems)
        for spec in cls._settings_specs.values():
            if spec.required and spec.name not in chosen:
                problems.append(f"{spec.env}: required, not set")
        if problems:
            raise ConfigError(problems)
        loaded = cls(**chosen)
        problems = list(loaded.check())
        if problems:
            raise ConfigError(problems)
        return loaded

    def check(self) -> Iterable[str]:
        """Problems with how the settings fit together (one value against another); none by
        default. Override it, yield each problem as ``name: what to fix``, and include
        ``super().check()``. Each value on its own was already checked by its field."""
        return ()

    @classmethod
    def peek(
        cls,
        name: str,
        environ: Mapping[str, str],
        config_file: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> tuple[Any, list[str]]:
        """One setting's value (or None) before the full class is known, and the problems met
        on the way. Unknown names are not problems here: they may be a subclass's settings."""
        problems: list[str] = []
        value = cls._read(environ, config_file, overrides, None, problems).get(name)
        return value, [p for p in problems if "unknown setting" not in p]

    @classmethod
    def _read(
        cls,
        environ: Mapping[str, str],
        config_file: str | os.PathLike[str] | None,
        overrides: Mapping[str, Any] | None,
        defaults: Mapping[str, Any] | None,
        problems: list[str],
    ) -> dict[str, Any]:
        known = cls._settings_specs
        secrets = {name for name, spec in known.items() if spec.secret}
        hidden = {name for name, spec in known.items() if spec.redact}
        layers = [  # lowest precedence first: a later layer replaces an earlier one's value
            sources.from_mapping(
                defaults, known, hidden, lambda name: f"class attribute {name}", problems
            ),
            sources.from_yaml(config_file, environ, known, problems),
            sources.from_environ(environ, known, secrets, hidden, problems),
            sources.from_mapping(
                overrides, known, hidden, lambda name: "--" + name.replace("_", "-"), problems
            ),
        ]
        chosen: dict[str, Any] = {}
        for layer in layers:
            for name, (raw, where) in layer.items():
                try:
                    value = known[name].parse(raw)
                except ValueError as exc:
                    problems.append(f"{where}: {exc}")
                    continue
                if value is not None:  # blank optional text means "not set", like None
                    chosen[name] = value
        return chosen

    def masked(self) -> dict[str, Any]:
        """Plain data for printing: secrets as ``***``, sets as sorted lists, dicts copied."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def env_table(cls) -> str:
        """The Markdown table of settings: name, environment variable, default, meaning."""
        rows = ["| Setting | Environment variable | Default | Meaning |", "|---|---|---|---|"]
        files = []
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            spec = cls._settings_specs[field.name]
            rows.append(f"| `{spec.name}` | `{spec.env}` | {_default(field)} | {spec.help} |")
            if spec.secret:
                files.append(
                    f"| | `{spec.env}{sources.FILE_SUFFIX}` | unset | file holding "
                    f"`{spec.name}` (not with `{spec.env}`) |"
                )
        rows += files
        rows.append(
            f"| | `{sources.CONFIG_FILE_ENV}` | unset | YAML file of settings (as `--config`) |"
        )
        rows.append(
            f"| | `{sources.CLIENT_TOKEN_ENV}` | unset | token the CLI client commands send |"
        )
        return "\n".join(rows) + "\n"


def _specs(cls: type) -> dict[str, Spec]:
    try:
        hints = typing.get_type_hints(cls)
    except NameError as exc:  # a type named in an annotation cannot be found where it is used
        raise TypeError(f"{cls.__qualname__}: cannot read a setting's type: {exc}") from exc
    specs: dict[str, Spec] = {}
    for field in dataclasses.fields(cls):
        declared = field.metadata.get(_META) or _Declared("", None, None, None, None, False)
        hint = hints[field.name]
        parse = declared.parse or parser_for(hint)
        if declared.choices is not None:
            parse = one_of(declared.choices)
        if declared.low is not None or declared.high is not None:
            parse = bounded(parse, declared.low, declared.high)
        required = field.default is dataclasses.MISSING and (
            field.default_factory is dataclasses.MISSING
        )
        env = sources.env_name(field.name)
        secret = is_secret(hint)
        specs[field.name] = Spec(
            field.name, env, declared.help, parse, secret, required, secret or declared.redact
        )
    file_names = {spec.env + sources.FILE_SUFFIX for spec in specs.values() if spec.secret}
    clash = sorted(file_names & {spec.env for spec in specs.values()})
    if clash:
        raise TypeError(f"{cls.__qualname__}: {', '.join(clash)} would name two settings")
    return specs


def _plain(value: Any) -> Any:
    if isinstance(value, Secret):
        return "***"
    if isinstance(value, frozenset | set):
        return sorted(_plain(item) for item in value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _default(field: dataclasses.Field[Any]) -> str:
    if field.default is not dataclasses.MISSING:
        value = _plain(field.default)
    elif field.default_factory is not dataclasses.MISSING:
        value = _plain(field.default_factory())
    else:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`" + ",".join(map(str, value)) + "`" if value else "empty"
    return "empty" if value == {} else f"`{value}`"
