#!/usr/bin/env bash
# Fill .cache/wheels with wheels of the project's dependencies, so `docker build` needs no network.
#
# Usage: scripts/ci/build-wheels.sh [DIR]      (default DIR: <repo>/.cache/wheels)
#
# The Dockerfile copies this folder into its build stage. When it holds wheels, the image installs
# from them alone (pip --no-index): the build never reaches an index, which matters here because
# containers do not trust the host's CA bundle, and behind an air gap. When the folder is missing
# or empty, the build falls back to the package index, so a user with network can simply run
# `docker build .`.
#
# Only dependencies go here (the runtime ones and the build backend), never the project's own
# wheel: the dependency layer of the image then stays cached across code changes. Wheels are
# built with $PYTHON (default: the project venv's), whose version and platform must match the
# image's Python (3.11 on linux/x86_64 for both supported bases); a mismatch shows up as
# "No matching distribution" in the build. pip's own cache makes a rerun quick, and downloaded
# wheels are byte-identical each time, so Docker's layer cache still hits.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dest=${1:-$repo/.cache/wheels}
python=${PYTHON:-$repo/.venv/bin/python}
[[ -x $python ]] || python=python3

log() { printf 'build-wheels: %s\n' "$*" >&2; }

# Requirements straight from pyproject.toml, so there is no second list to keep in step.
requirements=$(
    "$python" - "$repo/pyproject.toml" <<'PY'
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    meta = tomllib.load(f)
print(*meta["build-system"]["requires"], *meta["project"]["dependencies"], sep="\n")
PY
)

# Build next to the destination and swap at the end: an interrupted run never leaves a
# half-filled folder that would make the offline image build fail in a confusing way.
mkdir -p "$(dirname "$dest")"
tmp=$(mktemp -d "$dest.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mapfile -t reqs <<<"$requirements"
"$python" -m pip wheel --quiet --disable-pip-version-check --wheel-dir "$tmp" "${reqs[@]}"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
log "$(find "$dest" -name '*.whl' | wc -l) wheels in $dest for $("$python" -c 'import platform; print(platform.python_implementation(), platform.python_version())')"
