"""The Kubernetes manifests agree with the runtime, the Dockerfile and Compose.

No linter checks these: that probes hit paths the service serves, that ports, selectors and
environment variables line up, that the NetworkPolicies allow exactly the calls SERVICE_PEERS
declares in Compose, and that the shutdown sequence fits in the grace period. Each test reads the
YAML that `kubectl kustomize` renders for an overlay, so it judges what a cluster would receive.
The services, and who calls whom, come from compose/compose.yaml (``defined_stack``), never from
a list here: the checks hold for whatever services the project has.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from service_template.config import KNOWN_ENV_VARS, TOKEN_ENV, TOKEN_FILE_ENV, Settings
from service_template.loader import resolve
from service_template.peers import parse_peers
from service_template.service import MicroService
from tests.conftest import defined_stack, missing_tool

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"
DOCKERFILE = REPO / "Dockerfile"
COMPOSE_FILE = REPO / "compose" / "compose.yaml"
# The product's name: the image, the part-of label, the namespace (scripts/rename.py sets it).
PRODUCT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["name"]
OVERLAYS = ("dev", "prod")
PEER_TOKENS_ENV = "SERVICE_PEER_TOKEN_FILES"
PEERS_ENV = "SERVICE_PEERS"
SERVICEMONITOR_COMPONENT = K8S / "components" / "servicemonitor"

# The runtime's endpoints (the contract's ENDPOINTS section). service_template.http exports no
# constants for them yet; import them from there once it does.
LIVEZ_PATH = "/livez"
READYZ_PATH = "/readyz"
METRICS_PATH = "/metrics"

# The namespace network-policies.yaml names as Prometheus's home; change both together.
PROMETHEUS_NAMESPACE = "monitoring"

Doc = dict[str, Any]


# --- rendering ------------------------------------------------------------------------------------


def _kubectl() -> Path:
    """The kubectl installed next to this interpreter by scripts/ci/k8s-tools.sh."""
    path = Path(sys.executable).parent / "kubectl"
    if not path.is_file():
        missing_tool(
            f"kubectl is not installed in {path.parent}: run scripts/ci/k8s-tools.sh {sys.prefix}"
        )
    return path


def kustomize(directory: Path) -> list[Doc]:
    result = subprocess.run(
        [str(_kubectl()), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{result.stderr}", pytrace=False)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@functools.cache
def render(overlay: str, *components: Path) -> tuple[Doc, ...]:
    """The overlay as `kubectl kustomize` renders it, optionally with kustomize components."""
    if not components:
        return tuple(kustomize(K8S / "overlays" / overlay))
    with tempfile.TemporaryDirectory() as tmp:
        # kustomize refuses absolute paths to other kustomizations; relative ones work anywhere.
        kustomization = {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": [os.path.relpath(K8S / "overlays" / overlay, tmp)],
            "components": [os.path.relpath(path, tmp) for path in components],
        }
        (Path(tmp) / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
        return tuple(kustomize(Path(tmp)))


def of_kind(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [doc for doc in docs if doc["kind"] == kind]


def named(docs: tuple[Doc, ...], kind: str, name: str) -> Doc:
    found = [doc for doc in of_kind(docs, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} named {name}, found {len(found)}"
    return found[0]


def deployments(overlay: str) -> list[Doc]:
    found = of_kind(render(overlay), "Deployment")
    assert found, f"overlay {overlay} renders no Deployment"
    return found


def container(deployment: Doc) -> Doc:
    """The one container of an app Deployment (the template runs one process per pod)."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{deployment['metadata']['name']}: expected one container"
    result: Doc = containers[0]
    return result


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Whether a Kubernetes label selector matches labels (an empty selector matches all)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        matched = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not matched:
            return False
    return True


def pod_labels(deployment: Doc) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def container_port(deployment: Doc, port: int | str) -> Doc:
    """The container port a probe, Service or policy names, by name or by number."""
    for candidate in container(deployment).get("ports", []):
        if port in (candidate.get("name"), candidate["containerPort"]):
            found: Doc = candidate
            return found
    raise AssertionError(f"{deployment['metadata']['name']} has no container port {port!r}")


def pod_environment(docs: tuple[Doc, ...], deployment: Doc) -> dict[str, str]:
    """The variables the pod spec sets: envFrom ConfigMaps, then env, which wins as in a pod."""
    environ: dict[str, str] = {}
    spec = container(deployment)
    for source in spec.get("envFrom", []):
        assert set(source) <= {"configMapRef", "prefix"}, f"unexpected envFrom source {source}"
        config_map = named(docs, "ConfigMap", source["configMapRef"]["name"])
        prefix = source.get("prefix", "")
        environ.update({prefix + key: value for key, value in config_map["data"].items()})
    for variable in spec.get("env", []):
        assert "value" in variable, f"{variable['name']}: only literal env values are expected"
        environ[variable["name"]] = variable["value"]
    return environ


