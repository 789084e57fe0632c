-- wrk script of bench/serve.sh: every request is the same POST /invocations of one row of 20
-- features, the body of request.json (next to this file; the bench's correctness check sends
-- the same file with curl before measuring).
--   wrk -t1 -c64 -d10s -s bench/serve/post.lua http://127.0.0.1:PORT/invocations
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local file = assert(io.open(here .. "request.json", "rb"), "post.lua: cannot open " .. here .. "request.json")
local body = file:read("*a"):gsub("%s+$", "")
file:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
