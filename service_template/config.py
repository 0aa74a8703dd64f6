"""Service settings: one frozen dataclass read from flags, environment, a YAML file and defaults.

Precedence, highest first: command-line flags (``overrides``), ``SERVICE_*`` environment
variables, the YAML file (``config_file`` or ``SERVICE_CONFIG_FILE``), the service class's
attributes (``defaults``), then the built-in defaults below. Every value any source gives is
checked, and every problem found is reported at once in a single ``ConfigError``.

A string is read the same way whatever its source (``"8000"``, ``"yes"``, ``"a=1.5,b=3"``), so a
flag, a variable and a quoted YAML value mean the same; YAML may also give the native form (a
number, a boolean, a mapping, a list). ``None`` means "not set" in every source, and so does an
empty variable for a setting whose default is unset (``SERVICE_TARGET=`` from ``${TARGET:-}``).

The environment is always a parameter: this module never reads ``os.environ``.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .logtext import LOG_FORMATS
from .peers import parse_peers

__all__ = [
    "DEFAULT_REDACT_PARAMS",
    "ENV_PREFIX",
    "KNOWN_ENV_VARS",
    "LOG_LEVELS",
    "ConfigError",
    "Secret",
    "Settings",
    "env_table_markdown",
]

ENV_PREFIX = "SERVICE_"
TOKEN_ENV = ENV_PREFIX + "API_TOKEN"
TOKEN_FILE_ENV = ENV_PREFIX + "API_TOKEN_FILE"
CONFIG_FILE_ENV = ENV_PREFIX + "CONFIG_FILE"
# Read by the CLI client commands (call, methods, ...), not by a service; known so it is no typo.
CLIENT_TOKEN_ENV = ENV_PREFIX + "CLIENT_TOKEN"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_PORT = 8000
DEFAULT_REDACT_PARAMS = frozenset(
    {"password", "token", "secret", "api_token", "api_key", "authorization"}
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})

Convert = Callable[[Any], Any]


class Secret:
    """A secret string that shows itself as ``***`` in ``repr``, ``str`` and f-strings.

    ``reveal()`` returns the value. Equality is identity, not value: a value ``==`` would invite
    timing-unsafe token checks and would let a failed assertion print both sides. Compare a
    presented token with ``hmac.compare_digest(secret.reveal(), presented)``.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret value itself; pass it on, never log it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"


