"""The ``stack.py`` command line: parse, run one command, turn problems into one-line errors.

Exit status: 0 on success; 1 when something failed (a service, a call, the engine); 2 for a
usage error (an unknown service, a bad option); 130 after Ctrl-C outside ``up``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType

from . import foreground, lifecycle, peerfiles, remove, scaffold, views
from . import state as st
from .context import Context
from .errors import StackError
from .ui import UI

Command = Callable[[Context, argparse.Namespace], int]
DEFAULT_CALL_TIMEOUT = 10.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stack.py",
        description="Run, watch, call and tear down the Compose stack; create services.",
        epilog="The stack is compose/compose.yaml: local processes by default, --docker for "
        "containers. See scripts/stack.py for examples.",
    )
    parser.add_argument(
        "-f", "--file", metavar="FILE", help="the Compose file (default: compose/compose.yaml)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Command, text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    up = add("up", lifecycle.up, "start the stack, print its services, follow the logs")
    up.add_argument("--docker", action="store_true", help="run it on Docker with Compose")
    up.add_argument("-d", "--detach", action="store_true", help="return once it is up")
    up.add_argument(
        "--profile", action="append", default=[], metavar="NAME", help="enable a Compose profile"
    )
    up.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="NAME=PORT",
        help="local backend: serve NAME on this port instead of a free one",
    )
    up.add_argument("--timeout", type=float, metavar="S", help="readiness limit per service")
    up.add_argument(
        "--replace", action="store_true", help="stop a stack running in the background first"
    )
    up.add_argument(
        "--watch",
        action="store_true",
        help="with --docker: the image's dev target, synced and restarted on each save "
        "(Compose's develop.watch)",
    )
    up.add_argument(
        "--no-reload",
        action="store_true",
        help="local backend: do not restart services when their code changes",
    )
    add("down", lifecycle.down, "stop everything the stack runs and remove it")
    add("status", views.status, "health and key metrics of each service")
    smoke = add("smoke", views.smoke, "check each service's /readyz and one call (for CI)")
    smoke.set_defaults(timeout=None)
    logs = add("logs", views.show_logs, "the services' logs, merged and prefixed by service")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument("--tail", type=int, metavar="N", help="only the last N lines")
    logs.add_argument("services", nargs="*", metavar="SERVICE")
    call = add("call", views.call, "call a method of a service by its name in the stack")
    call.add_argument("--token", metavar="T", help="API token (default: the stack's own)")
    call.add_argument(
        "--timeout", type=float, default=DEFAULT_CALL_TIMEOUT, metavar="S", help="seconds (10)"
    )
    call.add_argument("service", metavar="SERVICE")
    call.add_argument("method", metavar="METHOD")
    call.add_argument(
        "args", nargs="*", metavar="ARGS", help="JSON or text; name=value for named params"
    )
    attach = add(
        "attach",
        foreground.command,
        "run one local service in this terminal (breakpoint() works); the rest keeps running",
    )
    attach.add_argument("service", metavar="SERVICE")
    new = add("new", scaffold.command, "create a service: module, tests, Compose and Kubernetes")
    new.add_argument("name", metavar="NAME", help="lower-case letters and digits, e.g. billing")
    new.add_argument(
        "--called-by",
        default=None,
        metavar="CALLERS",
        help="who may call it: services of the stack and/or `ingress` (public), comma-separated;"
        " writes their peers, tokens and NetworkPolicies (asked on a terminal; otherwise no one)",
    )
    gone = add(
        "remove", remove.command, "delete a service: module, tests, Compose, Kubernetes entries"
    )
    gone.add_argument("name", metavar="NAME", help="a service of the stack that no one calls")
    peers = add(
        "peers",
        peerfiles.command,
        "write the Kubernetes copy of who calls whom (k8s/base/peers.yaml, the prod "
        "peer-policies.yaml) from SERVICE_PEERS in the Compose file",
    )
    peers.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 when the copy is stale"
    )
    return parser


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    # SIGTERM and SIGHUP (a closed terminal) stop the stack the way Ctrl-C does.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(
    argv: list[str], repo: Path, environ: Mapping[str, str] | None = None, ui: UI | None = None
) -> int:
    """Run one command against the repository at ``repo``; the exit status."""
    ui = ui or UI()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    environ = dict(os.environ if environ is None else environ)
    compose_file = Path(args.file).resolve() if args.file else repo / "compose" / "compose.yaml"
    ctx = Context(st.Paths(repo, compose_file), ui, environ)
    handler: Command = args.handler
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        return handler(ctx, args)
    except StackError as exc:
        ui.error(str(exc), exc.details)
        return exc.status
    except KeyboardInterrupt:
        ui.say("interrupted")
        return 130
    finally:
        # Python flushes stdout at exit; with the reader gone that would print a traceback.
        with contextlib.suppress(BrokenPipeError, ValueError):
            sys.stdout.flush()
