"""The runtime's own settings: one ``setting(...)`` field each (see ``settings/``).

Precedence, highest first: command-line flags, ``SERVICE_*`` environment variables, the YAML file
(``--config`` or ``SERVICE_CONFIG_FILE``), the service class's attributes (``name``, ``host``,
``port``, ``accessible_at``), then the defaults below. A service extends this class with its own
settings (``settings_class`` on the ``MicroService``), read the same way. The README's
configuration table is ``Settings.env_table()``; a unit test keeps the two equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .logtext import LOG_FORMATS
from .peers import parse_peers
from .settings import BaseSettings, ConfigError, Secret, setting
from .settings.sources import CLIENT_TOKEN_ENV, CONFIG_FILE_ENV, ENV_PREFIX
from .settings.values import mapping, names, optional, seconds, text, url

__all__ = [
    "CLIENT_TOKEN_ENV",
    "CONFIG_FILE_ENV",
    "DEFAULT_REDACT_PARAMS",
    "ENV_PREFIX",
    "KNOWN_ENV_VARS",
    "LOG_LEVELS",
    "TOKEN_ENV",
    "TOKEN_FILE_ENV",
    "ConfigError",
    "Secret",
    "Settings",
    "env_table_markdown",
]

TOKEN_ENV = ENV_PREFIX + "API_TOKEN"
TOKEN_FILE_ENV = TOKEN_ENV + "_FILE"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
DEFAULT_PORT = 8000
DEFAULT_REDACT_PARAMS = frozenset(
    {"password", "token", "secret", "api_token", "api_key", "authorization"}
)


def _redacted_names(value: Any) -> frozenset[str]:
    # Lower case for display; the log redactor compares names without case or separators.
    return DEFAULT_REDACT_PARAMS | {name.lower() for name in names(value)}


def _token_paths(value: Any) -> dict[str, str]:
    try:
        return mapping(text)(value)  # type: ignore[no-any-return]
    except ValueError:  # its message would quote the value, which may be a pasted token
        raise ValueError("expected name=/path/to/token/file,... (the value is not shown)") from None


def _origins(value: Any) -> tuple[str, ...]:
    """``https://a.example,http://127.0.0.1:8080`` (or a YAML list): origins as a browser sends
    them (scheme, host, port unless the default; lower case), each once, in order."""
    items = names(value)  # ValueError for anything but text or a list of text
    return tuple(dict.fromkeys(_origin(item) for item in items))


def _origin(text: str) -> str:
    if text == "*":
        raise ValueError("'*' is not accepted: list the origins that may call the service")
    try:
        parts = urlsplit(text)
        port = parts.port  # raises for a port that is not a number in range
    except ValueError:
        raise ValueError(f"{text!r} is not an origin (scheme://host[:port])") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise ValueError(f"{text!r} is not an origin (scheme://host[:port], no path)")
    # Browsers send an origin in lower case and without the scheme's default port.
    netloc = parts.netloc.lower()
    if port == {"http": 80, "https": 443}[parts.scheme]:
        netloc = netloc.rsplit(":", 1)[0]
    return f"{parts.scheme}://{netloc}"


class Settings(BaseSettings):
    """The effective settings of one service process; build it with ``Settings.load``."""

    name: str | None = setting(default=None, help="service name (class attribute `name`)")
    host: str = setting(default="127.0.0.1", help="address to listen on (class attribute `host`)")
    port: int = setting(
        default=DEFAULT_PORT,
        low=0,
        high=65535,
        help="TCP port, 0 for any free one (class attribute `port`)",
    )
    admin_port: int | None = setting(
        default=None,
        low=0,
        high=65535,
        help="port for /metrics and the probes only; when set, /metrics leaves `port`",
    )
    accessible_at: str | None = setting(
        default=None,
        parse=optional(url),
        help="URL peers use to reach it; default http://host:port/api",
    )
    target: str | None = setting(
        default=None, help="`module:Class` that `serve` runs when given no TARGET"
    )
    api_token: Secret | None = setting(default=None, help="token that private methods require")
    publish_private_methods: bool = setting(
        default=False,
        help="list private methods in rpc.discover for callers without a valid token too",
    )
    debug: bool = setting(
        default=False, help="send exception details to clients; never in production"
    )
    log_level: str = setting(
        default="INFO", choices=LOG_LEVELS, help="DEBUG, INFO, WARNING or ERROR"
    )
    log_format: str = setting(
        default="auto",
        choices=LOG_FORMATS,
        help="`json`, `text` for people, or `auto`: text on a terminal",
    )
    log_calls: bool = setting(default=True, help="log one line per call")
    max_body_bytes: int = setting(
        default=1048576, low=1024, help="largest request body accepted (413 above)"
    )
    route_max_body_bytes: int = setting(
        default=65536, low=0, help="body limit of a service's own routes, unless declared"
    )
    max_header_bytes: int = setting(
        default=65536, low=1024, help="largest request head, and trailer section (431 above)"
    )
    max_response_bytes: int = setting(
        default=4194304, low=1024, help="largest /api response; a bigger one is error -32603"
    )
    max_connections: int = setting(
        default=1024, low=1, help="open connections per process; more get 503 and close"
    )
    max_batch: int = setting(default=100, low=1, help="most calls in one JSON-RPC batch")
    max_pipelined: int = setting(
        default=64, low=1, help="requests a connection may queue behind one (503, close above)"
    )
    write_buffer_bytes: int = setting(
        default=262144,
        low=4096,
        help="unread output per connection above which it stops reading (resumes at 1/4)",
    )
    max_unsent_bytes: int = setting(
        default=67108864,
        low=1048576,
        help="unread output of all connections; past it, one more that stops reading is cut",
    )
    header_timeout: float = setting(
        default=10.0,
        parse=seconds,
        help="seconds for request headers (from connect, then 1st byte)",
    )
    max_containers: int = setting(
        default=50000, low=1, help="most arrays and objects in one request body (-32700 above)"
    )
    body_timeout: float = setting(
        default=15.0, parse=seconds, help="seconds allowed to receive a request body"
    )
    idle_timeout: float = setting(
        default=60.0, parse=seconds, help="seconds an idle keep-alive connection stays open"
    )
    write_timeout: float = setting(
        default=30.0,
        parse=seconds,
        help="seconds a client may leave its responses unread before a cut",
    )
    call_timeout: float = setting(
        default=30.0, parse=seconds, help="default deadline of a call, in seconds"
    )
    method_timeouts: dict[str, float] = setting(
        factory=dict,
        parse=mapping(seconds),
        help="per-method deadlines: `a=1.5,users.get=3`",
    )
    max_concurrency: int = setting(
        default=256,
        low=1,
        help="calls in flight (batch members included) before refusing with -32003",
    )
    thread_pool_size: int = setting(default=16, low=1, help="threads that run blocking methods")
    drain_timeout: float = setting(
        default=20.0, parse=seconds, help="seconds to finish in-flight calls after SIGTERM"
    )
    readiness_timeout: float = setting(
        default=2.0, parse=seconds, help="seconds a readiness check may take"
    )
    metrics_enabled: bool = setting(default=True, help="serve Prometheus metrics on /metrics")
    workers: int = setting(default=1, low=1, help="server processes")
    peers: dict[str, str] = setting(
        factory=dict,
        parse=parse_peers,  # the one peers parser: the orchestrator and manifest checks use it
        help="other services' URLs: `hello=http://hello:8000/api,...`",
    )
    peer_token_files: dict[str, str] = setting(
        factory=dict,
        parse=_token_paths,
        redact=True,  # paths, but a pasted token may stand where a path belongs
        help="per peer, a file holding the token sent to it: `hello=/run/secrets/hello_token`",
    )
    cors_origins: tuple[str, ...] = setting(
        default=(),
        parse=_origins,
        help="origins whose web pages may call /api (CORS): `https://app.example.com,...`; "
        "none by default",
    )
    cors_allow_credentials: bool = setting(
        default=False, help="let those pages send cookies (`Access-Control-Allow-Credentials`)"
    )
    cors_max_age: int = setting(
        default=600, low=0, high=86400, help="seconds a browser may cache a preflight's answer"
    )
    redact_params: frozenset[str] = setting(
        default=DEFAULT_REDACT_PARAMS,
        parse=_redacted_names,
        help="names hidden in logs besides secret-looking ones (`*token*`, `*secret*`, `auth`...)",
    )

    def check(self) -> Iterable[str]:
        """Token files that name known peers and can be read; two different ports."""
        yield from super().check()
        yield from _check_peer_token_files(self.peers, self.peer_token_files)
        if self.admin_port and self.admin_port == self.port:
            yield f"admin_port: {self.admin_port} is also the API port; choose another"

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


def _read_token(path: str) -> str:
    # Files written by editors and `echo` end in a newline that is not the token.
    return Path(path).read_text(encoding="utf-8").rstrip("\r\n")


def _check_peer_token_files(peers: dict[str, str], files: dict[str, str]) -> list[str]:
    """Problems with ``peer_token_files``: unknown peers, unreadable or empty files."""
    problems = []
    for peer, path in files.items():
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


KNOWN_ENV_VARS: frozenset[str] = Settings.known_env_vars()


def env_table_markdown() -> str:
    """The README table of the runtime's settings: name, environment variable, default, meaning."""
    return Settings.env_table()
