#!/usr/bin/env bash
# Server CPU time per request: robust on a noisy machine, where requests/s is not.
#
# Usage: bench/cpu_per_request.sh WORKLOAD [WORKERS] [SERVICE]
#   WORKLOAD: single | batch | notification (bench/wrk/WORKLOAD.lua); WORKERS: serve --workers;
#   SERVICE: a class of bench/servers/ours_server.py (ComputeService: async def, the default;
#   PlainComputeService: the same method as a plain def, run in the thread pool;
#   UntypedComputeService / TypedComputeService: plain def without / with validated int params)
#
# Runs our compute service (production defaults, auth active) on CPU 0 and wrk on CPU 1 (with
# WORKERS > 1 nothing is pinned), then divides the server's user+system CPU time, summed over
# all its processes, by the requests wrk completed. Compare two builds by running both here.
set -euo pipefail
workload=${1:?usage: $0 single|batch|notification [WORKERS]}
workers=${2:-1}
service=${3:-ComputeService}
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
port=$((20000 + RANDOM % 10000))
pin=(taskset -c 0)
load=(taskset -c 1)
if ((workers > 1)); then pin=(); load=(); fi

SERVICE_API_TOKEN=bench "${pin[@]}" "$repo/.venv/bin/python" -m service_template serve \
    "$repo/bench/servers/ours_server.py:$service" --port "$port" --workers "$workers" \
    >/dev/null 2>&1 &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 200); do curl -sf -o /dev/null "http://127.0.0.1:$port/livez" && break; sleep 0.05; done

cpu_ticks() {
    local total=0 p
    for p in "$pid" $(pgrep -P "$pid" || true); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
    done
    echo "$total"
}
url="http://127.0.0.1:$port/api"
script="$repo/bench/wrk/$workload.lua"
"${load[@]}" wrk -t1 -c64 -d2 -s "$script" "$url" >/dev/null 2>&1  # warm-up
before=$(cpu_ticks)
out=$("${load[@]}" wrk -t1 -c64 -d6 -s "$script" "$url" 2>&1)
after=$(cpu_ticks)
requests=$(awk '/requests in/ {print $1}' <<<"$out")
rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
ticks=$(getconf CLK_TCK)
python3 -c "print(f'$workload $service workers=$workers req/s=$rps server_cpu_us_per_request=' \
f'{($after - $before) / $ticks * 1e6 / $requests:.1f}')"
