#!/usr/bin/env bash
# Create one virtual environment per benchmarked server under bench/.venvs/ and install wrk.
#
# Usage: bench/setup.sh [VENV...]   (default: aiohttp-rpc gemstone tornado-baseline ours nginx)
# "nginx" is not a venv: Debian's nginx (the HTTP ceiling), installed when missing (needs root).
# Idempotent: a venv is rebuilt only when its stamp (what was asked to be installed, plus the
# repo's pyproject.toml for "ours") changed, so re-running is cheap. BENCH_SETUP_FORCE=1 rebuilds.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$BENCH_DIR/.." && pwd)"
VENVS="$BENCH_DIR/.venvs"
# One interpreter for every peer, so the comparison measures the frameworks, not Pythons.
PYTHON="${BENCH_PYTHON:-python3}"

make_venv() {
    # make_venv NAME STAMP PIP-ARGS...: (re)create $VENVS/NAME unless its stamp matches.
    local name="$1" stamp="$2"; shift 2
    local dir="$VENVS/$name"
    local marker="$dir/.bench-ready"
    if [[ "${BENCH_SETUP_FORCE:-0}" != "1" && -f "$marker" && "$(cat "$marker")" == "$stamp" ]]; then
        return
    fi
    echo "setup: creating venv $name"
    rm -rf "$dir"
    "$PYTHON" -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
    "$dir/bin/pip" freeze --disable-pip-version-check > "$dir/.bench-freeze.txt"
    printf '%s' "$stamp" > "$marker"
}

setup_one() {
    case "$1" in
        aiohttp-rpc) make_venv aiohttp-rpc "aiohttp-rpc aiohttp" aiohttp-rpc aiohttp ;;
        # gemstone 0.12.0 runs on current Tornado once redis is importable.
        gemstone) make_venv gemstone "gemstone==0.12.0 redis" gemstone==0.12.0 redis ;;
        tornado-baseline) make_venv tornado-baseline "tornado" tornado ;;
        # Editable: edits to the runtime need no reinstall; a dependency change in
        # pyproject.toml changes the stamp and so rebuilds this venv.
        ours) make_venv ours "-e repo $(sha256sum "$REPO_ROOT/pyproject.toml" | cut -c1-16)" \
                  -e "$REPO_ROOT" ;;
        nginx) command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light) ;;
        *) echo "setup: unknown venv '$1'" >&2; exit 2 ;;
    esac
}

mkdir -p "$VENVS"
if [[ $# -eq 0 ]]; then
    set -- aiohttp-rpc gemstone tornado-baseline ours nginx
fi
missing=()
for name in "$@"; do
    setup_one "$name"
done

command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v taskset >/dev/null 2>&1 || missing+=(util-linux)
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
