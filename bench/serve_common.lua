-- Shared by bench/serve_mix.lua and bench/serve_post.lua (serve.sh puts bench/ on LUA_PATH): counting
-- responses per thread and printing the totals of all threads.
local M = {}

-- A wrk response() that counts the responses `good(status)` accepts in `ok` and the others in `bad`,
-- keeping the first refused one.
function M.counter(good)
  return function(status, headers, body)
    if good(status) then
      ok = ok + 1
    else
      bad = bad + 1
      if first_bad == "" then first_bad = status .. " " .. string.sub(body or "", 1, 200) end
    end
  end
end

-- A wrk done() printing one line "RESULT {json}" with the totals of `threads` and the latency
-- percentiles in microseconds, and "FIRST_BAD ..." for the first refused request, if any.
function M.report(threads)
  return function(summary, latency, requests)
    local total_ok, total_bad, fb = 0, 0, ""
    for _, t in ipairs(threads) do
      total_ok = total_ok + (t:get("ok") or 0)
      total_bad = total_bad + (t:get("bad") or 0)
      if fb == "" then fb = t:get("first_bad") or "" end
    end
    local e = summary.errors
    io.write(string.format(
      'RESULT {"requests":%d,"duration_us":%d,"rps":%.2f,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
      '"ok":%d,"non2xx":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d}\n',
      summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
      total_ok, total_bad, e.connect, e.read, e.write, e.timeout))
    if fb ~= "" then io.write("FIRST_BAD " .. fb:gsub("\n", " ") .. "\n") end
  end
end

return M
