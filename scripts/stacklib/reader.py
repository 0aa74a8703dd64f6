"""Read the Compose file into the model, the way Compose reads it, with one-line errors.

PyYAML resolves anchors and ``<<:`` merges; values are interpolated as Compose does (the
environment over the ``.env`` next to the file); then everything is checked. Every problem
becomes one line naming the place (``services.gateway.depends_on``) and what to do; several are
reported as the first plus a count.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from . import order
from .interpolate import InterpolationError, interpolate, read_env_file
from .model import (
    SECRETS_DIR,
    Compose,
    ComposeError,
    Dependency,
    Healthcheck,
    Port,
    Secret,
    Service,
)

SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
CONDITIONS = ("service_started", "service_healthy", "service_completed_successfully")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def load(path: Path, environ: Mapping[str, str], shown: str | None = None) -> Compose:
    """Read and check the Compose file at ``path``; ``ComposeError`` names the first problem.

    ``shown`` is how the file is named in messages (default: its path).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ComposeError(f"cannot read {shown or path}: {exc.strerror or exc}") from exc
    return parse(text, path, environ, shown)


def parse(text: str, path: Path, environ: Mapping[str, str], shown: str | None = None) -> Compose:
    """Check Compose ``text`` as if it were the file at ``path`` (its folder's ``.env`` applies)."""
    where = shown or str(path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ComposeError(f"{where} is not valid YAML ({_yaml_problem(exc)}); fix it") from exc
    values = {**read_env_file(path.parent / ".env"), **environ}
    reader = Reader(values, path.parent)
    compose = reader.compose(path, document)
    if not reader.problems:
        graph = {name: [d.service for d in s.depends_on] for name, s in compose.services.items()}
        try:
            order.layers(graph)  # Compose refuses a cycle before starting anything; so do we
        except order.CycleError as exc:
            reader.problems.append(f"depends_on: {exc}")
    if reader.problems:
        first, more = reader.problems[0], len(reader.problems) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise ComposeError(f"{where}: {first}{suffix}")
    return compose


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"


def parse_duration(value: Any) -> float:
    """Seconds in a Compose duration: ``"1m30s"``, ``"2s"``, ``"500ms"`` (a number is seconds)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a duration such as 10s, got {value!r}")
    total, position = 0.0, 0
    for match in _DURATION.finditer(value):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(value):
        raise ValueError(f"expected a duration such as 10s or 1m30s, got {value!r}")
    return total


class Reader:
    """Turns the loaded YAML into the model, collecting problems instead of stopping."""

    def __init__(self, values: Mapping[str, str], base: Path) -> None:
        self.values = values
        self.base = base
        self.problems: list[str] = []

    def problem(self, place: str, message: str) -> None:
        self.problems.append(f"{place}: {message}")

    def text(self, value: Any, place: str) -> str | None:
        """An interpolated string (numbers become text, as Compose does); None on a problem."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problem(place, f"expected text, got {type(value).__name__}")
            return None
        try:
            return interpolate(str(value), self.values)
        except InterpolationError as exc:
            self.problem(place, str(exc))
            return None

    def compose(self, path: Path, document: Any) -> Compose:
        if not isinstance(document, dict):
            self.problem("top level", "expected a mapping with a 'services' key")
            return Compose(path, {})
        services_doc = document.get("services")
        if not isinstance(services_doc, dict) or not services_doc:
            self.problem("services", "expected a mapping of at least one service")
            return Compose(path, {})
        secrets = self.secrets(document.get("secrets") or {})
        services: dict[str, Service] = {}
        for name, body in services_doc.items():
            service = self.service(str(name), body, secrets)
            if service is not None:
                services[service.name] = service
        for service in services.values():
            for dependency in service.depends_on:
                if dependency.service not in services_doc:
                    known = ", ".join(services_doc)
                    self.problem(
                        f"services.{service.name}.depends_on",
                        f"unknown service {dependency.service!r} (services: {known})",
                    )
        name = document.get("name")
        return Compose(path, services, secrets, str(name) if name is not None else None)

    def secrets(self, document: Any) -> dict[str, Secret]:
        if not isinstance(document, dict):
            self.problem("secrets", "expected a mapping")
            return {}
        found: dict[str, Secret] = {}
        for name, body in document.items():
            file_value = body.get("file") if isinstance(body, dict) else None
            if file_value is None:
                found[str(name)] = Secret(str(name), None, "not a file secret")
                continue
            try:
                # Kept apart from the other problems: only a backend that mounts the secret
                # needs its file (the local one makes its own).
                file_path = interpolate(str(file_value), self.values)
            except InterpolationError as exc:
                found[str(name)] = Secret(str(name), None, str(exc), str(file_value))
                continue
            resolved = (self.base / file_path).resolve()
            found[str(name)] = Secret(str(name), resolved, None, str(file_value))
        return found

    def service(self, name: str, body: Any, secrets: Mapping[str, Secret]) -> Service | None:
        place = f"services.{name}"
        if not SERVICE_NAME.match(name):
            self.problem(place, "a service name may use only letters, digits, '_', '.' and '-'")
            return None
        if not isinstance(body, dict):
            self.problem(place, "expected a mapping")
            return None
        if "image" not in body and "build" not in body:
            self.problem(place, "needs an image or a build")
        image_text = body.get("image")
        image = self.text(image_text, f"{place}.image") if image_text is not None else None
        return Service(
            name=name,
            image=image,
            image_text=str(image_text) if image_text is not None else None,
            build="build" in body,
            command=self.argv(body.get("command"), f"{place}.command"),
            entrypoint=self.argv(body.get("entrypoint"), f"{place}.entrypoint"),
            environment=self.environment(body.get("environment"), f"{place}.environment"),
            ports=self.ports(body.get("ports"), f"{place}.ports"),
            depends_on=self.dependencies(body.get("depends_on"), f"{place}.depends_on"),
            healthcheck=self.healthcheck(body.get("healthcheck"), f"{place}.healthcheck"),
            profiles=self.names(body.get("profiles"), f"{place}.profiles"),
            secrets=self.service_secrets(body.get("secrets"), f"{place}.secrets", secrets),
            stop_grace_period=self.duration(body.get("stop_grace_period"), place),
        )

    def argv(self, value: Any, place: str) -> tuple[str, ...] | None:
        if value is None:
            return None
        if isinstance(value, str):
            text = self.text(value, place)
            return tuple(shlex.split(text)) if text is not None else None
        if not isinstance(value, list):
            self.problem(place, "expected a list of arguments or a string")
            return None
        words = [self.text(item, f"{place}[{i}]") for i, item in enumerate(value)]
        return tuple(word for word in words if word is not None)

    def environment(self, value: Any, place: str) -> dict[str, str]:
        if value is None:
            return {}
        pairs: list[tuple[str, Any]] = []
        if isinstance(value, dict):
            pairs = [(str(key), item) for key, item in value.items()]
        elif isinstance(value, list):
            for item in value:
                key, sep, rest = str(item).partition("=")
                pairs.append((key, rest if sep else None))
        else:
            self.problem(place, "expected a mapping or a list of NAME=value")
            return {}
        result: dict[str, str] = {}
        for key, item in pairs:
            if item is None:  # "NAME" alone passes the variable through when it is set
                if key in self.values:
                    result[key] = self.values[key]
                continue
            text = self.text(item, f"{place}.{key}")
            if text is not None:
                result[key] = text
        return result

    def ports(self, value: Any, place: str) -> tuple[Port, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem(place, "expected a list")
            return ()
        return tuple(
            port
            for i, item in enumerate(value)
            if (port := self.port(item, f"{place}[{i}]")) is not None
        )

    def port(self, item: Any, place: str) -> Port | None:
        if isinstance(item, dict):
            target = item.get("target")
            published = item.get("published")
            host_ip = item.get("host_ip")
            protocol = str(item.get("protocol", "tcp"))
            raw = " ".join(str(v) for v in (host_ip, published) if v is not None)
            published_text = self.text(published, place) if published is not None else None
            host_text = self.text(host_ip, place) if host_ip is not None else None
        else:
            raw = str(item)
            text = self.text(item, place)
            if text is None:
                return None
            spec, _, protocol = text.partition("/")
            protocol = protocol or "tcp"
            # HOST_IP:PUBLISHED:TARGET, PUBLISHED:TARGET or TARGET (an IPv6 host is in [...]).
            head, _, target = spec.rpartition(":")
            host_text, _, published_text = head.rpartition(":") if head else ("", "", "")
            host_text = host_text.strip("[]") or None
            published_text = published_text or None
        try:
            number = int(str(target))
        except ValueError:
            self.problem(place, f"the container port must be a number, got {target!r}")
            return None
        variables = tuple(dict.fromkeys(_VARIABLE.findall(raw)))
        return Port(number, published_text, host_text, protocol, variables)

    def dependencies(self, value: Any, place: str) -> tuple[Dependency, ...]:
        if value is None:
            return ()
        if isinstance(value, list):
            return tuple(Dependency(str(name)) for name in value)
        if not isinstance(value, dict):
            self.problem(place, "expected a list of services or a mapping")
            return ()
        found = []
        for name, given in value.items():
            spec = given or {}
            condition = str(spec.get("condition", "service_started"))
            if condition not in CONDITIONS:
                self.problem(f"{place}.{name}.condition", f"must be one of {', '.join(CONDITIONS)}")
                continue
            found.append(Dependency(str(name), condition, bool(spec.get("required", True))))
        return tuple(found)

    def healthcheck(self, value: Any, place: str) -> Healthcheck | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem(place, "expected a mapping")
            return None
        test = value.get("test")
        disabled = bool(value.get("disable")) or test in (["NONE"], "NONE")
        retries = value.get("retries")
        if retries is not None and (isinstance(retries, bool) or not isinstance(retries, int)):
            self.problem(f"{place}.retries", "expected a whole number")
            retries = None
        return Healthcheck(
            disabled=disabled,
            interval=self.duration(value.get("interval"), place, "interval"),
            timeout=self.duration(value.get("timeout"), place, "timeout"),
            retries=retries,
            start_period=self.duration(value.get("start_period"), place, "start_period"),
        )

    def duration(self, value: Any, place: str, key: str = "stop_grace_period") -> float | None:
        if value is None:
            return None
        text = self.text(value, f"{place}.{key}") if isinstance(value, str) else value
        if text is None:
            return None
        try:
            return parse_duration(text)
        except ValueError as exc:
            self.problem(f"{place}.{key}", str(exc))
            return None

    def names(self, value: Any, place: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.problem(place, "expected a list of names")
            return ()
        return tuple(value)

    def service_secrets(
        self, value: Any, place: str, secrets: Mapping[str, Secret]
    ) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, list):
            self.problem(place, "expected a list")
            return {}
        mounted: dict[str, str] = {}
        for item in value:
            source = item.get("source") if isinstance(item, dict) else item
            target = item.get("target") if isinstance(item, dict) else None
            if source not in secrets:
                known = ", ".join(secrets) or "none"
                self.problem(place, f"unknown secret {source!r} (top-level secrets: {known})")
                continue
            target = str(target or source)
            mounted[str(source)] = target if target.startswith("/") else f"{SECRETS_DIR}/{target}"
        return mounted
