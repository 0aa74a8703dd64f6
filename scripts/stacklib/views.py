"""Commands that look at a running stack: ``status``, ``smoke``, ``call`` and ``logs``.

Each resolves services by their Compose names in the stack the state file records, on either
backend: local services by their loopback URLs, containers from inside (``compose exec``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from . import logs, probe, procs
from . import state as st
from .context import SCRIPT, Context, unknown_service
from .errors import StackError
from .model import Compose, Service

STATUS_HEADERS = ("SERVICE", "URL", "STATE", "READINESS", "CALLS", "ERRORS", "IN FLIGHT")
Row = list[str]


def _count(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _metrics_cells(answer: dict[str, Any] | None) -> list[str]:
    page = answer.get("metrics") if answer else None
    if not page:
        return ["-", "-", "-"]
    numbers = probe.summarize_metrics(page)
    return [_count(numbers["calls"]), _count(numbers["errors"]), _count(numbers["in_flight"])]


def _readiness(answer: dict[str, Any]) -> str:
    if answer["ready"] == 200:
        return "ready"
    if answer["ready"] is None:
        return f"no answer ({answer['ready_detail']})"
    return f"not ready (HTTP {answer['ready']})"


def local_rows(ctx: Context, recorded: st.State, metrics: bool = False) -> list[Row]:
    rows = []
    for name, record in recorded.services.items():
        if not procs.is_running(record.pid, record.start):
            rows.append([name, record.url, "exited", f"see `{SCRIPT} logs {name}`", "-", "-", "-"])
            continue
        answer = probe.probe(record.url.removesuffix("/api"), metrics=metrics)
        rows.append([name, record.url, "running", _readiness(answer), *_metrics_cells(answer)])
    rows += [[name, "-", "skipped", why, "-", "-", "-"] for name, why in recorded.skipped.items()]
    return rows


def _published_url(row: dict[str, Any], template: bool) -> str:
    for publisher in row.get("Publishers") or []:
        port = publisher.get("PublishedPort")
        if port:
            host = publisher.get("URL") or "127.0.0.1"
            host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - display
            return f"http://{host}:{port}" + ("/api" if template else "")
    return "- (stack network only)"


def docker_rows(
    ctx: Context, recorded: st.State, compose: Compose, metrics: bool = False
) -> list[Row]:
    containers = {str(row.get("Service")): row for row in ctx.docker.ps(recorded)}
    rows = []
    for service in compose.services.values():
        name = service.name
        why = _skip_reason(service, recorded.profiles)
        if why is not None:
            rows.append([name, "-", "skipped", why, "-", "-", "-"])
            continue
        row = containers.get(name)
        if row is None:
            rows.append([name, "-", "no container", "-", "-", "-", "-"])
            continue
        template = compose.runs_template_image(service)
        state = str(row.get("State"))
        readiness = str(row.get("Health") or "no healthcheck")
        answer = None
        if metrics and template and state == "running":
            answer = ctx.docker.probe(recorded, service, discover=False)
            readiness = _readiness(answer)
        url = _published_url(row, template)
        rows.append([name, url, state, readiness, *_metrics_cells(answer)])
    return rows


def status(ctx: Context, _args: argparse.Namespace) -> int:
    """A table of every service: state, readiness and its call counters."""
    recorded = ctx.running_state()
    if recorded.backend == "docker":
        rows = docker_rows(ctx, recorded, ctx.compose(recorded.env), metrics=True)
    else:
        rows = local_rows(ctx, recorded, metrics=True)
    ctx.ui.table(STATUS_HEADERS, rows)
    unready = [row[0] for row in rows if row[2] != "skipped" and row[3] not in ("ready", "healthy")]
    if unready:
        ctx.ui.error(f"not ready: {', '.join(unready)}; see `{SCRIPT} logs {unready[0]}`")
        return 1
    return 0


def _skip_reason(service: Service, profiles: list[str]) -> str | None:
    if service.profiles and not set(service.profiles) & set(profiles):
        return f"profile {service.profiles[0]} not enabled (--profile {service.profiles[0]})"
    return None


def _targets(ctx: Context, recorded: st.State) -> tuple[Compose | None, list[str], dict[str, str]]:
    """The stack's Compose model (Docker only), the services it runs, those it skips."""
    if recorded.backend != "docker":
        return None, list(recorded.services), dict(recorded.skipped)
    compose = ctx.compose(recorded.env)
    names, skipped = [], {}
    for service in compose.services.values():
        reason = _skip_reason(service, recorded.profiles)
        if reason is None:
            names.append(service.name)
        else:
            skipped[service.name] = reason
    return compose, names, skipped


