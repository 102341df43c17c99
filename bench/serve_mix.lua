-- wrk script for bench/serve.sh: GET requests against `mosaic serve`, one of three mixes.
--
--   wrk -t T -c C -d D --latency -s bench/serve_mix.lua http://127.0.0.1:PORT -- MODE USERS ITEMS
--
-- MODE   health     GET /health only (no model work: the peer)
--        recommend  GET /recommend only, random user, k in {1,5,10,20,50,100}, new_only and
--                   exclude_seen each on for 30% of requests
--        mix        55% /recommend as above, 20% /similar, 15% /audience (random item, k in 1..50),
--                   10% /health
--        item       GET /item only, random item: all the dashboard's item page loads
-- USERS  file of user keys, one a line; ITEMS: file of item keys, one a line.
--
-- Every response that is not a 2xx is counted (wrk itself counts only >= 400 and socket errors);
-- done() prints one line "RESULT {json}" with the totals of all threads and the latency
-- percentiles in microseconds, and "FIRST_BAD ..." for the first refused request, if any.

local common = require("serve_common")
local threads = {}

function setup(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end

local function read_lines(path)
  local t = {}
  local f = assert(io.open(path, "r"), "cannot open " .. tostring(path))
  for line in f:lines() do
    if line ~= "" then t[#t + 1] = line end
  end
  f:close()
  assert(#t > 0, path .. " is empty")
  return t
end

-- Keys go into query strings: escape what is not unreserved.
local function escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local users, items
local ks = {1, 5, 10, 20, 50, 100}
local small_ks = {1, 5, 10, 20, 50}

function init(args)
  mode = args[1] or "mix"
  assert(mode == "health" or mode == "recommend" or mode == "mix" or mode == "item", "unknown mode " .. tostring(mode))
  if mode ~= "health" then
    users = read_lines(args[2])
    items = read_lines(args[3])
  end
  math.randomseed(4242 + 7919 * (thread_no or 0))
  ok, bad, first_bad = 0, 0, ""
end

local function pick(t) return t[math.random(#t)] end

local function recommend()
  local p = "/recommend?user=" .. escape(pick(users)) .. "&k=" .. pick(ks)
  if math.random() < 0.3 then p = p .. "&new_only=1" end
  if math.random() < 0.3 then p = p .. "&exclude_seen=1" end
  return p
end

function request()
  local path
  if mode == "health" then
    path = "/health"
  elseif mode == "recommend" then
    path = recommend()
  elseif mode == "item" then
    path = "/item?item=" .. escape(pick(items))
  else
    local r = math.random()
    if r < 0.55 then
      path = recommend()
    elseif r < 0.75 then
      path = "/similar?item=" .. escape(pick(items)) .. "&k=" .. pick(small_ks)
    elseif r < 0.90 then
      path = "/audience?item=" .. escape(pick(items)) .. "&k=" .. pick(small_ks)
    else
      path = "/health"
    end
  end
  return wrk.format("GET", path)
end

response = common.counter(function(status) return status >= 200 and status < 300 end)
done = common.report(threads)
