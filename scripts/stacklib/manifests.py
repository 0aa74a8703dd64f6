"""The stack entries ``new NAME`` writes for a service, rendered from these templates.

One service's share of every file that describes the stack: its Compose block, its Kubernetes
base manifest and settings, its kustomization entries, the prod overlay's autoscaler and
disruption budget, the dev overlay's replica count and settings, its ServiceMonitor and its
Prometheus scrape target. They never copy another service's entries, so ``new`` works in a
project whose example services are all gone. ``remove NAME`` deletes the same entries.

Each template is ``str.format``-ed with ``name`` (``billing``), ``NAME`` (``BILLING``) and
``target`` (``services.billing:BillingService``); fragments are written at indentation 0 and
indented where they are inserted. A new service calls no one and is not published, so no
NetworkPolicy names it: deny-by-default and the Prometheus rule already cover it. No template
names the product: kustomize adds its part-of label (k8s/components/product) to what they write,
selectors included (tests/unit/test_k8s_names.py).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from . import templates

YAML_WIDTH = 100  # the repository's yamllint line-length

# The Compose block. `<<: *service` and `<<: *environment` are the file's shared settings.
COMPOSE_SERVICE = """\
  {name}:
    <<: *service
{image}    command: ["serve", "{target}"]
    environment:
      <<: *environment
    secrets:
      - source: {name}_token
        target: api_token"""
# Its token's file: every service has a token of its own (compose/.env names the file).
COMPOSE_SECRET = """\
  {name}_token:
    file: ${{{NAME}_TOKEN_FILE:?a token file, see compose/.env.example}}"""  # noqa: S105
ENV_EXAMPLE_TOKEN = "{NAME}_TOKEN_FILE=./secrets/{name}"  # noqa: S105 - a path, not a token
# The dev overlay generates each service's token; production's come from the operator.
# (A public token, marked so in its value and in the overlay: hence the noqa.)
DEV_SECRET = """\
- name: {name}-api-token
  literals: [api-token=dev-only-insecure-{name}-token-committed-to-git]"""  # noqa: S105
# The image is built by one service of the stack and run by the others by its tag. (These two
# are inserted as they are, not formatted.)
COMPOSE_RUNS_IMAGE = """\
    # The image is built once, by the service with `build:`: never look it up in a registry.
    pull_policy: never
"""
BUILD_COMMENT = [
    "    # Built once, here; the stack's other services run the same image by its tag."
]
COMPOSE_BUILDS_IMAGE = """\
    # Built once, here; the stack's other services run the same image by its tag.
    build:
      context: ..
      args:
        BASE_IMAGE: ${BASE_IMAGE:-python:3.11-slim}
"""

KUSTOMIZE_RESOURCE = "- {name}.yaml"
KUSTOMIZE_CONFIG_MAP = """\
- name: {name}-config
  envs: [{name}.env]
  options:
    labels:
      app.kubernetes.io/name: {name}"""
DEV_REPLICAS = """\
- name: {name}
  count: 1"""
DEV_CONFIG_MAP = """\
- name: {name}-config
  behavior: merge
  literals: [SERVICE_LOG_LEVEL=DEBUG]"""
SCRAPE_TARGET = """\
- targets: ["{name}:8000"]
  labels:
    service: {name}"""

BASE_MANIFEST = """\
# {name}: made by `python3 scripts/stack.py new {name}`; the service is services/{name}.py.
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
# The service never calls the Kubernetes API, so no token is mounted into its pods.
automountServiceAccountToken: false
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
spec:
  selector:
    app.kubernetes.io/name: {name}
  ports:
    # Port 8000 as in Compose, so peers use the same URL (http://{name}:8000/api) in both.
    - name: http
      port: 8000
      targetPort: http
      protocol: TCP
    # /metrics and the probes only (SERVICE_ADMIN_PORT); the ServiceMonitor scrapes it here.
    - name: admin
      port: 9000
      targetPort: admin
      protocol: TCP
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
spec:
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      # Start the new pod before stopping an old one: capacity never drops during a rollout.
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {name}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "9000"
        prometheus.io/path: /metrics
    spec:
      serviceAccountName: {name}
      automountServiceAccountToken: false
      # Without this Kubernetes injects {NAME}_SERVICE_HOST-style variables for every Service;
      # the runtime rejects unknown SERVICE_* variables, and peers are configured explicitly.
      enableServiceLinks: false
      # preStop (5 s) + SERVICE_DRAIN_TIMEOUT (20 s) + 5 s margin before the kubelet's SIGKILL.
      terminationGracePeriodSeconds: 30
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        # Group-owns the mounted token file, so the non-root user can read it at mode 0440.
        fsGroup: 10001
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: {name}
          image: service-template
          imagePullPolicy: IfNotPresent
          # No command: the image's ENTRYPOINT (python -m service_template) runs these
          # arguments, the same as the service's `command` in compose/compose.yaml.
          args: ["serve", "{target}"]
          ports:
            - name: http
              containerPort: 8000
              protocol: TCP
            # SERVICE_ADMIN_PORT: /metrics, /livez and /readyz; the API port has no /metrics.
            - name: admin
              containerPort: 9000
              protocol: TCP
          envFrom:
            - configMapRef:
                name: {name}-config
          env:
            - name: SERVICE_API_TOKEN_FILE
              value: /var/run/secrets/service/api-token
          resources:
            requests:
              cpu: 100m
              memory: 128Mi
            limits:
              cpu: "1"
              memory: 256Mi
          # Probes go to the admin port, where Prometheus scrapes too (the API port has no
          # /metrics). Startup: up to 30 x 2 s for the first /livez; the others wait for it.
          startupProbe:
            httpGet:
              path: /livez
              port: admin
            periodSeconds: 2
            timeoutSeconds: 2
            failureThreshold: 30
          # A restart needs 3 x 10 s of failures: /livez passes through a drain anyway (the
          # admin listener stays open until exit), so a draining pod is never killed mid-drain.
          livenessProbe:
            httpGet:
              path: /livez
              port: admin
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          # The timeout exceeds SERVICE_READINESS_TIMEOUT (2 s), so a slow check reports "fail"
          # in its JSON rather than making the kubelet give up on the connection.
          readinessProbe:
            httpGet:
              path: /readyz
              port: admin
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 2
          lifecycle:
            preStop:
              # Keep serving while the endpoint removal reaches every kube-proxy and ingress,
              # then SIGTERM starts the drain. The image has no shell, hence Python's sleep.
              exec:
                command: ["/opt/venv/bin/python", "-c", "import time; time.sleep(5)"]
          securityContext:
            runAsNonRoot: true
            runAsUser: 10001
            runAsGroup: 10001
            allowPrivilegeEscalation: false
            privileged: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: api-token
              mountPath: /var/run/secrets/service
              readOnly: true
      volumes:
        # The only writable path: Python's tempfile and any multiprocess metrics directory.
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
        - name: api-token
          secret:
            # This service's own token. Made by the overlay: a generator in dev, by the operator
            # in prod (see k8s/README.md).
            secretName: {name}-api-token
            defaultMode: 0440
            items:
              - key: api-token
                path: api-token
