"""``new NAME --called-by CALLER,...``: who may call the new service, written in Compose.

A caller is another service of the stack, or ``ingress`` (the public, through the Ingress).
For a service caller the new service becomes its peer, declared once, in Compose: the caller's
``SERVICE_PEERS`` and ``SERVICE_PEER_TOKEN_FILES`` gain the new service, it mounts the new
service's token secret and waits for it to be healthy (``depends_on``). The Kubernetes side (the
caller's peers and tokens, the prod NetworkPolicies between them) is generated from Compose by
peerfiles.py, which ``new`` runs on the Compose file it writes.

For ``ingress`` the service is published: Compose publishes its port on loopback, the prod
Ingress routes ``/api`` of a host of its own to it (set the host for your domain), and a
NetworkPolicy lets anyone reach its API port. Each edit is text on the files as written, so
comments stay; the scaffolder checks the result parses and the manifest tests check its sense.
"""

from __future__ import annotations

import re

from .errors import StackError

INGRESS = "ingress"
WIDTH = 100  # the repository's yamllint line-length
PEERS_ENV = "SERVICE_PEERS"
TOKENS_ENV = "SERVICE_PEER_TOKEN_FILES"


def peer_url(name: str) -> str:
    return f"http://{name}:8000/api"


def _service_block(lines: list[str], service: str) -> tuple[int, int]:
    """[start, end) of ``service``'s block under the Compose file's top-level ``services:``."""
    top = next((i for i, line in enumerate(lines) if line.rstrip() == "services:"), None)
    if top is None:
        raise StackError("the Compose file has no services: mapping")
    start = next(
        (i for i in range(top + 1, len(lines)) if lines[i].rstrip() == f"  {service}:"), None
    )
    if start is None:
        raise StackError(f"cannot find {service}'s block in the Compose file")
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith("   ")):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return start, end


def _find(lines: list[str], start: int, end: int, pattern: str) -> int | None:
    regex = re.compile(pattern)
    return next((i for i in range(start, end) if regex.match(lines[i])), None)


def _append_pair(line: str, pair: str) -> str:
    key, _, value = line.partition(": ") if ": " in line else line.partition("=")
    separator = ": " if ": " in line else "="
    value = value.rstrip()
    return f"{key}{separator}{value + ',' if value else ''}{pair}"


def _add_pair(lines: list[str], at: int, pair: str) -> int:
    """Add ``pair`` to the ``KEY: a=1,b=2`` line at ``at``; how many lines were added.

    A value that would pass the lint width is written folded, a pair per line (``>-``): the
    runtime's parser ignores the space that folding puts after each comma.
    """
    key, _, value = lines[at].partition(":")
    value = value.strip()
    inner = " " * (len(key) - len(key.lstrip()) + 2)
    if value == ">-":  # folded already: a pair per following line
        last = at + 1
        while last + 1 < len(lines) and lines[last + 1].startswith(inner):
            last += 1
        lines[last] = lines[last].rstrip().rstrip(",") + ","
        lines.insert(last + 1, f"{inner}{pair}")
        return 1
    joined = _append_pair(lines[at], pair)
    if len(joined) <= WIDTH:
        lines[at] = joined
        return 0
    pairs = [*filter(None, (part.strip() for part in value.split(","))), pair]
    lines[at : at + 1] = [f"{key}: >-"] + [
        f"{inner}{item}{',' if index < len(pairs) - 1 else ''}" for index, item in enumerate(pairs)
    ]
    return len(pairs)


def compose_caller(text: str, caller: str, name: str) -> str:
    """The Compose file with ``name`` added as a peer of ``caller``."""
    lines = text.split("\n")
    start, end = _service_block(lines, caller)
    env = _find(lines, start, end, r"^    environment:\s*$")
    if env is None:
        raise StackError(f"{caller} has no environment: block in the Compose file")
    token_pair = f"{name}=/run/secrets/{name}_token"
    for key, pair in ((PEERS_ENV, f"{name}={peer_url(name)}"), (TOKENS_ENV, token_pair)):
        at = _find(lines, start, end, rf"^      {key}:")
        if at is None:
            lines.insert(env + 1, f"      {key}: {pair}")
            end += 1
        else:
            end += _add_pair(lines, at, pair)
    secrets = _find(lines, start, end, r"^    secrets:\s*$")
    if secrets is None:
        raise StackError(f"{caller} mounts no secrets in the Compose file (its own token)")
    last = secrets + 1
    while last < end and lines[last].startswith("      "):
        last += 1
    lines.insert(last, f"      - {name}_token")
    end += 1
    depends = _find(lines, start, end, r"^    depends_on:\s*$")
    entry = [f"      {name}:", "        condition: service_healthy"]
    if depends is None:
        lines[end:end] = ["    depends_on:", *entry]
    else:
        last = depends + 1
        while last < end and lines[last].startswith("      "):
            last += 1
        lines[last:last] = entry
    return "\n".join(lines)


def compose_publish(text: str, name: str) -> str:
    """The Compose file with ``name``'s API port published on loopback (a free host port by
    default: ``<NAME>_PORT`` chooses one)."""
    lines = text.split("\n")
    start, end = _service_block(lines, name)
    if _find(lines, start, end, r"^    ports:") is not None:
        return text
    upper = name.upper()
    lines[end:end] = [
        "    ports:",
        f'      - "${{{upper}_BIND:-127.0.0.1}}:${{{upper}_PORT:-0}}:8000"',
    ]
    return "\n".join(lines)


PUBLIC_POLICY = """\
# {name} is public (`new --called-by ingress`): anyone may call its API port.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {name}-ingress
  labels:
    app.kubernetes.io/name: {name}
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: {name}
  policyTypes: [Ingress]
  ingress:
    - ports:
        - port: http
          protocol: TCP
"""


def public_policy(name: str) -> str:
    """The NetworkPolicy that lets anyone call ``name``'s API port (``--called-by ingress``)."""
    return PUBLIC_POLICY.format(name=name)


INGRESS_DOCUMENT = """\
# {name} is public (`new --called-by ingress`): HTTPS to its /api. Set the host and the TLS
# Secret for your domain (with cert-manager, annotate cert-manager.io/cluster-issuer: NAME).
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {name}
  labels:
    app.kubernetes.io/name: {name}
spec:
  ingressClassName: nginx
  tls:
    - hosts: [{name}.example.com]
      secretName: {name}-tls
  rules:
    - host: {name}.example.com
      http:
        paths:
          - path: /api
            pathType: Exact
            backend:
              service:
                name: {name}
                port:
                  name: http
"""


def ingress(text: str, name: str) -> str:
    """``k8s/overlays/prod/ingress.yaml`` with an Ingress of ``name``'s own (one per public
    service, named after it, so ``remove NAME`` takes it with the service)."""
    document = INGRESS_DOCUMENT.format(name=name)
    body = text.rstrip("\n")
    has_documents = any(
        line.strip() and not line.lstrip().startswith("#") for line in body.split("\n")
    )
    return f"{body}\n---\n{document}" if has_documents else f"{body}\n{document}".lstrip("\n")
