-- Workload "twohop": single's call, sent to a gateway that makes it to its backend. Replies are
-- read: a failed backend call comes back as a JSON-RPC error inside a 200, counted as an error.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "common.lua")
bench_count_rpc_errors()
bench_request('{"jsonrpc":"2.0","method":"add","params":[1,2],"id":1}')