"""


BASE_ENV = """\
# Settings of the {name} service, one SERVICE_* variable per line (see the README's table).
# Rendered into the ConfigMap {name}-config; its name carries a hash of this content, so
# changing a value here rolls the Deployment.
SERVICE_HOST=0.0.0.0
SERVICE_PORT=8000
# /metrics and the probes on a port of their own (the container port named admin).
SERVICE_ADMIN_PORT=9000
SERVICE_LOG_LEVEL=INFO
SERVICE_CALL_TIMEOUT=15
SERVICE_DRAIN_TIMEOUT=20
SERVICE_READINESS_TIMEOUT=2
"""


AUTOSCALER = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {name}
  minReplicas: 2
  maxReplicas: 6
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: 70
"""


DISRUPTION_BUDGET = """\
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
spec:
  maxUnavailable: 1
  # A pod that is not Ready serves nothing; evicting it must not wait for the budget.
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
"""


SERVICE_MONITOR = """\
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
spec:
  selector:
    matchLabels:
      app.kubernetes.io/name: {name}
  endpoints:
    - port: admin
      path: /metrics
      interval: 30s
      scrapeTimeout: 10s
"""


@dataclass(frozen=True)
class Entry:
    """Where one fragment goes: ``path`` (relative to the repository), and either the list
    under ``key`` it is appended to, or (``key`` None) a document appended to the file."""

    path: str
    key: str | None
    template: str


ENTRIES = (
    Entry("k8s/base/kustomization.yaml", "resources", KUSTOMIZE_RESOURCE),
    Entry("k8s/base/kustomization.yaml", "configMapGenerator", KUSTOMIZE_CONFIG_MAP),
    Entry("k8s/overlays/dev/kustomization.yaml", "replicas", DEV_REPLICAS),
    Entry("k8s/overlays/dev/kustomization.yaml", "configMapGenerator", DEV_CONFIG_MAP),
    Entry("k8s/overlays/dev/kustomization.yaml", "secretGenerator", DEV_SECRET),
    Entry("k8s/overlays/prod/autoscaling.yaml", None, AUTOSCALER),
    Entry("k8s/overlays/prod/disruption-budgets.yaml", None, DISRUPTION_BUDGET),
    Entry("k8s/components/servicemonitor/servicemonitors.yaml", None, SERVICE_MONITOR),
    Entry("compose/prometheus.yml", "static_configs", SCRAPE_TARGET),
)


def render(template: str, name: str) -> str:
    """``template`` for the service ``name``, its comments wrapped to the lint width."""
    target = f"{templates.PACKAGE}.{name}:{templates.class_name(name)}"
    return wrap_comments(template.format(name=name, NAME=name.upper(), target=target))


def wrap_comments(text: str, width: int = YAML_WIDTH) -> str:
    """Comment lines a long name pushed past ``width``, wrapped at the same indentation."""
    out = []
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        if len(line) <= width or not stripped.startswith("# "):
            out.append(line)
            continue
        prefix = line[: len(line) - len(stripped)] + "# "
        out += [prefix + part for part in textwrap.wrap(stripped[2:], width - len(prefix))]
    return "\n".join(out)


def compose_service(name: str, builds_image: bool) -> str:
    """The Compose block; ``builds_image`` when no service of the stack builds the image."""
    image = COMPOSE_BUILDS_IMAGE if builds_image else COMPOSE_RUNS_IMAGE
    target = f"{templates.PACKAGE}.{name}:{templates.class_name(name)}"
    return COMPOSE_SERVICE.format(name=name, target=target, image=image)


def compose_secret(name: str) -> str:
    """The top-level Compose secret holding the service's own token."""
    return COMPOSE_SECRET.format(name=name, NAME=name.upper())