def smoke(ctx: Context, _args: argparse.Namespace) -> int:
    """Each service's /readyz and one real call (``rpc.discover``); exit 1 if any fails."""
    recorded = ctx.running_state()
    compose, names, skipped = _targets(ctx, recorded)
    failed = 0
    for name in names:
        if compose is not None and not compose.runs_template_image(compose.services[name]):
            health = {str(r.get("Service")): r.get("Health") for r in ctx.docker.ps(recorded)}
            ok = health.get(name) == "healthy"
            failed += not ok
            ctx.ui.print(f"{'PASS' if ok else 'FAIL'} {name}: Compose health {health.get(name)}")
            continue
        if compose is not None:
            answer = ctx.docker.probe(recorded, compose.services[name], discover=True)
        else:
            base = recorded.services[name].url.removesuffix("/api")
            answer = probe.probe(base, metrics=False, discover=True)
        found = answer.get("discover") or {}
        ok = answer["ready"] == 200 and "title" in found
        failed += not ok
        call = (
            f"rpc.discover -> {found['title']} ({found['methods']} public methods)"
            if "title" in found
            else f"rpc.discover failed: {found.get('error')}"
        )
        ctx.ui.print(f"{'PASS' if ok else 'FAIL'} {name}: {_readiness(answer)}, {call}")
    for name, why in skipped.items():
        ctx.ui.print(f"SKIP {name}: {why}")
    if failed or not names:
        ctx.ui.error(f"smoke test failed for {failed} of {len(names)} services")
        return 1
    return 0


def _token(ctx: Context, explicit: str | None, token_file: Path | None) -> str | None:
    if explicit:
        return explicit
    if ctx.environ.get("SERVICE_CLIENT_TOKEN"):
        return ctx.environ["SERVICE_CLIENT_TOKEN"]
    if token_file is not None and token_file.is_file():
        return token_file.read_text().strip()
    return None


def _docker_token_file(compose: Compose, service: Service) -> Path | None:
    mounted = service.environment.get("SERVICE_API_TOKEN_FILE")
    for name, target in service.secrets.items():
        if target == mounted:
            return compose.secrets[name].file
    return None


def call(ctx: Context, args: argparse.Namespace) -> int:
    """Call METHOD of SERVICE with the service CLI's own argument rules and client."""
    recorded = ctx.running_state()
    name = args.service
    compose, names, skipped = _targets(ctx, recorded)
    if name in skipped:
        raise StackError(f"{name} is not running: {skipped[name]}", status=2)
    if compose is not None:
        if name not in names:
            raise unknown_service(name, names)
        service = compose.services[name]
        if not compose.runs_template_image(service):
            raise StackError(
                f"{name} does not run the template image: it has no JSON-RPC API", status=2
            )
        token = _token(ctx, args.token, _docker_token_file(compose, service))
        return ctx.docker.call(
            recorded,
            service,
            method=args.method,
            args=args.args,
            timeout=args.timeout,
            token=token,
        )
    if name not in recorded.services:
        raise unknown_service(name, [*recorded.services, *recorded.skipped])
    record = recorded.services[name]
    if not procs.is_running(record.pid, record.start):
        raise StackError(f"{name} is not running any more; see `{SCRIPT} logs {name}`")
    from service_template import cli

    token = _token(ctx, args.token, Path(record.token_file) if record.token_file else None)
    # `--token=T`, one word: a token may start with '-' (token_urlsafe gives one in 64), which
    # argparse would read as an option after a separate `--token`.
    options = ["--timeout", str(args.timeout), *([f"--token={token}"] if token else [])]
    return cli.main(["call", *options, record.url, args.method, "--", *args.args])


def show_logs(ctx: Context, args: argparse.Namespace) -> int:
    """The services' logs merged by time and prefixed by service; ``-f`` follows them."""
    recorded = st.load(ctx.paths) or ctx.adopted()
    if recorded is not None and recorded.backend == "docker":
        _, names, _ = _targets(ctx, recorded)
        for name in args.services:
            if name not in names:
                raise unknown_service(name, names)
        return ctx.docker.logs(recorded, args.services, args.follow, args.tail)
    known = (
        list(recorded.services)
        if recorded
        else sorted(p.stem for p in ctx.paths.logs.glob("*.log"))
    )
    if not known:
        raise StackError(f"no logs yet; start the stack with `{SCRIPT} up`")
    for name in args.services:
        if name not in known:
            raise unknown_service(name, known)
    files = {name: ctx.paths.log(name) for name in (args.services or known)}
    backlog = logs.merged(files, args.tail)
    if not args.follow or recorded is None:
        for line in backlog:
            ctx.ui.print(line)
        return 0
    local = ctx.local
    logs.follow(
        files,
        ctx.ui.print,
        lambda: st.same_run(ctx.paths, recorded) and bool(local.running(recorded)),
        time.sleep,
        backlog,
    )
    return 0
