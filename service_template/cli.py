"""The ``service-template`` command line (also ``python -m service_template``).

::

    serve [TARGET] [--host H] [--port P] [--config FILE] [--workers N] [--debug]
          [--set NAME=VALUE ...]                any setting, the service's own included
    config [TARGET] [same options as serve]     effective settings as YAML, secrets masked
    call URL METHOD [ARGS...] [--token T] [--timeout S]
    call-raw URL JSON [--token T] [--timeout S]  POST JSON as it is, print the answer
    methods URL [--token T] [--timeout S]        the service's methods, from rpc.discover
    health URL [--timeout S]                     its /livez and /readyz

URL is the JSON-RPC URL (``http://host:8000/api``) or the service's base URL, to which ``/api``
is added; ``http://`` may be left out. The token comes from ``--token``, else from
``SERVICE_CLIENT_TOKEN``, and is sent in the ``X-Api-Token`` header.

Each ARG of ``call`` is JSON if it parses as JSON, else a string: ``3`` is a number, ``'"3"'``
the string "3", ``world`` the string "world". ``name=value`` (an identifier before ``=``)
makes a named param; positional and named params cannot be mixed.

Exit status: 0 on success; 1 when a call fails (an error answer, no connection, a timeout, a
service not ready); 2 for a usage or configuration error. Errors are printed to stderr as one
``error: ...`` line, never as a traceback. Each command imports what it needs when it runs, so
``serve`` never loads the HTTP client and ``call`` never loads the server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from service_template.client import RemoteClient

__all__ = ["TOKEN_ENV", "build_parser", "format_methods", "main", "make_client", "parse_call_args"]

TOKEN_ENV = "SERVICE_CLIENT_TOKEN"  # noqa: S105 (the variable's name, not a secret)
DEFAULT_TIMEOUT = 10.0


class UsageError(Exception):
    """A mistake in the command line; exit status 2."""


def make_client(url: str, *, token: str | None, timeout: float) -> RemoteClient:
    """The client every network command uses; tests replace it to inject a mock transport."""
    from service_template.client import RemoteClient

    return RemoteClient(url, token=token, timeout=timeout)


def api_url(url: str) -> str:
    """``host:8000`` or ``http://host:8000`` -> ``http://host:8000/api``; other paths are kept."""
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return urlunsplit(parts._replace(path="/api"))
    return url


def parse_call_args(words: Sequence[str]) -> tuple[list[Any], dict[str, Any]]:
    """Positional and named params from ``call`` ARGS (see the module docstring)."""
    positional: list[Any] = []
    named: dict[str, Any] = {}
    for word in words:
        name, sep, text = word.partition("=")
        if sep and name.isidentifier():
            if name in named:
                raise UsageError(f"parameter {name!r} is given twice")
            named[name] = _json_or_text(text)
        else:
            positional.append(_json_or_text(word))
    if positional and named:
        raise UsageError(
            "cannot mix positional and name=value arguments (JSON-RPC sends one or the other)"
        )
    return positional, named


def _json_or_text(text: str) -> Any:
    from service_template.protocol import codec, errors

    try:
        return codec.loads(text)
    except errors.ParseError:
        return text


def _client(args: argparse.Namespace) -> RemoteClient:
    token = getattr(args, "token", None) or os.environ.get(TOKEN_ENV) or None
    try:
        return make_client(api_url(args.url), token=token, timeout=args.timeout)
    except ValueError as exc:  # an unusable URL or timeout
        raise UsageError(str(exc)) from exc


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _cmd_call(args: argparse.Namespace) -> int:
    positional, named = parse_call_args(args.args)
    with _client(args) as client:
        _print_json(client.call(args.method, *positional, **named))
    return 0


def _cmd_call_raw(args: argparse.Namespace) -> int:
    from service_template.protocol import errors

    with _client(args) as client:
        answer = client.send_raw(args.json.encode())
    if answer is None:  # a notification, or a batch of them: nothing comes back
        return 0
    _print_json(answer)
    items = answer if isinstance(answer, list) else [answer]
    failed = [i["error"] for i in items if isinstance(i, dict) and isinstance(i.get("error"), dict)]
    if not failed:
        return 0
    more = f" (and {len(failed) - 1} more errors)" if len(failed) > 1 else ""
    _error(f"{_describe(errors.error_from_dict(failed[0]))}{more}")
    return 1


def _cmd_methods(args: argparse.Namespace) -> int:
    with _client(args) as client:
        document = client.call("rpc.discover")
        print(format_methods(document, client.url))
    return 0


def _cmd_health(args: argparse.Namespace) -> int:
    with _client(args) as client:
        probes = [client.health("livez"), client.health("readyz")]
    for probe in probes:
        print(f"{probe.probe}: {probe.status} (HTTP {probe.status_code})")
        for name, entries in probe.checks.items():
            for item in entries if isinstance(entries, list) else [entries]:
                entry = item if isinstance(item, dict) else {}
                output = f" ({entry['output']})" if entry.get("output") else ""
                print(f"  {name}: {entry.get('status', '?')}{output}")
    failing = [probe.probe for probe in probes if not probe.ok]
    if failing:
        _error(f"{' and '.join(failing)} failing at {client.url}")
        return 1
    return 0


