#!/usr/bin/env python3
"""Write the Kubernetes PrometheusRule from the one rules file, ``observability/alerts.yml``.

    python3 scripts/alert-rules.py           # rewrites the component's prometheusrule.yaml
    python3 scripts/alert-rules.py --check   # exit 1 if it is out of date (a unit test runs this)

Kustomize cannot put a file's content inside a custom resource, so the rules are copied: the
rule file's ``groups`` become the resource's ``spec.groups`` line for line (indented two more
spaces), which keeps the two readable side by side. Needs only Python 3.11+.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "observability" / "alerts.yml"
RESOURCE = REPO / "k8s" / "components" / "servicemonitor" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from observability/alerts.yml by scripts/alert-rules.py: edit that file, then run
# the script (a unit test fails while the two differ). The Prometheus Operator loads it when the
# rule selector of your Prometheus matches its labels (the `release` label: kustomization.yaml;
# the part-of label: ../product).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: service-template-alerts
spec:
"""


def render(rules: str) -> str:
    """The PrometheusRule whose ``spec`` is the rule file (its comments left out)."""
    lines = rules.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("groups:"))
    body = ["  " + line if line else "" for line in lines[start:]]
    return HEADER + "\n".join(body) + "\n"


def main(argv: list[str]) -> int:
    wanted = render(RULES.read_text(encoding="utf-8"))
    if argv == ["--check"]:
        if RESOURCE.read_text(encoding="utf-8") != wanted:
            print(
                f"{RESOURCE.relative_to(REPO)} is out of date: run python3 scripts/alert-rules.py",
                file=sys.stderr,
            )
            return 1
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    RESOURCE.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
