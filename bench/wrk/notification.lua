-- Workload "notification": add(1, 2) without an id; the server must not send a result.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
bench_request('{"jsonrpc":"2.0","method":"add","params":[1,2]}')