# --- the image: Dockerfile and Compose ------------------------------------------------------------


@functools.cache
def dockerfile() -> dict[str, Any]:
    """ENTRYPOINT, CMD, USER, EXPOSE and ENV of the final stage of the Dockerfile."""
    assert DOCKERFILE.is_file(), f"{DOCKERFILE} is missing"
    # Join continuation lines, drop comments; only the last stage describes the runtime image.
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    last_from = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    found: dict[str, Any] = {"ENV": {}, "EXPOSE": set()}
    for line in lines[last_from:]:
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction in ("ENTRYPOINT", "CMD"):
            found[instruction] = json.loads(rest)  # exec form: a shell form has no JSON list
        elif instruction == "USER":
            found["USER"] = rest.strip()
        elif instruction == "EXPOSE":
            found["EXPOSE"] |= {int(port.split("/")[0]) for port in rest.split()}
        elif instruction == "ENV":
            words = shlex.split(rest)
            if words and "=" not in words[0]:  # legacy form: ENV KEY value with spaces
                found["ENV"][words[0]] = " ".join(words[1:])
            else:
                found["ENV"].update(word.split("=", 1) for word in words)
    return found


@functools.cache
def compose_services() -> dict[str, Doc]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    services: dict[str, Doc] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return services


def compose_environment(service: Doc) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def as_argv(command: str | list[str] | None) -> list[str] | None:
    if command is None or isinstance(command, list):
        return command
    return shlex.split(command)


def _without_tag(image: str) -> str:
    """The image without its tag or digest: reg:5000/team/x:1.2@sha256:... -> reg:5000/team/x."""
    name = image.split("@", maxsplit=1)[0]
    head, _, last = name.rpartition("/")
    return f"{head}/{last.split(':')[0]}" if head else last.split(":")[0]


def image_repository(image: str) -> str:
    """The image's name without registry, tag or digest: "reg:5000/team/x:1.2@sha256:..." -> "x"."""
    without_digest = image.split("@", maxsplit=1)[0]
    return without_digest.rsplit("/", maxsplit=1)[-1].split(":", maxsplit=1)[0]


def with_compose_defaults(text: str) -> str:
    """Compose interpolation with no .env: "${IMAGE:-x:latest}" -> "x:latest"."""
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}", r"\1", text)


# --- what a pod runs ------------------------------------------------------------------------------


def served(docs: tuple[Doc, ...], deployment: Doc) -> tuple[type[MicroService], Settings]:
    """What the pod would run: the runtime's own resolve() on the pod's args and environment.

    Raises ConfigError or StartupError with the message the pod would die of.
    """
    args = container(deployment).get("args", dockerfile().get("CMD", []))
    assert args[:1] == ["serve"] and len(args) <= 2, f"unexpected args {args}"
    return resolve(args[1] if len(args) == 2 else None, _loadable(docs, deployment), None, {})


def _loadable(docs: tuple[Doc, ...], deployment: Doc) -> dict[str, str]:
    """The pod's environment over the image's ENV, with the token given inline.

    The token files exist only inside a pod. Giving the token in SERVICE_API_TOKEN instead (the
    runtime accepts either, not both), and stand-in files for the peers' tokens, lets
    Settings.load check everything else as the pod would.
    """
    merged = {k: v for k, v in dockerfile()["ENV"].items() if k.startswith("SERVICE_")}
    merged.update(pod_environment(docs, deployment))
    if merged.pop(TOKEN_FILE_ENV, None) is not None:
        merged[TOKEN_ENV] = "stand-in-token"
    if PEER_TOKENS_ENV in merged:
        merged[PEER_TOKENS_ENV] = ",".join(
            f"{peer}={_stand_in_token_file()}" for peer in peer_token_files(merged)
        )
    # A service's own secret settings come from files too (SERVICE_DATABASE_URL_FILE), which
    # exist only in a pod: a stand-in of the right shape takes each one's place.
    for name, path in list(merged.items()):
        if name.endswith("_FILE") and name != "SERVICE_CONFIG_FILE" and not Path(path).exists():
            merged[name] = _stand_in_secret_file(SECRET_STAND_INS.get(name, "stand-in-secret"))
    return merged


