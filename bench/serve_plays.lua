-- wrk script for bench/serve.sh's plays phase: POST /interactions, each request a new listener's first
-- play of an item drawn from ITEMS (user ids PREFIX-T-N, unique to the run, so each acknowledged play
-- adds exactly one user and one interaction to the store).
--
--   wrk -t 2 -c 8 -d SECONDS --latency -s bench/serve_plays.lua http://127.0.0.1:PORT -- PREFIX ITEMS
--
-- Counts 200 apart from any other status; done() prints "RESULT {json}" and "FIRST_BAD ..." like
-- serve_mix.lua.

local common = require("serve_common")
local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  prefix = assert(args[1], "PREFIX missing")
  local file = assert(args[2], "ITEMS missing")  -- assert returns the message too: not inline
  items = {}
  for line in io.lines(file) do table.insert(items, line) end
  math.randomseed(thread_no)
  n = 0
  ok, bad, first_bad = 0, 0, ""
end

function request()
  n = n + 1
  local body = string.format('{"user":"%s-%d-%d","item":"%s"}', prefix, thread_no, n, items[math.random(#items)])
  return wrk.format("POST", "/interactions", {["Content-Type"] = "application/json"}, body)
end

response = common.counter(function(status) return status == 200 end)
done = common.report(threads)
