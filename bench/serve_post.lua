-- wrk script for bench/serve.sh: POST /items with a new catalogue object each time, paced, for as
-- long as the load runs beside it (serve.sh stops it with SIGINT, after which wrk reports).
--
--   wrk -t 1 -c 1 -d LONG --latency -s bench/serve_post.lua http://127.0.0.1:PORT -- PREFIX DELAY_MS
--
-- PREFIX makes the ids unique to the run (item ids PREFIX-T-N); DELAY_MS is the pause before each
-- request. Counts 201 (created) apart from any other status; done() prints "RESULT {json}" and
-- "FIRST_BAD ..." like serve_mix.lua.

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
  created, bad, first_bad = 0, 0, ""
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

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body or "", 1, 200) end
  end
end

function done(summary, latency, requests)
  local total_created, total_bad, fb = 0, 0, ""
  for _, t in ipairs(threads) do
    total_created = total_created + (t:get("created") or 0)
    total_bad = total_bad + (t:get("bad") or 0)
    if fb == "" then fb = t:get("first_bad") or "" end
  end
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"rps":%.2f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"ok":%d,"non2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    total_created, total_bad, e.connect, e.read, e.write, e.timeout))
  if fb ~= "" then io.write("FIRST_BAD " .. fb:gsub("\n", " ") .. "\n") end
end
