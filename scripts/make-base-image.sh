#!/usr/bin/env bash
# Make a local Debian base image with Python, for building the service image without a registry.
#
# Usage: scripts/make-base-image.sh [TAG]      (default TAG: service-template-base:bookworm)
#
# Why: the Dockerfile builds FROM ${BASE_IMAGE}, which defaults to the official
# python:3.11-slim-bookworm (pinned by digest).
# Where no registry can be reached (CI here, or a user behind an air gap) that image cannot be
# pulled, so this script assembles an equivalent base from Debian packages with debootstrap and
# imports it into the local engine. Then build with:
#   docker build --build-arg BASE_IMAGE=service-template-base:bookworm -t service-template .
# Debian's python3 is /usr/bin/python3 (3.11 on bookworm); the Dockerfile works with either base.
#
# The image is a cache: if TAG already exists the script exits at once (FORCE=1 remakes it).
# Needs root, debootstrap and a reachable Debian mirror (a local mirror or apt proxy works: set
# DEBIAN_MIRROR). Takes one to two minutes.
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), DEBIAN_SUITE (bookworm),
#              DEBIAN_SECURITY_MIRROR (default http://deb.debian.org/debian-security; empty:
#              skip the security upgrade), FORCE (1 = remake even when TAG exists).
set -euo pipefail

tag=${1:-service-template-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${DEBIAN_SUITE:-bookworm}
security_mirror=${DEBIAN_SECURITY_MIRROR-http://deb.debian.org/debian-security}

log() { printf 'make-base-image: %s\n' "$*" >&2; }

if [[ ${FORCE:-0} != 1 ]] && docker image inspect "$tag" >/dev/null 2>&1; then
    log "$tag already exists (FORCE=1 remakes it)"
    exit 0
fi
[[ $(id -u) -eq 0 ]] || { log "error: debootstrap needs root"; exit 1; }
command -v debootstrap >/dev/null 2>&1 || {
    log "error: debootstrap not found (apt-get install debootstrap)"
    exit 1
}

work=$(mktemp -d /var/tmp/make-base-image.XXXXXX)
rootfs=$work/rootfs
cleanup() {
    # debootstrap mounts /proc and /sys inside the target and may leave them mounted when it
    # fails: unmount (deepest first) before deleting, and never cross into another filesystem.
    local mnt
    while read -r mnt; do
        umount -l "$mnt" 2>/dev/null || true
    done < <(awk -v root="$rootfs" 'index($2, root "/") == 1 { print $2 }' /proc/mounts | sort -r)
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# Run a noisy step with its output in a log, shown only when the step fails.
quietly() {
    local what=$1
    shift
    "$@" >"$work/log" 2>&1 || {
        log "error: $what failed; last lines of its output:"
        tail -n 20 "$work/log" >&2
        exit 1
    }
}

start=$SECONDS
log "debootstrap $suite from $mirror"
# minbase: only essential packages plus apt; python3-venv brings ensurepip, which the build stage
# uses to create its virtual environments; ca-certificates lets services make TLS calls.
quietly debootstrap debootstrap --variant=minbase \
    --include=python3,python3-venv,ca-certificates "$suite" "$rootfs" "$mirror"

# As in Debian's official images: packages installed by builds FROM this base must not try to
# start services (a container has no init system to run them).
printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
chmod 0755 "$rootfs/usr/sbin/policy-rc.d"

# debootstrap installs the packages of the suite's last point release; add the updates and
# security suites and upgrade, so the base carries current fixes. A mirror without a security
# suite (air gap) can skip this with DEBIAN_SECURITY_MIRROR="".
if [[ -n $security_mirror ]]; then
    printf 'deb %s %s main\n' "$mirror" "$suite" "$mirror" "$suite-updates" \
        "$security_mirror" "$suite-security" >"$rootfs/etc/apt/sources.list"
    log "upgrading from $suite-updates and $suite-security"
    quietly "apt-get upgrade" chroot "$rootfs" /bin/sh -c \
        'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get upgrade -y -qq'
fi

# Drop what only the bootstrap needed.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/tmp/*
# As in Debian's slim images: no manuals, translations or docs (about 45 MB), except the copyright
# files, which the licences ask to keep. The dpkg rule keeps packages that builds FROM this base
# install just as lean.
printf '%s\n' 'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' \
    'path-exclude /usr/share/locale/*' 'path-exclude /usr/share/doc/*' \
    'path-include /usr/share/doc/*/copyright' >"$rootfs/etc/dpkg/dpkg.cfg.d/slim"
rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*
find "$rootfs/usr/share/doc" -xdev -mindepth 1 ! -type d ! -name copyright -delete
find "$rootfs/usr/share/doc" -xdev -mindepth 1 -type d -empty -delete
# The host's identity, copied in by debootstrap; the engine gives each container its own.
: >"$rootfs/etc/resolv.conf"
printf 'localhost\n' >"$rootfs/etc/hostname"

log "importing as $tag"
old_id=$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
# The --change lines give the image the environment the official python images have.
tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/usr/bin/python3"]' \
    --message "debootstrap --variant=minbase $suite with python3, python3-venv, ca-certificates" \
    - "$tag" >/dev/null
# With FORCE=1 the previous image is left untagged: remove it unless something still uses it.
if [[ -n $old_id && $old_id != "$(docker image inspect --format '{{.Id}}' "$tag")" ]]; then
    docker image rm "$old_id" >/dev/null 2>&1 || true
fi
size=$(docker image inspect --format '{{.Size}}' "$tag")
log "made $tag in $((SECONDS - start)) s ($((size / 1000000)) MB)"
