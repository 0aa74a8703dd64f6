#!/usr/bin/env bash
# Build the service image (and, for the Compose profiles "observability" and "db", local
# Prometheus and PostgreSQL images)
# without any registry, the way CI does.
#
# Usage: scripts/ci/build-images.sh
# Expects a running engine (start-docker.sh) and the local base (scripts/make-base-image.sh).
# Refreshes .cache/wheels first (build-wheels.sh), so the image build needs no network. Docker's
# layer cache makes a rerun without changes take a few seconds.
# Environment (defaults in brackets):
#   SERVICE_IMAGE     tag of the service image                 [service-template:latest]
#   BASE_IMAGE        base of both images                      [service-template-base:bookworm]
#   PROMETHEUS_IMAGE  tag of Debian's Prometheus as an image   [service-template-prometheus:bookworm]
#                     (empty: skip it)
#   POSTGRES_IMAGE    tag of Debian's PostgreSQL as an image   [service-template-postgres:bookworm]
#                     (profile "db"; empty: skip it)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
service_image=${SERVICE_IMAGE:-service-template:latest}
base_image=${BASE_IMAGE:-service-template-base:bookworm}
prometheus_image=${PROMETHEUS_IMAGE-service-template-prometheus:bookworm}
postgres_image=${POSTGRES_IMAGE-service-template-postgres:bookworm}

log() { printf 'build-images: %s\n' "$*" >&2; }
size_mb() { echo "$(($(docker image inspect --format '{{.Size}}' "$1") / 1000000)) MB"; }

docker image inspect "$base_image" >/dev/null 2>&1 || {
    log "error: base image $base_image not found; run scripts/make-base-image.sh first"
    exit 1
}

"$repo/scripts/ci/build-wheels.sh"

# Labels from the checkout: the commit and its time, so an unchanged tree rebuilds to the same
# image (a wall-clock build time would make every build a new image).
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/pyproject.toml" | head -n 1)
revision=$(git -C "$repo" rev-parse HEAD 2>/dev/null || echo unknown)
created=$(git -C "$repo" log -1 --format=%cI 2>/dev/null || echo unknown)

# The classic builder prints every step: keep its output for a failure only. --force-rm: a
# failed step leaves no stopped container behind; build_fail (with scripts/stacklib/buildlog.py)
# removes the images the failed build made (a dangling image per finished step), shows the end
# of the log without colour codes and ends with one line that names the step, its Dockerfile
# line and the reason.
build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
build_fail() {
    local image=$1 dockerfile=$2 explained
    sed 's/\x1b\[[0-9;?]*[A-Za-z]//g' "$build_log" | tail -n 30 >&2
    mapfile -t explained < <(python3 "$repo/scripts/stacklib/buildlog.py" "$build_log" "$dockerfile")
    if ((${#explained[@]} > 1)); then
        # Newest first, --no-prune: only what this build made goes, never a cached parent.
        docker image rm --no-prune "${explained[@]:1}" >/dev/null 2>&1 || true
    fi
    log "error: building $image failed: ${explained[0]:-see the output above}"
    exit 1
}

start=$SECONDS
if ! docker build --force-rm --build-arg BASE_IMAGE="$base_image" --build-arg VERSION="$version" \
    --build-arg REVISION="$revision" --build-arg CREATED="$created" \
    -t "$service_image" "$repo" >"$build_log" 2>&1; then
    build_fail "$service_image" "$repo/Dockerfile"
fi
log "built $service_image in $((SECONDS - start)) s ($(size_mb "$service_image"))"
# A rebuild moves the tag: the image it named before is now dangling and nothing will use it.
# Only final images carry stage=runtime; dangling build and rootfs stages are the layer cache.
docker image prune -f --filter label=org.service-template.stage=runtime >/dev/null

if [[ -n $prometheus_image ]]; then
    start=$SECONDS
    # Dockerfile on stdin: no build context, so nothing from compose/ (secrets/) is sent.
    if ! docker build --force-rm --build-arg BASE_IMAGE="$base_image" -t "$prometheus_image" - \
        <"$repo/compose/prometheus.Dockerfile" >"$build_log" 2>&1; then
        build_fail "$prometheus_image" "$repo/compose/prometheus.Dockerfile"
    fi
    log "built $prometheus_image in $((SECONDS - start)) s ($(size_mb "$prometheus_image"))"
fi

if [[ -n $postgres_image ]]; then
    start=$SECONDS
    # Its context is compose/postgres alone (the Dockerfile and its entrypoint script).
    if ! docker build --force-rm --build-arg BASE_IMAGE="$base_image" -t "$postgres_image" \
        "$repo/compose/postgres" >"$build_log" 2>&1; then
        build_fail "$postgres_image" "$repo/compose/postgres/Dockerfile"
    fi
    log "built $postgres_image in $((SECONDS - start)) s ($(size_mb "$postgres_image"))"
fi
