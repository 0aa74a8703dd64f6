#!/usr/bin/env bash
# Make sure a Docker engine answers, starting Debian's dockerd in the background if needed.
#
# Usage: scripts/ci/start-docker.sh
# Idempotent: exits at once when `docker info` already works. The machines have no init system
# that manages services, so the engine runs under setsid, detached from this shell, and outlives
# it (later CI steps and sessions reuse it). Its log goes to $DOCKERD_LOG, its pid to
# $DOCKERD_PID_FILE. It keeps none of the caller's open files, so `flock LOCK start-docker.sh`
# releases LOCK when the script ends (tests/integration/test_ci_scripts.py).
set -euo pipefail

log_file=${DOCKERD_LOG:-/var/log/dockerd.log}
timeout_s=${DOCKERD_START_TIMEOUT:-60}
pid_file=${DOCKERD_PID_FILE:-/var/run/docker.pid}

log() { printf 'start-docker: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then
    exit 0
fi
command -v dockerd >/dev/null 2>&1 || {
    log "error: dockerd not found; run scripts/ci/install-tools.sh first"
    exit 1
}

# Start an engine only if none is running: one may be up but still initialising. A pid file left
# by an engine that died (e.g. a machine restored from a snapshot) would make dockerd refuse to
# start, so it is removed when its process is gone or is not dockerd.
running_pid=""
if [[ -f $pid_file ]]; then
    pid=$(<"$pid_file")
    if [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null || true) == dockerd ]]; then
        running_pid=$pid
    else
        log "removing stale $pid_file"
        rm -f "$pid_file"
    fi
fi
# dockerd trusts its containerd's pid file the same way: a pid reused by another process (a
# shell, after a restore) makes it wait for a containerd that never answers, then give up.
containerd_pid_file=${CONTAINERD_PID_FILE:-/var/run/docker/containerd/containerd.pid}
if [[ -z $running_pid && -f $containerd_pid_file ]]; then
    pid=$(<"$containerd_pid_file")
    if [[ $(cat "/proc/$pid/comm" 2>/dev/null || true) != containerd ]]; then
        log "removing stale $containerd_pid_file"
        rm -f "$containerd_pid_file"
    fi
fi
if [[ -z $running_pid ]]; then
    log "starting dockerd (log: $log_file)"
    # dockerd outlives this script, so it must not keep the caller's other open files: started
    # under `flock /tmp/docker.lock` (how the shared machines serialise Docker work), an inherited
    # lock descriptor would hold that lock for as long as the engine runs, and every later
    # `flock` would wait for ever. Only stdin, stdout and stderr go to it.
    (
        for fd in /proc/"$BASHPID"/fd/*; do
            fd=${fd##*/}
            if ((fd > 2)); then eval "exec $fd>&-"; fi
        done
        exec setsid dockerd --pidfile "$pid_file"
    ) >>"$log_file" 2>&1 </dev/null &
fi

# Poll until the engine answers, bounded by the deadline.
deadline=$((SECONDS + timeout_s))
until docker info >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
        log "error: the Docker engine did not answer within ${timeout_s}s; last lines of $log_file:"
        tail -n 20 "$log_file" >&2 || true
        exit 1
    fi
    sleep 0.5
done
log "engine ready: $(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')"