class ConfigError(ValueError):
    """Every configuration problem found, one per line, each naming where the value came from."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.problems)
        header = f"invalid configuration ({count} problem{'s' if count != 1 else ''}):"
        return "\n".join([header, *(f"  {problem}" for problem in self.problems)])


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {_kind(value)}")
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _url(value: Any) -> str:
    text = _text(value)
    try:
        parts = urlsplit(text)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # urlsplit rejects some malformed hosts, e.g. an unclosed "[::1"
        usable = False
    if not usable:
        raise ValueError("not an http(s) URL")
    return text


def _optional(convert: Convert) -> Convert:
    return lambda value: None if value == "" else convert(value)


def _integer(low: int, high: int | None = None) -> Convert:
    def convert(value: Any) -> int:
        if isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                raise ValueError("not an integer") from None
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        else:
            raise ValueError(f"not an integer ({_kind(value)})")
        if high is not None and not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        if number < low:
            raise ValueError(f"must be >= {low}")
        return number

    return convert


def _seconds(value: Any) -> float:
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError("not a number") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise ValueError(f"not a number ({_kind(value)})")
    if not (math.isfinite(number) and number > 0):
        raise ValueError("must be a positive number of seconds")
    return number


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("not a boolean (use 1/0, true/false, yes/no or on/off)")


def _level(value: Any) -> str:
    level = _text(value).upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def _log_format(value: Any) -> str:
    chosen = _text(value).lower()
    if chosen not in LOG_FORMATS:
        raise ValueError(f"must be one of {', '.join(LOG_FORMATS)}")
    return chosen


def _secret(value: Any) -> Secret:
    # Messages here never include the value: they end up in logs and on terminals.
    if isinstance(value, Secret):
        text = value.reveal()
    elif isinstance(value, str):
        text = value
    else:
        raise ValueError(f"expected text, got {_kind(value)}")
    if not text:
        # An empty token is almost always a secret that failed to arrive; refuse to start.
        raise ValueError("must not be empty (leave it unset to run without a token)")
    return value if isinstance(value, Secret) else Secret(text)


def _pairs(value: Any) -> list[tuple[Any, Any]]:
    if isinstance(value, Mapping):
        return list(value.items())
    if not isinstance(value, str):
        raise ValueError(f"expected a mapping or 'name=value,...', got {_kind(value)}")
    pairs = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, sep, rest = item.partition("=")  # first '=' only: URLs may hold more
        if not sep:
            raise ValueError(f"{item!r} is not name=value")
        pairs.append((key.strip(), rest.strip()))
    return pairs


def _mapping(convert_value: Convert) -> Convert:
    def convert(value: Any) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, item in _pairs(value):
            if not isinstance(key, str) or not key:
                raise ValueError(f"bad name {key!r}")
            if key in result:
                raise ValueError(f"{key!r} given twice")
            try:
                result[key] = convert_value(item)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        return result

    return convert


def _token_paths(value: Any) -> dict[str, str]:
    try:
        return _mapping(_text)(value)  # type: ignore[no-any-return]
    except ValueError:  # its message would quote the value, which may be a pasted token
        raise ValueError("expected name=/path/to/token/file,... (the value is not shown)") from None


def _names(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, list | tuple | set | frozenset):
        items = list(value)
    else:
        raise ValueError(f"expected a list of names, got {_kind(value)}")
    if not all(isinstance(item, str) for item in items):
        raise ValueError("expected a list of names")
    # Lower case for display; the log redactor compares names without case or separators.
    return DEFAULT_REDACT_PARAMS | {item.strip().lower() for item in items if item.strip()}


# Field name -> (converter, one-line help for the README table). A unit test checks that this
# table and the dataclass fields name the same settings.
_SPEC: dict[str, tuple[Convert, str]] = {
    "name": (_optional(_text), "service name (class attribute `name`)"),
    "host": (_text, "address to listen on (class attribute `host`)"),
    "port": (_integer(0, 65535), "TCP port, 0 for any free one (class attribute `port`)"),
    "admin_port": (
        _optional(_integer(0, 65535)),
        "port for /metrics and the probes only; when set, /metrics leaves `port`",
    ),
    "accessible_at": (_optional(_url), "URL peers use to reach it; default http://host:port/api"),
    "target": (_optional(_text), "`module:Class` that `serve` runs when given no TARGET"),
    "api_token": (_secret, "token that private methods require"),
    "debug": (_flag, "send exception details to clients; never in production"),
    "log_level": (_level, "DEBUG, INFO, WARNING or ERROR"),
    "log_format": (_log_format, "`json`, `text` for people, or `auto`: text on a terminal"),
    "log_calls": (_flag, "log one line per call"),
    "max_body_bytes": (_integer(1024), "largest request body accepted (413 above)"),
    "route_max_body_bytes": (_integer(0), "body limit of a service's own routes, unless declared"),
    "max_header_bytes": (_integer(1024), "largest request head, and trailer section (431 above)"),
    "max_response_bytes": (_integer(1024), "largest /api response; a bigger one is error -32603"),
    "max_connections": (_integer(1), "open connections per process; more get 503 and close"),
    "max_batch": (_integer(1), "most calls in one JSON-RPC batch"),
    "header_timeout": (_seconds, "seconds for request headers (from connect, then 1st byte)"),
    "max_containers": (_integer(1), "most arrays and objects in one request body (-32700 above)"),
    "body_timeout": (_seconds, "seconds allowed to receive a request body"),
    "idle_timeout": (_seconds, "seconds an idle keep-alive connection stays open"),
    "write_timeout": (_seconds, "seconds a client may leave its responses unread before a cut"),
    "call_timeout": (_seconds, "default deadline of a call, in seconds"),
    "method_timeouts": (_mapping(_seconds), "per-method deadlines: `a=1.5,users.get=3`"),
    "max_concurrency": (
        _integer(1),
        "calls in flight (batch members included) before refusing with -32003",
    ),
    "thread_pool_size": (_integer(1), "threads that run blocking methods"),
    "drain_timeout": (_seconds, "seconds to finish in-flight calls after SIGTERM"),
    "readiness_timeout": (_seconds, "seconds a readiness check may take"),
    "metrics_enabled": (_flag, "serve Prometheus metrics on /metrics"),
    "workers": (_integer(1), "server processes"),
    # The one peers parser (peers.py): the orchestrator and the manifest checks use it too.
    "peers": (parse_peers, "other services' URLs: `hello=http://hello:8000/api,...`"),
    "peer_token_files": (
        _token_paths,
        "per peer, a file holding the token sent to it: `hello=/run/secrets/hello_token`",
    ),
    "redact_params": (
        _names,
        "names hidden in logs besides secret-looking ones (`*token*`, `*secret*`, `auth`...)",
    ),
}


@dataclass(frozen=True, slots=True)
class Settings:
    """The effective settings of one service process; build it with ``Settings.load``.

    Constructing ``Settings(...)`` directly skips all checks: it is meant for tests.
    """

    name: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    admin_port: int | None = None
    accessible_at: str | None = None
    target: str | None = None
    api_token: Secret | None = None
    debug: bool = False
    log_level: str = "INFO"
    log_format: str = "auto"
    log_calls: bool = True
    max_body_bytes: int = 1048576
    route_max_body_bytes: int = 65536
    max_header_bytes: int = 65536
    max_response_bytes: int = 4194304
    max_connections: int = 1024
    max_batch: int = 100
    header_timeout: float = 10.0
    max_containers: int = 50000
    body_timeout: float = 15.0
    idle_timeout: float = 60.0
    write_timeout: float = 30.0
    call_timeout: float = 30.0
    method_timeouts: dict[str, float] = field(default_factory=dict)
    max_concurrency: int = 256
    thread_pool_size: int = 16
    drain_timeout: float = 20.0
    readiness_timeout: float = 2.0
    metrics_enabled: bool = True
    workers: int = 1
    peers: dict[str, str] = field(default_factory=dict)
    peer_token_files: dict[str, str] = field(default_factory=dict)
    redact_params: frozenset[str] = DEFAULT_REDACT_PARAMS

    @classmethod
    def env_names(cls) -> dict[str, str]:
        """Field name -> environment variable name, e.g. ``{"port": "SERVICE_PORT", ...}``."""
        return {f.name: ENV_PREFIX + f.name.upper() for f in dataclasses.fields(cls)}

    @classmethod
    def load(
        cls,
        environ: Mapping[str, str],
        config_file: str | os.PathLike[str] | None = None,
        overrides: Mapping[str, Any] | None = None,
        defaults: Mapping[str, Any] | None = None,
    ) -> Settings:
        """Merge every source by precedence; raise ``ConfigError`` listing all problems found."""
        problems: list[str] = []
        layers = [  # lowest precedence first: a later layer replaces an earlier one's value
            _from_mapping(defaults, lambda name: f"class attribute {name}", problems),
            _from_yaml(config_file, environ, problems),
            _from_environ(environ, problems),
            _from_mapping(overrides, lambda name: "--" + name.replace("_", "-"), problems),
        ]
        chosen: dict[str, Any] = {}
        for layer in layers:
            for name, (raw, where) in layer.items():
                try:
                    value = _SPEC[name][0](raw)
                except ValueError as exc:
                    problems.append(f"{where}: {exc}")
                    continue
                if value is not None:  # blank optional text means "not set", like None
                    chosen[name] = value
        problems.extend(_check_peer_token_files(chosen))
        admin_port = chosen.get("admin_port")
        if admin_port and admin_port == chosen.get("port", DEFAULT_PORT):
            problems.append(f"admin_port: {admin_port} is also the API port; choose another")
        if problems:
            raise ConfigError(problems)
        return cls(**chosen)

    def masked(self) -> dict[str, Any]:
        """Plain data for printing: secrets as ``***``, sets as sorted lists, dicts copied."""
        result: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Secret):
                value = "***"
            elif isinstance(value, frozenset):
                value = sorted(value)
            elif isinstance(value, dict):
                value = dict(value)
            result[f.name] = value
        return result

    def peer_token(self, peer: str) -> Secret | None:
        """The token to send to ``peer``.

        With ``peer_token_files`` set, each peer gets only its own token (None for a peer not
        listed: its private methods will refuse), and this service's ``api_token`` is never
        sent anywhere. Without it, every peer gets ``api_token`` (one token shared by the
        stack). The file is read when called (``load`` checked that it is readable).
        """
        if not self.peer_token_files:
            return self.api_token
        path = self.peer_token_files.get(peer)
        return None if path is None else Secret(_read_token(path))

    def timeout_for(self, method: str) -> float:
        """The deadline of one call to ``method``: its own timeout, else ``call_timeout``."""
        return self.method_timeouts.get(method, self.call_timeout)


KNOWN_ENV_VARS: frozenset[str] = frozenset(
    {*Settings.env_names().values(), TOKEN_FILE_ENV, CONFIG_FILE_ENV, CLIENT_TOKEN_ENV}
)

_Layer = dict[str, tuple[Any, str]]  # field name -> (raw value, where it came from)


def _suggest(word: str, choices: Iterable[str], prefix: str = "") -> str:
    # Compare without the shared prefix, which would make every SERVICE_ name look close.
    bare = [choice.removeprefix(prefix) for choice in sorted(choices)]
    close = difflib.get_close_matches(word.removeprefix(prefix), bare, n=1)
    return f" (did you mean {prefix}{close[0]}?)" if close else ""


def _shown(name: str, raw: Any) -> str:
    # Not shown: a token, or what should be paths to tokens but might be a pasted token.
    return "" if name in ("api_token", "peer_token_files") else f"={raw!r}"


def _from_mapping(
    values: Mapping[str, Any] | None,
    label: Callable[[str], str],
    problems: list[str],
) -> _Layer:
    layer: _Layer = {}
    for name, raw in (values or {}).items():
        if name not in _SPEC:
            problems.append(f"{label(name)}: unknown setting{_suggest(name, _SPEC)}")
        elif raw is not None:
            layer[name] = (raw, label(name) + _shown(name, raw))
    return layer


class _UniqueKeyLoader(yaml.SafeLoader):
    """``SafeLoader`` that rejects a key given twice (plain PyYAML silently keeps the last)."""

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


def _read_yaml(label: str, problems: list[str]) -> Any:
    """The parsed file, or ``None`` (with a problem recorded) when it cannot be used."""
    try:
        text = Path(label).read_text(encoding="utf-8")
        # A SafeLoader subclass, so exactly as safe as yaml.safe_load.
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506
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
        problems.append(f"{label}: top level must be a mapping of settings, got {_kind(data)}")
        return None
    return data  # None for an empty file, which sets nothing


def _from_yaml(
    config_file: str | os.PathLike[str] | None,
    environ: Mapping[str, str],
    problems: list[str],
) -> _Layer:
    path = config_file if config_file is not None else environ.get(CONFIG_FILE_ENV)
    if not path:
        return {}
    label = os.fspath(path)
    layer: _Layer = {}
    for key, raw in (_read_yaml(label, problems) or {}).items():
        if key not in _SPEC:
            problems.append(f"{label}: unknown setting {key!r}{_suggest(str(key), _SPEC)}")
        elif raw is not None:
            layer[key] = (raw, f"{label}: {key}")
    return layer


def _from_environ(environ: Mapping[str, str], problems: list[str]) -> _Layer:
    by_env = {env: name for name, env in Settings.env_names().items()}
    layer: _Layer = {}
    for env, raw in environ.items():
        if not env.startswith(ENV_PREFIX) or env in (
            TOKEN_FILE_ENV,
            CONFIG_FILE_ENV,
            CLIENT_TOKEN_ENV,
        ):
            continue
        name = by_env.get(env)
        if name is None:  # the value is not shown: a misspelt name may hold a secret
            problems.append(f"{env}: unknown setting{_suggest(env, KNOWN_ENV_VARS, ENV_PREFIX)}")
        else:
            layer[name] = (raw, env + _shown(name, raw))
    token_file = environ.get(TOKEN_FILE_ENV)
    if token_file is not None:
        where = f"{TOKEN_FILE_ENV}={token_file!r}"
        if TOKEN_ENV in environ:
            problems.append(f"{TOKEN_ENV} and {TOKEN_FILE_ENV}: set only one of them")
        else:
            try:
                token = _read_token(token_file)
                layer["api_token"] = (token, where)
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                problems.append(f"{where}: cannot read: {reason or exc}")
    return layer


def _read_token(path: str) -> str:
    # Files written by editors and `echo` end in a newline that is not the token.
    return Path(path).read_text(encoding="utf-8").rstrip("\r\n")


def _check_peer_token_files(chosen: Mapping[str, Any]) -> list[str]:
    """Problems with ``peer_token_files``: unknown peers, unreadable or empty files."""
    problems = []
    peers = chosen.get("peers", {})
    for peer, path in chosen.get("peer_token_files", {}).items():
        # A value without a slash is more likely a pasted token than a path: never echo it.
        where = f"peer_token_files: {peer}=" + (repr(path) if "/" in path else "(not a path)")
        if peer not in peers:
            known = ", ".join(sorted(peers)) or "none"
            problems.append(f"{where}: no peer of that name in peers (known: {known})")
            continue
        try:
            token = _read_token(path)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            problems.append(f"{where}: cannot read: {reason or exc}")
            continue
        if not token:
            problems.append(f"{where}: the file is empty")
    return problems


def env_table_markdown() -> str:
    """The README table of settings: name, environment variable, default, meaning."""
    rows = ["| Setting | Environment variable | Default | Meaning |", "|---|---|---|---|"]
    defaults = Settings().masked()
    for name, env in Settings.env_names().items():
        rows.append(f"| `{name}` | `{env}` | {_show_default(defaults[name])} | {_SPEC[name][1]} |")
    rows.append(
        f"| | `{TOKEN_FILE_ENV}` | unset | file holding `api_token` (not with `{TOKEN_ENV}`) |"
    )
    rows.append(f"| | `{CONFIG_FILE_ENV}` | unset | YAML file of settings (as `--config`) |")
    rows.append(f"| | `{CLIENT_TOKEN_ENV}` | unset | token the CLI client commands send |")
    return "\n".join(rows) + "\n"


def _show_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return "`" + ",".join(value) + "`"
    return "empty" if value == {} else f"`{value}`"
