-- wrk script for bench/serve.sh: POST /items with a new catalogue object each time, paced, for as
-- long as the load runs beside it (serve.sh stops it with SIGINT, after which wrk reports).
--
--   wrk -t 1 -c 1 -d LONG --latency -s bench/serve_post.lua http://127.0.0.1:PORT -- PREFIX DELAY_MS
--
-- PREFIX makes the ids unique to the run (item ids PREFIX-T-N); DELAY_MS is the pause before each
-- request. Counts 201 (created) apart from any other status; done() prints "RESULT {json}" and
-- "FIRST_BAD ..." like serve_mix.lua.

local common = require("serve_common")
local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

local genres = {"rock", "pop", "electronic", "jazz", "folk", "metal", "hip hop", "ambient"}

function init(args)
  prefix = assert(args[1], "PREFIX missing")
  pause = tonumber(args[2] or "20")
  n = 0
  ok, bad, first_bad = 0, 0, ""  -- ok counts 201 (created)
end

function request()
  n = n + 1
  local id = prefix .. "-" .. thread_no .. "-" .. n
  local body = string.format(
    '{"id":"%s","kind":"music","title":"Bench Song %d-%d","description":"posted by bench/serve.sh",' ..
    '"artist":"Bench Artist %d","genre":"%s","tags":["bench","take %d"],"year":%d}',
    id, thread_no, n, n % 40, genres[n % #genres + 1], n % 7, 1960 + n % 60)
  return wrk.format("POST", "/items", {["Content-Type"] = "application/json"}, body)
end

function delay()
  return pause
end

response = common.counter(function(status) return status == 201 end)
done = common.report(threads)
