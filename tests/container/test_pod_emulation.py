"""Pod emulation: a Deployment of the prod overlay, run under Docker with exactly the
settings its manifest gives, probed as the kubelet would, and terminated as the kubelet would.

No cluster can run here, so the rendered manifest (``kubectl kustomize k8s/overlays/prod``) is
translated setting by setting into a ``docker run``: args (or command), env with the ConfigMap's
``envFrom`` values, user/group and fsGroup, read-only root filesystem, dropped capabilities, no
privilege escalation, resource limits, emptyDir volumes as tmpfs and the Secret volume as a
read-only bind mount with the manifest's file mode and group. A manifest setting this module does
not know how to emulate fails the test rather than being silently ignored.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import defined_stack

from .conftest import Containers, unavailable
from .support import (
    REPO,
    TOKEN,
    CallLoad,
    Reply,
    call_log_ids,
    check_no_accepted_call_failed,
    get,
    log_entries,
    note,
    result_of,
    rpc,
    wait_for,
)

pytestmark = pytest.mark.container

OVERLAY = REPO / "k8s" / "overlays" / "prod"
# A service of the project that calls no one (so it starts alone): whichever the stack has.
DEPLOYMENT = next(
    name for name in sorted(defined_stack().app_names()) if not defined_stack().services[name].peers
)
# The Secret the prod overlay only refers to (an operator creates it): its value for the test.
SECRETS = {f"{DEPLOYMENT}-api-token": {"api-token": TOKEN}}
# What the kubelet sends with an HTTP probe, besides the probe's own httpHeaders.
KUBELET_HEADERS = {"User-Agent": "kube-probe/1.33", "Accept": "*/*"}
QUANTITY = re.compile(r"^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$")
PROBE_FIELDS = {
    "httpGet",
    "timeoutSeconds",
    "periodSeconds",
    "failureThreshold",
    "successThreshold",
    "initialDelaySeconds",
}
SUFFIXES = {
    None: 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
}


def quantity(value: str | int) -> float:
    """A Kubernetes resource quantity ("256Mi", "100m", "1") as a number."""
    match = QUANTITY.match(str(value))
    assert match, f"quantity {value!r} is not understood by this emulation"
    return float(match.group(1)) * SUFFIXES[match.group(2)]


@dataclass(frozen=True)
class Probe:
    """An httpGet probe of the manifest."""

    path: str
    port: int
    timeout: float
    period: float
    failure_threshold: int
    initial_delay: float
    headers: dict[str, str]

    @classmethod
    def parse(cls, spec: dict[str, Any], ports: dict[str, int]) -> Probe:
        unknown = set(spec) - PROBE_FIELDS
        assert not unknown, f"probe fields not emulated: {sorted(unknown)}"
        http = spec["httpGet"]
        assert http.get("scheme", "HTTP") == "HTTP" and "host" not in http, http
        port = http["port"]
        return cls(
            path=http.get("path", "/"),
            port=ports[port] if isinstance(port, str) else int(port),
            # Kubernetes' defaults for the fields a probe leaves out.
            timeout=spec.get("timeoutSeconds", 1),
            period=spec.get("periodSeconds", 10),
            failure_threshold=spec.get("failureThreshold", 3),
            initial_delay=spec.get("initialDelaySeconds", 0),
            headers={h["name"]: h["value"] for h in http.get("httpHeaders", [])},
        )

    def hit(self, address: str) -> Reply:
        """One probe, as the kubelet makes it: GET with the probe's timeout as the deadline."""
        return get(
            f"http://{address}:{self.port}{self.path}",
            timeout=self.timeout,
            headers={**KUBELET_HEADERS, **self.headers},
        )

    def passes(self, address: str) -> bool:
        try:
            return 200 <= self.hit(address).status < 400  # the kubelet's rule
        except OSError:
            return False


@dataclass
class Pod:
    """What the manifest asks for, as ``docker run`` settings plus what the kubelet does."""

    manifest_image: str
    run: dict[str, Any]
    probes: dict[str, Probe]
    grace_period: int
    pre_stop: list[str] | None
    port: int
    admin_port: int | None
    secret_files: dict[Path, tuple[str, int, int | None]] = field(default_factory=dict)


