#!/usr/bin/env bash
# Fill .cache/wheels with the locked wheels of the image's dependencies, so `docker build` needs
# no network.
#
# Usage: scripts/ci/build-wheels.sh [DIR]      (default DIR: <repo>/.cache/wheels)
#
# The Dockerfile copies this folder into its build stage. When it holds wheels, the image installs
# from them alone (pip --no-index): the build never reaches an index, which matters here because
# containers do not trust the host's CA bundle, and behind an air gap. When the folder is missing
# or empty, the build falls back to the package index, so a user with network can simply run
# `docker build .`.
#
# Only dependencies go here (requirements/runtime.txt and the build backend's
# requirements/build.txt), never the project's own wheel: the dependency layer of the image then
# stays cached across code changes. pip picks the wheels for $PYTHON (default: the project
# venv's), whose version and platform must match the image's Python (3.11 on linux/x86_64 for
# both supported bases); a mismatch shows up as "No matching distribution" in the build. pip's
# own cache makes a rerun quick, and the files are the locked ones, byte for byte, so Docker's
# layer cache still hits.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dest=${1:-$repo/.cache/wheels}
python=${PYTHON:-$repo/.venv/bin/python}
[[ -x $python ]] || python=python3

log() { printf 'build-wheels: %s\n' "$*" >&2; }

# Build next to the destination and swap at the end: an interrupted run never leaves a
# half-filled folder that would make the offline image build fail in a confusing way.
mkdir -p "$(dirname "$dest")"
tmp=$(mktemp -d "$dest.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
# The locks pin every file by hash: pip refuses anything else. Binary only, so what lands here
# is the very file the lock names (a wheel built from an sdist would have a hash of its own).
"$python" -m pip download --quiet --disable-pip-version-check --require-hashes \
    --only-binary :all: --dest "$tmp" \
    -r "$repo/requirements/runtime.txt" -r "$repo/requirements/build.txt"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
log "$(find "$dest" -name '*.whl' | wc -l) wheels in $dest for $("$python" -c 'import platform; print(platform.python_implementation(), platform.python_version())')"
