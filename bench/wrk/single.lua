-- Workload "single": one call add(1, 2) with positional params per request.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
bench_request('{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}')