# What a stand-in secret file holds, where its setting checks the value's shape.
SECRET_STAND_INS = {"SERVICE_DATABASE_URL_FILE": "postgresql://stand-in@database:5432/db"}


@functools.cache
def _stand_in_secret_file(value: str) -> str:
    folder = Path(tempfile.mkdtemp(prefix="k8s-consistency-"))
    path = folder / "secret"
    path.write_text(value)
    return str(path)


@functools.cache
def _stand_in_token_file() -> str:
    folder = Path(tempfile.mkdtemp(prefix="k8s-consistency-"))
    path = folder / "token"
    path.write_text("stand-in-peer-token")
    return str(path)


def peer_token_files(environ: Mapping[str, str]) -> dict[str, str]:
    """SERVICE_PEER_TOKEN_FILES as peer name -> path (empty when unset)."""
    text = environ.get(PEER_TOKENS_ENV, "")
    pairs = (item.partition("=") for item in text.split(",") if item.strip())
    return {name.strip(): path.strip() for name, _, path in pairs}


def _selector_matches(selector: Mapping[str, Any], deployment: Doc) -> bool:
    """Service selectors are a bare label map; the others are LabelSelectors."""
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    return selects(selector, pod_labels(deployment))


# --- probes, ports, environment -------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_hit_the_runtime_health_endpoints_on_the_admin_port(overlay: str) -> None:
    docs = render(overlay)
    for deployment in deployments(overlay):
        spec = container(deployment)
        settings = served(docs, deployment)[1]
        expected = {
            "startupProbe": LIVEZ_PATH,
            "livenessProbe": LIVEZ_PATH,
            "readinessProbe": READYZ_PATH,
        }
        for probe, path in expected.items():
            assert probe in spec, f"{deployment['metadata']['name']} has no {probe}"
            http_get = spec[probe]["httpGet"]
            assert http_get["path"] == path
            assert http_get.get("scheme", "HTTP") == "HTTP"
            # The admin port serves the probes (the API port does too, but Prometheus and the
            # kubelet are pointed at one port, the one the NetworkPolicies open for them).
            assert http_get["port"] == "admin"
            assert container_port(deployment, "admin")["containerPort"] == settings.admin_port


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_container_port_is_the_port_the_service_listens_on_all_interfaces(
    overlay: str,
) -> None:
    docs = render(overlay)
    for deployment in deployments(overlay):
        settings = served(docs, deployment)[1]
        assert container_port(deployment, "http")["containerPort"] == settings.port
        assert settings.admin_port is not None, "the admin port must be set (SERVICE_ADMIN_PORT)"
        assert container_port(deployment, "admin")["containerPort"] == settings.admin_port
        # Bound to loopback the pod would pass no probe and take no traffic.
        assert settings.host == "0.0.0.0"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_service_target_port_names_a_port_of_the_pods_it_selects(overlay: str) -> None:
    docs = render(overlay)
    services = of_kind(docs, "Service")
    assert {s["metadata"]["name"] for s in services} == {
        d["metadata"]["name"] for d in deployments(overlay)
    }
    for service in services:
        selected = [
            d for d in deployments(overlay) if _selector_matches(service["spec"]["selector"], d)
        ]
        assert [d["metadata"]["name"] for d in selected] == [service["metadata"]["name"]]
        assert {port["name"] for port in service["spec"]["ports"]} == {"http", "admin"}
        for port in service["spec"]["ports"]:
            assert container_port(selected[0], port["targetPort"])["name"] == port["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_environment_variable_set_is_one_the_runtime_knows(overlay: str) -> None:
    docs = render(overlay)
    for deployment in deployments(overlay):
        cls, _ = served(docs, deployment)  # a service's own settings are known to it
        known = KNOWN_ENV_VARS | cls.settings_class.known_env_vars()
        unknown = set(pod_environment(docs, deployment)) - known
        assert not unknown, f"{deployment['metadata']['name']} sets unknown variables {unknown}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_pod_serves_the_service_its_deployment_is_named_after(overlay: str) -> None:
    docs = render(overlay)
    for deployment in deployments(overlay):
        cls, settings = served(docs, deployment)
        # The name appears in metrics, logs and rpc.discover; peers and Services use it too.
        assert (settings.name or cls.name) == deployment["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_deployments_are_the_services_compose_defines(overlay: str) -> None:
    # Compose's services that run the template image with `serve TARGET`: the project's own.
    expected = sorted(defined_stack().app_names())
    assert sorted(d["metadata"]["name"] for d in deployments(overlay)) == expected


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_the_peers_compose_declares_for_it(overlay: str) -> None:
    # SERVICE_PEERS in Compose is the one declaration; the generated peers.yaml gives it to the
    # pods, checked here after the runtime's own parser (service_template.peers) read both sides.
    docs = render(overlay)
    for deployment in deployments(overlay):
        name = deployment["metadata"]["name"]
        assert served(docs, deployment)[1].peers == dict(defined_stack().services[name].peers)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_api_token_file_is_a_key_of_a_mounted_secret(overlay: str) -> None:
    docs = render(overlay)
    for deployment in deployments(overlay):
        token_file = Path(pod_environment(docs, deployment)[TOKEN_FILE_ENV])
        mount = next(
            m
            for m in container(deployment)["volumeMounts"]
            if Path(m["mountPath"]) == token_file.parent
        )
        assert mount.get("readOnly") is True
        volume = next(
            v
            for v in deployment["spec"]["template"]["spec"]["volumes"]
            if v["name"] == mount["name"]
        )
        secret = volume["secret"]
        assert token_file.name in [item["path"] for item in secret["items"]]
        assert secret.get("optional", False) is False, "a pod without its token must not start"
        # Each service has a token of its own, in a Secret of its own.
        assert secret["secretName"].startswith(f"{deployment['metadata']['name']}-api-token")
        key = next(item["key"] for item in secret["items"] if item["path"] == token_file.name)
        generated = [
            s for s in of_kind(docs, "Secret") if s["metadata"]["name"] == secret["secretName"]
        ]
        if overlay == "prod":
            assert not generated, "prod must refer to an operator-made Secret, never carry one"
        else:
            assert key in generated[0]["data"]


def test_prod_renders_no_secret_and_dev_marks_its_token_as_public() -> None:
    assert of_kind(render("prod"), "Secret") == []
    assert "DEV ONLY - NOT SECRETS" in (K8S / "overlays" / "dev" / "kustomization.yaml").read_text()
    tokens = [s["data"]["api-token"] for s in of_kind(render("dev"), "Secret") if _is_token(s)]
    assert len(tokens) == len(deployments("dev")) == len(set(tokens)), "one token per service"


def _is_token(secret: Doc) -> bool:
    """An API token Secret (``<name>-api-token``), not another secret a service reads."""
    return "-api-token" in secret["metadata"]["name"]


def _mounted_secret_key(deployment: Doc, path: Path) -> tuple[str, str]:
    """(Secret name, key) that the file ``path`` of the pod comes from."""
    spec = container(deployment)
    mount = next(m for m in spec["volumeMounts"] if Path(m["mountPath"]) == path.parent)
    assert mount.get("readOnly") is True
    volume = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    )
    if "secret" in volume:
        sources = [{"name": volume["secret"]["secretName"], **volume["secret"]}]
    else:
        sources = [source["secret"] for source in volume["projected"]["sources"]]
    for source in sources:
        assert source.get("optional", False) is False, "a pod without its tokens must not start"
        for item in source.get("items", []):
            if item["path"] == path.name:
                return source["name"], item["key"]
    raise AssertionError(f"{deployment['metadata']['name']}: no Secret provides {path}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_a_caller_reads_each_peers_token_from_the_secret_that_peer_checks(overlay: str) -> None:
    docs = render(overlay)
    by_name = {d["metadata"]["name"]: d for d in deployments(overlay)}
    callers = 0
    for deployment in deployments(overlay):
        environ = pod_environment(docs, deployment)
        settings = served(docs, deployment)[1]
        files = peer_token_files(environ)
        if not settings.peers:
            assert not files
            continue
        callers += 1
        # Every peer called gets its own token; the caller's own is sent to no one.
        assert set(files) == set(settings.peers)
        for peer, path in files.items():
            callee = by_name[peer]
            expected = _mounted_secret_key(
                callee, Path(pod_environment(docs, callee)[TOKEN_FILE_ENV])
            )
            assert _mounted_secret_key(deployment, Path(path)) == expected, peer
    # Every service that calls a peer in Compose was checked above.
    assert callers == len({caller for caller, _ in defined_stack().calls()})


# --- selectors ------------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_deployment_selects_exactly_its_own_pods(overlay: str) -> None:
    for deployment in deployments(overlay):
        matching = [
            d["metadata"]["name"]
            for d in deployments(overlay)
            if _selector_matches(deployment["spec"]["selector"], d)
        ]
        assert matching == [deployment["metadata"]["name"]]


def test_each_disruption_budget_covers_one_deployment_that_the_autoscaler_keeps_above_it() -> None:
    docs = render("prod")
    autoscalers = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(docs, "HorizontalPodAutoscaler")
    }
    budgets = of_kind(docs, "PodDisruptionBudget")
    assert {b["metadata"]["name"] for b in budgets} == {
        d["metadata"]["name"] for d in deployments("prod")
    }
    for budget in budgets:
        covered = [
            d["metadata"]["name"]
            for d in deployments("prod")
            if _selector_matches(budget["spec"]["selector"], d)
        ]
        assert covered == [budget["metadata"]["name"]]
        floor = autoscalers[covered[0]]["spec"]["minReplicas"]
        assert floor >= 2
        spec = budget["spec"]
        # Satisfiable: with the floor's pods all healthy, one eviction is always allowed.
        if "maxUnavailable" in spec:
            assert isinstance(spec["maxUnavailable"], int) and spec["maxUnavailable"] >= 1
        else:
            assert isinstance(spec["minAvailable"], int) and spec["minAvailable"] < floor


def test_each_autoscaler_targets_a_deployment_that_leaves_it_the_replica_count() -> None:
    docs = render("prod")
    targets = [h["spec"]["scaleTargetRef"] for h in of_kind(docs, "HorizontalPodAutoscaler")]
    assert sorted(t["name"] for t in targets) == sorted(
        d["metadata"]["name"] for d in deployments("prod")
    )
    for target in targets:
        assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
        # A replicas field would reset the autoscaler's count at every `kubectl apply`.
        assert "replicas" not in named(docs, "Deployment", target["name"])["spec"]


def test_topology_spread_selects_each_pod_with_its_own_service() -> None:
    for deployment in deployments("prod"):
        constraints = deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert {c["topologyKey"] for c in constraints} == {
            "topology.kubernetes.io/zone",
            "kubernetes.io/hostname",
        }
        for constraint in constraints:
            assert selects(constraint["labelSelector"], pod_labels(deployment))
            # Without the name key the spread would count every service's pods together.
            assert "app.kubernetes.io/name" in constraint.get("matchLabelKeys", [])


def test_every_network_policy_selects_some_app_pods() -> None:
    for policy in of_kind(render("prod"), "NetworkPolicy"):
        assert any(
            selects(policy["spec"]["podSelector"], pod_labels(d)) for d in deployments("prod")
        ), f"NetworkPolicy {policy['metadata']['name']} selects no pod"


def test_each_servicemonitor_scrapes_the_metrics_path_of_one_service() -> None:
    docs = render("prod", SERVICEMONITOR_COMPONENT)
    monitors = of_kind(docs, "ServiceMonitor")
    services = of_kind(docs, "Service")
    assert sorted(m["metadata"]["name"] for m in monitors) == sorted(
        s["metadata"]["name"] for s in services
    )
    for monitor in monitors:
        matching = [
            s for s in services if selects(monitor["spec"]["selector"], s["metadata"]["labels"])
        ]
        assert [s["metadata"]["name"] for s in matching] == [monitor["metadata"]["name"]]
        port_names = {p["name"] for p in matching[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            # The API port has no /metrics once the admin port is set.
            assert endpoint["port"] == "admin"
            assert endpoint["port"] in port_names
            assert endpoint["path"] == METRICS_PATH


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scrape_annotations_point_at_the_metrics_endpoint(overlay: str) -> None:
    for deployment in deployments(overlay):
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == METRICS_PATH
        port = int(annotations["prometheus.io/port"])
        assert container_port(deployment, "admin")["containerPort"] == port


# --- network policies -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Pod:
    """One end of a connection, as NetworkPolicy rules see it."""

    name: str
    namespace: str
    labels: Mapping[str, str]
    ports: Mapping[str, int]  # container port name -> number, for named ports in rules


def _namespace_labels(namespace: str, docs: tuple[Doc, ...]) -> dict[str, str]:
    declared = [n for n in of_kind(docs, "Namespace") if n["metadata"]["name"] == namespace]
    labels = dict(declared[0]["metadata"].get("labels") or {}) if declared else {}
    # Set by the API server on every namespace since Kubernetes 1.22.
    labels["kubernetes.io/metadata.name"] = namespace
    return labels


def _peer_matches(peer: Doc, policy_namespace: str, other: Pod, docs: tuple[Doc, ...]) -> bool:
    if "ipBlock" in peer:
        return True  # could cover any pod's address: count it as allowing everything
    if "namespaceSelector" in peer:
        in_namespace = selects(peer["namespaceSelector"], _namespace_labels(other.namespace, docs))
    else:
        in_namespace = other.namespace == policy_namespace
    return in_namespace and selects(peer.get("podSelector"), other.labels)


def _port_matches(rule_ports: list[Doc] | None, destination: Pod, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    names = {number: name for name, number in destination.ports.items()}
    for rule in rule_ports:
        if rule.get("protocol", "TCP") != protocol:
            continue
        value = rule.get("port")
        if value is None or value in (port, names.get(port)):
            return True
        if isinstance(value, int) and value <= port <= rule.get("endPort", value):
            return True
    return False


def _policy_types(policy: Doc) -> list[str]:
    spec = policy["spec"]
    default = ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]
    types: list[str] = spec.get("policyTypes", default)
    return types


def _direction_allows(
    docs: tuple[Doc, ...],
    direction: str,
    subject: Pod,
    other: Pod,
    destination: Pod,
    port: int,
    protocol: str,
) -> bool:
    """Whether the policies on subject's side let this connection pass in one direction."""
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    isolating = [
        p
        for p in of_kind(docs, "NetworkPolicy")
        if p["metadata"]["namespace"] == subject.namespace
        and direction in _policy_types(p)
        and selects(p["spec"]["podSelector"], subject.labels)
    ]
    if not isolating:
        return True  # a pod no policy selects for this direction is not isolated
    for policy in isolating:
        for rule in policy["spec"].get(rules_key) or []:
            peers = rule.get(peers_key)
            peer_ok = not peers or any(
                _peer_matches(peer, subject.namespace, other, docs) for peer in peers
            )
            if peer_ok and _port_matches(rule.get("ports"), destination, port, protocol):
                return True
    return False


def connection_allowed(
    docs: tuple[Doc, ...], source: Pod, destination: Pod, port: int, protocol: str = "TCP"
) -> bool:
    """A connection passes when the source may send it and the destination may receive it."""
    return _direction_allows(
        docs, "Egress", source, destination, destination, port, protocol
    ) and _direction_allows(docs, "Ingress", destination, source, destination, port, protocol)


def app_pods(docs: tuple[Doc, ...]) -> list[Pod]:
    return [
        Pod(
            name=d["metadata"]["name"],
            namespace=d["metadata"]["namespace"],
            labels=pod_labels(d),
            ports={p["name"]: p["containerPort"] for p in container(d)["ports"]},
        )
        for d in of_kind(docs, "Deployment")
    ]


def peer_calls(docs: tuple[Doc, ...]) -> set[tuple[str, str]]:
    """(caller, callee) Deployment names for every peer URL in any service's SERVICE_PEERS."""
    calls = set()
    for deployment in of_kind(docs, "Deployment"):
        peers = served(docs, deployment)[1].peers
        for url in peers.values():
            parts = urlsplit(url)
            assert parts.hostname is not None
            service = named(docs, "Service", parts.hostname.split(".")[0])
            assert parts.port in [p["port"] for p in service["spec"]["ports"]], url
            callee = next(
                d
                for d in of_kind(docs, "Deployment")
                if _selector_matches(service["spec"]["selector"], d)
            )
            calls.add((deployment["metadata"]["name"], callee["metadata"]["name"]))
    return calls


def test_the_calls_the_pods_make_are_the_calls_compose_declares() -> None:
    # Guards the test below against a SERVICE_PEERS emptied (or added) on one side only.
    assert peer_calls(render("prod")) == defined_stack().calls()


def test_network_policies_allow_exactly_the_calls_compose_declares() -> None:
    docs = render("prod")
    pods = app_pods(docs)
    allowed = {
        (source.name, destination.name)
        for source, destination in itertools.product(pods, pods)
        if connection_allowed(docs, source, destination, destination.ports["http"])
    }
    assert allowed == defined_stack().calls()


def test_network_policies_let_anyone_reach_only_the_services_compose_publishes() -> None:
    docs = render("prod")
    outsider = Pod("client", "elsewhere", {"app": "client"}, {})
    reachable = {
        pod.name
        for pod in app_pods(docs)
        if connection_allowed(docs, outsider, pod, pod.ports["http"])
    }
    # A service with `ports:` in Compose is an entry point; every other one is internal.
    assert reachable == {s.name for s in defined_stack().app_services() if s.published}


def test_network_policies_let_prometheus_scrape_every_service_and_nothing_else() -> None:
    docs = render("prod")
    prometheus = Pod("prometheus", PROMETHEUS_NAMESPACE, {"app": "prometheus"}, {})
    for pod in app_pods(docs):
        assert connection_allowed(docs, prometheus, pod, pod.ports["admin"])
        # The admin port only: not the API (except a public service's, which anyone may call:
        # those Compose publishes), not any other port.
        if pod.name not in {s.name for s in defined_stack().app_services() if s.published}:
            assert not connection_allowed(docs, prometheus, pod, pod.ports["http"])
        assert not connection_allowed(docs, prometheus, pod, pod.ports["admin"] + 1)


def test_network_policies_keep_callers_on_the_api_port() -> None:
    docs = render("prod")
    pods = app_pods(docs)
    outsider = Pod("client", "elsewhere", {"app": "client"}, {})
    for destination in pods:
        assert not connection_allowed(docs, outsider, destination, destination.ports["admin"])
        for source in pods:
            assert not connection_allowed(docs, source, destination, destination.ports["admin"])


def test_network_policies_allow_dns_and_no_other_egress_out_of_the_namespace() -> None:
    docs = render("prod")
    dns = Pod("coredns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53, "dns-tcp": 53})
    elsewhere = Pod("web", "elsewhere", {"app": "web"}, {"http": 80})
    for pod in app_pods(docs):
        assert connection_allowed(docs, pod, dns, 53, "UDP")
        assert connection_allowed(docs, pod, dns, 53, "TCP")
        assert not connection_allowed(docs, pod, dns, 80)
        assert not connection_allowed(docs, pod, elsewhere, 80)


# --- image, user, command -------------------------------------------------------------------------


def test_base_image_is_the_one_compose_runs() -> None:
    base = of_kind(tuple(kustomize(K8S / "base")), "Deployment")
    assert {container(d)["image"] for d in base} == {PRODUCT}
    for deployment in base:
        service = compose_services()[deployment["metadata"]["name"]]
        assert image_repository(with_compose_defaults(service["image"])) == PRODUCT


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_deployment_runs_the_image_as_compose_runs_that_service(overlay: str) -> None:
    image = dockerfile()
    # One image runs every service; production's is the one pyproject.toml names for releases.
    images = {_without_tag(container(d)["image"]) for d in deployments(overlay)}
    assert len(images) == 1, images
    if overlay == "prod":
        pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
        assert images == {pyproject["tool"]["stack"]["image"]}
    for deployment in deployments(overlay):
        spec = container(deployment)
        service = compose_services()[deployment["metadata"]["name"]]
        # The image's ENTRYPOINT runs unchanged in both; the arguments choose the service.
        assert spec.get("command", image["ENTRYPOINT"]) == image["ENTRYPOINT"]
        assert as_argv(service.get("entrypoint")) in (None, image["ENTRYPOINT"])
        compose_args = as_argv(service.get("command")) or image["CMD"]
        assert spec.get("args", image["CMD"]) == compose_args


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_settings_fixed_in_compose_are_the_same_here(overlay: str) -> None:
    docs = render(overlay)
    for deployment in deployments(overlay):
        environ = pod_environment(docs, deployment)
        compose = compose_environment(compose_services()[deployment["metadata"]["name"]])
        # The token reaches the service as a file in both, mounted where each platform puts it;
        # so do the peers' tokens, for the same peers.
        assert (TOKEN_FILE_ENV in environ) == (TOKEN_FILE_ENV in compose)
        assert set(peer_token_files(environ)) == set(peer_token_files(compose))
        # Values Compose takes from its .env (${...}) may differ per environment; fixed ones,
        # such as a service's peer URLs, must not.
        fixed = {
            name: value
            for name, value in compose.items()
            if "$" not in value
            and name not in (TOKEN_FILE_ENV, PEER_TOKENS_ENV, PEERS_ENV)
            # Secret files are mounted where each platform puts them (and Compose may give a
            # secret setting as a file that Kubernetes gives inside another, e.g. a URL).
            and not name.endswith("_FILE")
        }
        assert {name: environ.get(name) for name in fixed} == fixed
        # The peers by meaning: Compose may fold a long value (a space after each comma).
        assert parse_peers(environ.get(PEERS_ENV, "")) == parse_peers(compose.get(PEERS_ENV, ""))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_as_the_dockerfile_user_on_the_port_it_exposes(overlay: str) -> None:
    image = dockerfile()
    user, _, group = image["USER"].partition(":")
    for deployment in deployments(overlay):
        pod = deployment["spec"]["template"]["spec"]["securityContext"]
        assert str(pod["runAsUser"]) == user
        if group:
            assert str(pod["runAsGroup"]) == group
        assert container_port(deployment, "http")["containerPort"] in image["EXPOSE"]


# --- hardening and shutdown -----------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_meet_the_restricted_pod_security_standard(overlay: str) -> None:
    for deployment in deployments(overlay):
        pod = deployment["spec"]["template"]["spec"]
        spec = container(deployment)
        security = spec["securityContext"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert "add" not in security["capabilities"]
        assert security["readOnlyRootFilesystem"] is True
        assert pod["automountServiceAccountToken"] is False
        # Service links would inject *_SERVICE_HOST variables the runtime does not expect.
        assert pod["enableServiceLinks"] is False
        tmp = next(m for m in spec["volumeMounts"] if m["mountPath"] == "/tmp")
        assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == tmp["name"])
        for kind in ("requests", "limits"):
            assert set(spec["resources"][kind]) == {"cpu", "memory"}


def _pre_stop_seconds(deployment: Doc) -> float:
    pre_stop = container(deployment)["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        return float(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    # The image has no shell: the hook must run the image's own Python.
    assert command[0] == dockerfile()["ENTRYPOINT"][0]
    match = re.fullmatch(r"import time; time\.sleep\((\d+(?:\.\d+)?)\)", command[-1])
    assert match, f"unexpected preStop command {command}"
    return float(match.group(1))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pre_stop_pause_and_drain_finish_inside_the_grace_period(overlay: str) -> None:
    docs = render(overlay)
    for deployment in deployments(overlay):
        environ = pod_environment(docs, deployment)
        # Set explicitly, so the timing contract is visible to whoever edits the manifest.
        for name in ("SERVICE_DRAIN_TIMEOUT", "SERVICE_CALL_TIMEOUT", "SERVICE_READINESS_TIMEOUT"):
            assert name in environ, f"{deployment['metadata']['name']} does not set {name}"
        settings = served(docs, deployment)[1]
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        pause = _pre_stop_seconds(deployment)
        assert pause >= 1, "endpoint removal needs a moment to reach every proxy"
        # The kubelet's clock includes the preStop hook; keep a margin for process exit.
        assert pause + settings.drain_timeout + 2 <= grace
        # A call admitted just before SIGTERM ends (or times out) before the drain deadline.
        assert settings.call_timeout <= settings.drain_timeout
        assert all(t <= settings.drain_timeout for t in settings.method_timeouts.values())
        readiness = container(deployment)["readinessProbe"]
        assert readiness["timeoutSeconds"] > settings.readiness_timeout
        # The listener closes at SIGTERM: liveness must not give up on a pod still draining.
        liveness = container(deployment)["livenessProbe"]
        assert liveness["periodSeconds"] * liveness["failureThreshold"] > settings.drain_timeout


def test_the_monitoring_component_labels_monitors_and_rules_for_one_prometheus() -> None:
    docs = render("prod", SERVICEMONITOR_COMPONENT)
    monitors = of_kind(docs, "ServiceMonitor")
    [rule] = of_kind(docs, "PrometheusRule")
    # kube-prometheus-stack selects both kinds by the same `release` label: one value for all.
    releases = {doc["metadata"]["labels"].get("release") for doc in [*monitors, rule]}
    assert releases == {"kube-prometheus-stack"}
    for monitor in monitors:
        # job="<part-of>" on every target: what the rules' `up{job=...}` and the dashboard use.
        assert monitor["spec"]["jobLabel"] == "app.kubernetes.io/part-of"
        service = named(docs, "Service", monitor["metadata"]["name"])
        assert service["metadata"]["labels"]["app.kubernetes.io/part-of"] == PRODUCT
    rules = yaml.safe_load((REPO / "observability" / "alerts.yml").read_text())
    assert rule["spec"] == rules  # the rules file is the resource's spec, nothing else


def test_the_prometheusrule_is_generated_from_the_rules_file() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "alert-rules.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_kubernetes_peers_are_generated_from_compose() -> None:
    # k8s/base/peers.yaml and the prod peer-policies.yaml are Compose's SERVICE_PEERS, generated
    # (scripts/stacklib/peerfiles.py): a hand edit of either side alone fails here.
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "stack.py"), "peers", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_every_autoscaler_scales_down_slowly_and_up_fast() -> None:
    autoscalers = of_kind(render("prod"), "HorizontalPodAutoscaler")
    assert autoscalers
    for autoscaler in autoscalers:
        behavior = autoscaler["spec"]["behavior"]
        down, up = behavior["scaleDown"], behavior["scaleUp"]
        # Longer than the drain (drain_timeout 20 s), so a removed pod finishes its calls.
        assert down["stabilizationWindowSeconds"] >= 60
        assert all(p["periodSeconds"] >= 60 for p in down["policies"])
        assert up["stabilizationWindowSeconds"] == 0
        assert {p["type"] for p in up["policies"]} == {"Percent", "Pods"}
