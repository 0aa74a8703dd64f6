-- Shared by the workload scripts: request shape and a machine-readable summary.
-- A workload script sets `body` and then calls `bench_request(body)`.
--
-- No `response` hook by default: defining one makes wrk parse every reply in Lua, which slows
-- the load generator. Correctness is checked by bench/run.py before and after each run, and wrk
-- already counts non-2xx/3xx replies (summary.errors.status) and socket errors without it. A
-- workload whose replies can fail inside a 200 under load (the two-hop gateway answers -32010
-- when its backend call fails, and such an answer is cheap) calls `bench_count_rpc_errors()`.

local threads = {}

-- Runs once per wrk thread, in the main Lua state: keep the threads so done() can read them.
function setup(thread)
    table.insert(threads, thread)
end

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

-- Count replies below 400 whose body carries a JSON-RPC error (wrk counts >= 400 itself).
function bench_count_rpc_errors()
    rpc_errors = 0
    response = function(status, headers, body)
        if status < 400 and body:find('"error"', 1, true) then
            rpc_errors = rpc_errors + 1
        end
    end
end

-- Called once after the run: one JSON line that bench/run.py parses (latencies in microseconds,
-- from the same histogram wrk's --latency distribution prints).
function done(summary, latency, requests)
    local e = summary.errors
    local rpc = 0
    for _, thread in ipairs(threads) do
        rpc = rpc + (tonumber(thread:get("rpc_errors")) or 0)
    end
    io.write(string.format(
        'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
        '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"rpc":%d},' ..
        '"latency_us":{"mean":%.1f,"stdev":%.1f,"max":%d,"p50":%d,"p75":%d,"p90":%d,' ..
        '"p99":%d,"p999":%d}}\n',
        summary.requests, summary.duration, summary.bytes,
        e.connect, e.read, e.write, e.status, e.timeout, rpc,
        latency.mean, latency.stdev, latency.max,
        latency:percentile(50), latency:percentile(75), latency:percentile(90),
        latency:percentile(99), latency:percentile(99.9)))
end