def _type_of(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    if isinstance(schema.get("type"), str):
        return str(schema["type"])
    if isinstance(schema.get("anyOf"), list):
        return " | ".join(_type_of(option) for option in schema["anyOf"])
    if isinstance(schema.get("enum"), list):
        return " | ".join(json.dumps(value) for value in schema["enum"])
    return "any"


def format_methods(document: Any, url: str) -> str:
    """A readable table of an OpenRPC document's methods."""
    from service_template.client import ProtocolError

    methods = document.get("methods") if isinstance(document, dict) else None
    if not isinstance(methods, list):
        raise ProtocolError(f"rpc.discover at {url} did not return an OpenRPC document")
    info = document.get("info") if isinstance(document.get("info"), dict) else {}
    rows = [("METHOD", "PARAMS", "TOKEN", "SUMMARY")]
    for method in (m for m in methods if isinstance(m, dict)):
        params = [p for p in method.get("params") or [] if isinstance(p, dict)]
        shown = ", ".join(
            f"{p.get('name')}{'' if p.get('required') else '?'}: {_type_of(p.get('schema'))}"
            for p in params
        )
        summary = method.get("summary") or str(method.get("description") or "").split("\n")[0]
        token = "yes" if method.get("x-requires-token") else "no"
        rows.append((str(method.get("name")), shown or "-", token, str(summary)))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    title = f"{info.get('title', '?')} {info.get('version', '')}".strip()
    lines = [f"{title}: {len(rows) - 1} methods at {url}", ""]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[3]]).rstrip())
    return "\n".join(lines)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    # Only flags that were given: an absent flag must not hide the environment or the file.
    # Values stay text so config checks them exactly like environment values.
    given = {"host": args.host, "port": args.port, "workers": args.workers, "debug": args.debug}
    overrides = {name: value for name, value in given.items() if value is not None}
    for item in args.set or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--set needs NAME=VALUE, got {item!r}")
        if name.strip() in overrides:
            raise UsageError(f"setting {name.strip()!r} is given twice on the command line")
        overrides[name.strip()] = value
    return overrides


def _resolve(args: argparse.Namespace) -> tuple[Any, Any]:
    from service_template import loader

    try:
        return loader.resolve(args.target, os.environ, args.config_file, _overrides(args))
    except ValueError as exc:  # ConfigError and StartupError: the user's to fix
        if _debugging(args) and exc.__cause__ is not None:
            # --debug: the whole story of an import-time error, not just where it happened.
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        raise UsageError(str(exc)) from exc


def _debugging(args: argparse.Namespace) -> bool:
    flag = getattr(args, "debug", None) or os.environ.get("SERVICE_DEBUG", "")
    return str(flag).strip().lower() in ("1", "true", "yes", "on")


def _cmd_serve(args: argparse.Namespace) -> int:
    from service_template import runner

    cls, settings = _resolve(args)
    return runner.run(lambda: cls(settings), settings)


def _cmd_config(args: argparse.Namespace) -> int:
    import yaml

    cls, settings = _resolve(args)
    print(f"# {cls.__module__}:{cls.__qualname__}")
    print(yaml.safe_dump(settings.masked(), sort_keys=False, allow_unicode=True), end="")
    return 0


Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    # Named as it was run: the project's own command (renamed with the project) or `python -m`.
    prog = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if prog in ("", "__main__.py", "-c"):
        prog = "python -m service_template"
    parser = argparse.ArgumentParser(prog=prog, description="Run and call JSON-RPC microservices.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Command, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    for name, handler, text in (
        ("serve", _cmd_serve, "run a service"),
        ("config", _cmd_config, "print a service's effective settings as YAML (secrets masked)"),
    ):
        sub = add(name, handler, text)
        sub.add_argument(
            "target", nargs="?", metavar="TARGET", help="module:Class or file.py:Class"
        )
        sub.add_argument("--host", help="address to listen on")
        sub.add_argument("--port", help="port to listen on (0: any free port)")
        sub.add_argument("--config", dest="config_file", metavar="FILE", help="YAML settings file")
        sub.add_argument("--workers", help="server processes")
        sub.add_argument("--debug", action="store_const", const="true", help="debug mode")
        sub.add_argument(
            "--set",
            action="append",
            metavar="NAME=VALUE",
            help="any setting by its name, e.g. --set max_batch=10 (repeatable)",
        )

    call = add("call", _cmd_call, "call a method and print its result as JSON")
    call.add_argument("url", metavar="URL")
    call.add_argument("method", metavar="METHOD")
    call.add_argument(
        "args", nargs="*", default=[], metavar="ARGS", help="JSON or text; name=value for named"
    )
    raw = add("call-raw", _cmd_call_raw, "POST a JSON-RPC request as it is; print the answer")
    raw.add_argument("url", metavar="URL")
    raw.add_argument("json", metavar="JSON", help="the request body")
    methods = add("methods", _cmd_methods, "list the methods a service offers")
    methods.add_argument("url", metavar="URL")
    health = add("health", _cmd_health, "show a service's liveness and readiness")
    health.add_argument("url", metavar="URL")
    for sub in (call, raw, methods, health):
        sub.add_argument(
            "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S", help="seconds (10)"
        )
    for sub in (call, raw, methods):
        sub.add_argument("--token", metavar="T", help=f"API token (default: ${TOKEN_ENV})")
    return parser


def _describe(exc: BaseException) -> str:
    from service_template.protocol.errors import RPCError

    text = str(exc)
    if isinstance(exc, RPCError) and exc.data is not None:
        text += f" (data: {json.dumps(exc.data, ensure_ascii=False, default=str)})"
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        text += f" (retry after {retry_after:g} s)"
    return text


def _error(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed help (0) or the usage error (2)
        return exc.code if isinstance(exc.code, int) else 2
    handler: Command = args.handler
    try:
        return handler(args)
    except UsageError as exc:
        _error(str(exc))
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from service_template.client import ClientError
        from service_template.protocol.errors import RPCError

        if isinstance(exc, ClientError | RPCError):
            _error(_describe(exc))
            return 1
        raise