def render(overlay: Path) -> list[dict[str, Any]]:
    kubectl = Path(sys.executable).parent / "kubectl"
    if not kubectl.is_file():
        reason = f"kubectl not found in {kubectl.parent}: run scripts/ci/k8s-tools.sh {sys.prefix}"
        if os.environ.get("ST_REQUIRE_TOOLS") == "1":
            pytest.fail(reason, pytrace=False)
        unavailable(reason)
    proc = subprocess.run(
        [str(kubectl), "kustomize", str(overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"kubectl kustomize {overlay} failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def emulate(docs: list[dict[str, Any]], name: str, image: str, secret_root: Path) -> Pod:
    """Translate Deployment ``name`` into docker settings, setting by setting."""
    (deployment,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == name]
    pod = deployment["spec"]["template"]["spec"]
    assert not pod.get("initContainers"), "init containers are not emulated"
    (container,) = [c for c in pod["containers"] if c["name"] == name]
    configmaps = {
        d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"
    }

    run: dict[str, Any] = {}
    # command replaces the ENTRYPOINT, args the CMD (and a command alone drops the CMD).
    if "command" in container:
        run["entrypoint"] = container["command"]
    if "args" in container:
        run["command"] = container["args"]

    # envFrom first, then env, which wins on a clash (as in Kubernetes).
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) <= {"configMapRef", "prefix"}, f"envFrom not emulated: {source}"
        data = configmaps[source["configMapRef"]["name"]]
        env.update({source.get("prefix", "") + key: value for key, value in data.items()})
    for item in container.get("env", []):
        assert "value" in item, f"env {item['name']}: only literal values are emulated"
        env[item["name"]] = item["value"]
    run["environment"] = env

    pod_context = pod.get("securityContext", {})
    context = container.get("securityContext", {})

    def setting(key: str) -> Any:
        return context.get(key, pod_context.get(key))

    uid, gid = setting("runAsUser"), setting("runAsGroup")
    assert uid is not None, "runAsUser unset: the image's USER would apply"
    if setting("runAsNonRoot"):
        assert uid != 0, "runAsNonRoot with runAsUser 0 would not start"
    run["user"] = f"{uid}:{gid}" if gid is not None else str(uid)
    fs_group = pod_context.get("fsGroup")
    run["group_add"] = [
        str(g) for g in [fs_group, *pod_context.get("supplementalGroups", [])] if g is not None
    ]
    run["read_only"] = bool(context.get("readOnlyRootFilesystem", False))
    run["privileged"] = bool(context.get("privileged", False))
    capabilities = context.get("capabilities", {})
    run["cap_drop"] = capabilities.get("drop", [])
    run["cap_add"] = capabilities.get("add", [])
    run["security_opt"] = []
    if context.get("allowPrivilegeEscalation") is False:
        run["security_opt"].append("no-new-privileges")
    seccomp = setting("seccompProfile") or {"type": "RuntimeDefault"}
    # Docker applies its default seccomp profile unless told otherwise: that is RuntimeDefault.
    assert seccomp["type"] == "RuntimeDefault", f"seccomp not emulated: {seccomp}"

    limits = container.get("resources", {}).get("limits", {})
    if "memory" in limits:
        run["mem_limit"] = int(quantity(limits["memory"]))
    if "cpu" in limits:
        run["nano_cpus"] = int(quantity(limits["cpu"]) * 1e9)

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    tmpfs: dict[str, str] = {}
    binds: dict[str, dict[str, str]] = {}
    secret_files: dict[Path, tuple[str, int, int | None]] = {}
    for mount in container.get("volumeMounts", []):
        assert "subPath" not in mount, f"subPath not emulated: {mount}"
        volume = volumes[mount["name"]]
        if "emptyDir" in volume:
            size = volume["emptyDir"].get("sizeLimit")
            options = ["mode=1777"] + ([f"size={int(quantity(size))}"] if size else [])
            tmpfs[mount["mountPath"]] = ",".join(options)
        elif "secret" in volume:
            secret = volume["secret"]
            values = SECRETS[secret["secretName"]]
            folder = secret_root / mount["name"]
            items = secret.get("items") or [{"key": k, "path": k} for k in values]
            for item in items:
                mode = item.get("mode", secret.get("defaultMode", 0o644))
                secret_files[folder / item["path"]] = (values[item["key"]], mode, fs_group)
            binds[str(folder)] = {"bind": mount["mountPath"], "mode": "ro"}
        else:
            raise AssertionError(f"volume {volume} is not emulated")
    run["tmpfs"] = tmpfs
    run["volumes"] = binds

    ports = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    probes = {
        kind: Probe.parse(container[f"{kind}Probe"], ports)
        for kind in ("startup", "liveness", "readiness")
        if f"{kind}Probe" in container
    }
    pre_stop = container.get("lifecycle", {}).get("preStop")
    if pre_stop is not None:
        assert set(pre_stop) == {"exec"}, f"preStop not emulated: {pre_stop}"
    assert set(ports) <= {"http", "admin"}, f"ports not emulated: {sorted(ports)}"
    return Pod(
        manifest_image=container["image"],
        run=run,
        probes=probes,
        grace_period=pod.get("terminationGracePeriodSeconds", 30),
        pre_stop=pre_stop["exec"]["command"] if pre_stop else None,
        port=ports["http"],
        admin_port=ports.get("admin"),
        secret_files=secret_files,
    )


def write_secrets(files: dict[Path, tuple[str, int, int | None]]) -> None:
    """Lay the Secret out as the kubelet does: the manifest's file mode, group fsGroup."""
    for path, (value, mode, group) in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o755)
        path.write_text(value)
        path.chmod(mode)
        if group is not None:
            try:
                os.chown(path, 0, group)
            except PermissionError:
                unavailable("giving the secret file the manifest's fsGroup needs root")


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render(OVERLAY)


def test_a_pod_starts_answers_probes_and_drains_without_dropping_calls(
    manifests: list[dict[str, Any]], image: str, containers: Containers, tmp_path: Path
) -> None:
    pod = emulate(manifests, DEPLOYMENT, image, tmp_path / "secrets")
    assert set(pod.probes) == {"startup", "liveness", "readiness"}
    write_secrets(pod.secret_files)

    container = containers.start(image, **pod.run)
    created = time.monotonic()
    address = containers.ip(container)

    # Startup: the kubelet allows initialDelaySeconds + failureThreshold x periodSeconds.
    # Probing more often than periodSeconds only finds the moment sooner.
    startup = pod.probes["startup"]
    budget = startup.initial_delay + startup.failure_threshold * startup.period
    wait_for(lambda: startup.passes(address), budget, "startupProbe", interval=0.1)
    started = time.monotonic() - created
    for kind in ("liveness", "readiness"):
        reply = pod.probes[kind].hit(address)
        assert reply.status == 200, f"{kind}Probe: {reply.status} {reply.body[:200]!r}"

    # /metrics is on the admin port only, where the manifest points Prometheus.
    assert pod.admin_port is not None
    assert get(f"http://{address}:{pod.admin_port}/metrics").status == 200
    assert get(f"http://{address}:{pod.port}/metrics").status == 404

    # The Secret volume works under the manifest's user, group and file mode: a token file
    # the service could not read would have stopped it at start (a configuration error).
    url = f"http://{address}:{pod.port}/api"
    document = result_of(rpc(url, "rpc.discover", [], token=TOKEN))
    assert document["info"]["title"] == DEPLOYMENT

    # Every service answers rpc.discover, whatever its own methods are (the load calls it
    # without a token: its document leaves the private methods out).
    anonymous = result_of(rpc(url, "rpc.discover", []))
    assert {m["name"] for m in anonymous["methods"]} <= {m["name"] for m in document["methods"]}
    load = CallLoad(url, "rpc.discover", [], anonymous, clients=8).start()
    try:
        wait_for(lambda: load.count("ok") >= 50, 20, "calls answered under load", interval=0.05)
        # The kubelet's termination: the preStop hook, then SIGTERM; the grace period covers
        # both, and SIGKILL follows when it runs out (docker stop -t does the last two steps).
        terminating = time.monotonic()
        if pod.pre_stop:
            code, output = container.exec_run(pod.pre_stop)
            assert code == 0, f"preStop hook failed ({code}): {output!r}"
        remaining = pod.grace_period - (time.monotonic() - terminating)
        sigterm = time.monotonic()
        container.stop(timeout=max(1, int(remaining)))
        stopped = time.monotonic()
    finally:
        outcomes = load.stop()

    container.reload()
    assert container.attrs["State"]["ExitCode"] == 0, "not a clean exit (137 means SIGKILL)"
    assert container.attrs["State"]["OOMKilled"] is False
    logs = container.logs().decode()
    check_no_accepted_call_failed(outcomes, call_log_ids(logs))
    during_drain = [o for o in outcomes if o.kind == "ok" and o.finished >= sigterm]
    answered = sum(o.kind == "ok" for o in outcomes)
    drains = log_entries(logs, "draining")
    assert len(drains) == 1 and log_entries(logs, "stopped"), "no drain in the service's log"
    note(
        f"pod emulation ({pod.manifest_image} as {image}): startup probe passed "
        f"{started:.1f} s after start (budget {budget:g} s); preStop + SIGTERM took "
        f"{stopped - terminating:.1f} s of {pod.grace_period} s grace; {answered} calls "
        f"answered, {len(during_drain)} of them after SIGTERM, "
        f"{drains[0]['in_flight']} in flight at SIGTERM, "
        f"not taken: {sum(o.kind == 'not-sent' for o in outcomes)} not sent (listener "
        f"closed), {sum(o.kind == 'reset' for o in outcomes)} reset unread"
    )
