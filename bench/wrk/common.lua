-- Shared by the workload scripts: request shape and a machine-readable summary.
-- A workload script sets `body` and then calls `bench_request(body)`.
--
-- No `response` hook on purpose: defining one makes wrk parse every reply in Lua, which slows
-- the load generator. Correctness is checked by bench/run.py before and after each run, and wrk
-- already counts non-2xx/3xx replies (summary.errors.status) and socket errors without it.

function bench_request(body)
    wrk.method = "POST"
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
    -- Extra headers for servers that need them (e.g. a token): "Name: value" lines.
    local extra = os.getenv("BENCH_EXTRA_HEADERS") or ""
    for line in extra:gmatch("[^\n]+") do
        local name, value = line:match("^([^:]+):%s*(.*)$")
        if name then
            wrk.headers[name] = value
        end
    end
end

-- Called once after the run: one JSON line that bench/run.py parses (latencies in microseconds,
-- from the same histogram wrk's --latency distribution prints).
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
        '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,' ..
        '"p99":%d,"p999":%d}}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout,
        latency.mean, latency.stdev, latency.max,
        latency:percentile(50), latency:percentile(75), latency:percentile(90),
        latency:percentile(99), latency:percentile(99.9)))
end
