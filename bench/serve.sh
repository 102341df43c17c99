#!/usr/bin/env bash
# `mosaic serve` under load: wrk against the server on 127.0.0.1, in three timed phases, while a
# second wrk posts new items (POST /items, one connection, paced) for the whole run:
#   1. GET /health only: the peer, measured in the same run (no model work: HTTP, routing, JSON);
#   2. GET /recommend only (random users, k, new_only, exclude_seen);
#   3. the mix of bench/serve_mix.lua: /recommend, /similar, /audience and /health;
#   3b. GET /item (random played artist): everything the dashboard's item page loads, with the bar
#      (p99 at most 50 ms);
#   then real time (issue 16): PLAYS (default 1000) new listeners each post a play and read their next
#   list (bench/serve_plays.py: p50/p99 from the POST to the list that reflects it), and wrk posts new
#   listeners' plays on PLAY_CONNECTIONS (default 8) connections (bench/serve_plays.lua) while another
#   wrk reads /recommend; afterwards every acknowledged play must be in the store (one new user each);
#   4. hostile: bench/serve_hostile.py holds HOSTILE_TRICKLE (default 1000) connections that send headers
#      one byte a second and HOSTILE_IDLE (default 1000) idle keep-alive connections open for
#      HOSTILE_SECONDS (default 30; those the server closes are opened again), while wrk reads /recommend
#      (CONNECTIONS) and a second wrk reads /health (2 connections): their latency and errors, the
#      server's RSS before and after, and the bar (/health p99 at most 50 ms, 0 errors).
# Prints throughput (req/s) and latency percentiles per phase, each phase's throughput as a fraction
# of the peer's, the mix per endpoint (from the server's /metrics), and the posting's results; then
# stops the server with SIGTERM and runs `mosaic check`. Exits 1 when any request failed (a status
# that is not 2xx, a socket error or a timeout, in any phase or in the posting), when the server did
# not exit 0, or when the check fails.
#
#   bench/serve.sh [--replicas 1,2] [BUILD_DIR]
#
# --replicas N,M,...: afterwards (the posting stopped), for each N, N read replicas of the store
# (`serve --replica-of STORE --primary URL`) are started and GET /recommend is read through them
# (CONNECTIONS split across them, one wrk each, at once): total req/s and the worst p99 per N.
#
# The store: $MOSAIC_BENCH_STORE when it holds one (reused; the posted items stay in it), else built:
# Last.FM (KGCN's kg.txt and plays, HetRec's artist names, from ../shared/datasets) imported as
# bench/rebuild.sh does and `mosaic rebuild --epochs $EPOCHS` (default 10); into $MOSAIC_BENCH_STORE
# when it is set (kept for the next run), else into a temporary folder.
# DURATION=s per phase (default 15), CONNECTIONS (default 8), WRK_THREADS (default 2),
# POST_DELAY_MS pause between posts (default 20), SERVE_THREADS (--threads; default the server's),
# NO_TEXT=1 imports and serves without the text model.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
replica_counts=""
if [ "${1:-}" = "--replicas" ]; then replica_counts=${2:?--replicas needs a list such as 1,2}; shift 2; fi
mosaic=${1:-$here/build}/jobs/mosaic
data=$here/../shared/datasets
lk=$data/lastfm-kgcn; het=$data/hetrec2011-lastfm-2k
duration=${DURATION:-15}
conns=${CONNECTIONS:-8}
wrk_threads=${WRK_THREADS:-2}
post_delay=${POST_DELAY_MS:-20}
epochs=${EPOCHS:-10}
[ -x "$mosaic" ] || { echo "bench: $mosaic not built; run scripts/setup" >&2; exit 1; }
command -v wrk >/dev/null || { echo "bench: wrk missing (apt-get install wrk)" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench: jq missing (apt-get install jq)" >&2; exit 1; }
[ -d "$lk" ] || { echo "bench: $lk is absent; nothing to measure" >&2; exit 1; }

# The wrk scripts share bench/serve_common.lua.
export LUA_PATH="$here/bench/?.lua;;"

tmp=$(mktemp -d)
server_pid=""; poster_pid=""; hostile_pid=""; replica_pids=()
cleanup() {
  for p in "${replica_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  [ -n "$poster_pid" ] && kill "$poster_pid" 2>/dev/null || true
  [ -n "$hostile_pid" ] && kill "$hostile_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

text=()
if [ -n "${NO_TEXT:-}" ] || ! "$mosaic" embed test >/dev/null 2>&1; then text=(--no-text); fi

# The store.
s=${MOSAIC_BENCH_STORE:-$tmp/store}
if [ -f "$s/CURRENT" ] && "$mosaic" --store "$s" --json stats 2>/dev/null | jq -e '.users > 0' >/dev/null; then
  echo "store: $s (reused)"
else
  echo "store: building $s (Last.FM import, rebuild --epochs $epochs)"
  t0=$(date +%s.%N)
  [ -f "$het/artists.dat" ] && "$mosaic" --store "$s" "${text[@]}" import --format hetrec-artists "$het/artists.dat" >/dev/null
  "$mosaic" --store "$s" "${text[@]}" import --format kg "$lk/kg.txt" --links "$lk/item_index2entity_id.txt" >/dev/null
  "$mosaic" --store "$s" "${text[@]}" import --format lastfm-plays "$lk/user_artists.dat" >/dev/null
  "$mosaic" --store "$s" --device cpu rebuild --epochs "$epochs" --json >"$tmp/rebuild.json"
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "store built in %.1f s\n", b-a}'
fi

users_before=$("$mosaic" --store "$s" --json stats | jq .users)

# Users and items to ask about: every user and every played artist of the Last.FM plays.
tail -n +2 "$lk/user_artists.dat" | cut -f1 | sort -u >"$tmp/users.txt"
tail -n +2 "$lk/user_artists.dat" | cut -f2 | sort -u >"$tmp/items.txt"

# The server, on a free port.
t_start=$(date +%s.%N)
"$mosaic" --store "$s" "${text[@]}" serve --port 0 --json ${SERVE_THREADS:+--threads "$SERVE_THREADS"} \
  >"$tmp/serve.out" 2>"$tmp/serve.err" &
server_pid=$!
for _ in $(seq 1200); do
  [ -s "$tmp/serve.out" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "bench: the server exited:" >&2; cat "$tmp/serve.err" >&2; exit 1; }
  sleep 0.1
done
t_ready=$(date +%s.%N)
port=$(head -1 "$tmp/serve.out" | jq -r .port)
[[ "$port" =~ ^[0-9]+$ ]] || { echo "bench: the server printed no port: $(head -c 300 "$tmp/serve.out")" >&2; exit 1; }
url=http://127.0.0.1:$port

# GET over bash's /dev/tcp (HTTP/1.0: the server closes after the response); prints the body.
http_get() {
  local body
  exec 3<>"/dev/tcp/127.0.0.1/$port"
  printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
  body=$(cat <&3)
  exec 3<&-
  printf '%s\n' "${body#*$'\r\n\r\n'}"
}
health_before=$(http_get /health)
items_before=$(jq .items <<<"$health_before")
echo "server: $url, model v$(jq .model_version <<<"$health_before"), $items_before items," \
     "$(jq .users <<<"$health_before") users (listening $(awk -v a="$t_start" -v b="$t_ready" 'BEGIN{printf "%.1f", b-a}') s after start)"

# The posting, for the whole run.
prefix="bench-$(date +%s)-$$"
wrk -t1 -c1 -d1h --timeout 30s --latency -s "$here/bench/serve_post.lua" "$url" -- "$prefix" "$post_delay" \
  >"$tmp/post.txt" 2>&1 &
poster_pid=$!
sleep 1

run_phase() {  # name mode [connections] [seconds] [wrk threads]
  wrk -t"${5:-$wrk_threads}" -c"${3:-$conns}" -d"${4:-$duration}s" --timeout 10s --latency -s "$here/bench/serve_mix.lua" "$url" \
    -- "$2" "$tmp/users.txt" "$tmp/items.txt" >"$tmp/$1.txt" 2>&1 || true
  grep -q '^RESULT ' "$tmp/$1.txt" || { echo "bench: wrk failed in phase $1:" >&2; cat "$tmp/$1.txt" >&2; exit 1; }
}
run_phase health health
run_phase recommend recommend
http_get /metrics >"$tmp/metrics-before.txt"
run_phase mix mix
http_get /metrics >"$tmp/metrics-after.txt"
run_phase item item

# Real time: a play, then the list that reflects it; then plays posted under load beside reads.
/usr/bin/python3 "$here/bench/serve_plays.py" "$port" "$tmp/items.txt" --prefix "$prefix" --plays "${PLAYS:-1000}" \
  >"$tmp/plays-latency.json" || { echo "bench: a list did not reflect its play: $(cat "$tmp/plays-latency.json")" >&2; exit 1; }
wrk -t2 -c"${PLAY_CONNECTIONS:-8}" -d"${duration}s" --timeout 10s --latency -s "$here/bench/serve_plays.lua" "$url" \
  -- "$prefix-play" "$tmp/items.txt" >"$tmp/plays.txt" 2>&1 &
plays_pid=$!
run_phase plays-recommend recommend
wait "$plays_pid" || true
grep -q '^RESULT ' "$tmp/plays.txt" || { echo "bench: the plays wrk reported nothing:" >&2; cat "$tmp/plays.txt" >&2; exit 1; }

# The hostile phase.
trickle=${HOSTILE_TRICKLE:-1000}; idle=${HOSTILE_IDLE:-1000}; hostile_s=${HOSTILE_SECONDS:-30}
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$server_pid/status"; }
rss_before=$(rss_kb)
python3 "$here/bench/serve_hostile.py" "$port" --trickle "$trickle" --idle "$idle" --seconds "$hostile_s" \
  >"$tmp/hostile.json" 2>"$tmp/hostile.err" &
hostile_pid=$!
for _ in $(seq 300); do
  grep -q '^opened' "$tmp/hostile.err" 2>/dev/null && break
  kill -0 "$hostile_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q '^opened' "$tmp/hostile.err" || { echo "bench: the hostile clients did not start:" >&2; cat "$tmp/hostile.err" >&2; exit 1; }
attack_s=$((hostile_s - 4 > 5 ? hostile_s - 4 : 5))
run_phase attack-recommend recommend "$conns" "$attack_s" &
attack_pid=$!
run_phase attack-health health 2 "$attack_s" 1
wait "$attack_pid"
rss_during=$(rss_kb)
wait "$hostile_pid" || { echo "bench: the hostile clients failed:" >&2; cat "$tmp/hostile.err" >&2; exit 1; }
hostile_pid=""
sleep 1
rss_after=$(rss_kb)
http_get /metrics >"$tmp/metrics-hostile.txt"

kill -INT "$poster_pid"
wait "$poster_pid" || true
poster_pid=""
grep -q '^RESULT ' "$tmp/post.txt" || { echo "bench: the posting wrk reported nothing:" >&2; cat "$tmp/post.txt" >&2; exit 1; }
health_after=$(http_get /health)
items_after=$(jq .items <<<"$health_after")

# Read replicas: N servers following the store, each read by its own wrk at the same time.
replica_report=""
for n in ${replica_counts//,/ }; do
  replica_pids=(); replica_ports=()
  for r in $(seq "$n"); do
    "$mosaic" --store "$s" --no-text serve --replica-of "$s" --primary "$url" --port 0 --json \
      >"$tmp/replica-$n-$r.out" 2>"$tmp/replica-$n-$r.err" &
    replica_pids+=($!)
  done
  for r in $(seq "$n"); do
    for _ in $(seq 1200); do [ -s "$tmp/replica-$n-$r.out" ] && break; sleep 0.1; done
    replica_ports+=("$(head -1 "$tmp/replica-$n-$r.out" | jq -r .port)")
  done
  per=$(( conns / n > 0 ? conns / n : 1 ))
  wrk_pids=()
  for r in $(seq "$n"); do
    wrk -t1 -c"$per" -d"${duration}s" --timeout 10s --latency -s "$here/bench/serve_mix.lua" \
      "http://127.0.0.1:${replica_ports[$((r - 1))]}" -- recommend "$tmp/users.txt" "$tmp/items.txt" \
      >"$tmp/replicas-$n-$r.txt" 2>&1 &
    wrk_pids+=($!)
  done
  for p in "${wrk_pids[@]}"; do wait "$p" || true; done
  for p in "${replica_pids[@]}"; do kill -TERM "$p"; wait "$p" || true; done
  replica_pids=()
  line=$(for r in $(seq "$n"); do sed -n 's/^RESULT //p' "$tmp/replicas-$n-$r.txt"; done |
    jq -rs --arg n "$n" --arg per "$per" '"  \($n) replica(s), \($per) connections each: \(map(.rps) | add * 10 | round / 10) req/s in all, worst p99 \(map(.p99_us) | max / 1000 * 100 | round / 100) ms, \(map(.non2xx + .connect_errors + .read_errors + .write_errors + .timeouts) | add) errors"')
  replica_report+="$line"$'\n'
done

kill -TERM "$server_pid"
server_status=0
wait "$server_pid" || server_status=$?
server_pid=""
check_status=0
"$mosaic" --store "$s" check >"$tmp/check.txt" 2>&1 || check_status=$?

# The report.
result() { sed -n 's/^RESULT //p' "$tmp/$1.txt"; }
errors() { result "$1" | jq '.non2xx + .connect_errors + .read_errors + .write_errors + .timeouts'; }
row() {  # label file conns
  result "$2" | jq -r --arg name "$1" --arg conns "$3" \
    '"\($name)\t\($conns)\t\(.requests)\t\(.rps*10|round/10)\t\(.p50_us/1000*100|round/100)\t\(.p90_us/1000*100|round/100)\t\(.p99_us/1000*100|round/100)\t\(.non2xx + .connect_errors + .read_errors + .write_errors + .timeouts)"'
}
echo
echo "Mosaic serve on $(nproc) cores: wrk -t$wrk_threads -c$conns, ${duration} s per phase; POST /items alongside (1 connection, ${post_delay} ms pauses)"
{
  printf 'phase\tconns\trequests\treq/s\tp50 ms\tp90 ms\tp99 ms\terrors\n'
  row "GET /health (peer)" health "$conns"
  row "GET /recommend" recommend "$conns"
  row "mix" mix "$conns"
  row "GET /item (dashboard item page)" item "$conns"
  row "POST /interactions (new listeners' plays)" plays "${PLAY_CONNECTIONS:-8}"
  row "GET /recommend, beside the plays" plays-recommend "$conns"
  row "GET /recommend, hostile" attack-recommend "$conns"
  row "GET /health, hostile" attack-health 2
  row "POST /items (alongside)" post 1
} | column -t -s $'\t'
peer=$(result health | jq .rps)
for phase in recommend mix item; do
  awk -v p="$phase" -v r="$(result $phase | jq .rps)" -v h="$peer" \
    'BEGIN{printf "%s throughput / GET /health throughput: %.3f\n", p, r/h}'
done

# The mix per endpoint, from the server's own histograms (deltas over the phase): requests, mean,
# and the upper bound of the bucket holding the 99th percentile.
echo
echo "mix per endpoint (the server's /metrics):"
awk '
  function ep(line) { match(line, /endpoint="[^"]*"/); return substr(line, RSTART + 10, RLENGTH - 11) }
  function le(line) { match(line, /le="[^"]*"/); return substr(line, RSTART + 4, RLENGTH - 5) }
  FNR == 1 { file++ }
  /^mosaic_request_duration_seconds_(count|sum|bucket)\{/ {
    sign = file == 1 ? -1 : 1; e = ep($0)
    if ($0 ~ /_count\{/) count[e] += sign * $NF
    else if ($0 ~ /_sum\{/) sum[e] += sign * $NF
    else { l = le($0); b[e, l] += sign * $NF; if (!((e, l) in seen)) { seen[e, l] = 1; order[e] = order[e] " " l } }
  }
  END {
    printf "  %-14s %10s %10s %14s\n", "endpoint", "requests", "mean ms", "p99 <= ms"
    split("/recommend /similar /audience /health /items", endpoints, " ")
    for (j = 1; j <= 5; j++) {
      e = endpoints[j]
      if (count[e] <= 0) continue
      n = split(order[e], les, " "); bound = "+Inf"
      for (i = 1; i <= n; i++) if (b[e, les[i]] >= 0.99 * count[e]) { bound = les[i] == "+Inf" ? "+Inf" : les[i] * 1000; break }
      printf "  %-14s %10d %10.2f %14s\n", e, count[e], 1000 * sum[e] / count[e], bound
    }
  }' "$tmp/metrics-before.txt" "$tmp/metrics-after.txt"

echo
echo "hostile phase: $trickle connections trickling headers (1 byte/s) and $idle idle keep-alive connections," \
     "held ${hostile_s} s (reopened when the server closes them), during the two hostile rows above:"
jq -r '"  opened \(.trickle_opened) trickling and \(.idle_opened) idle; the server closed \(.trickle_closed_by_server) and \(.idle_closed_by_server); refused with 503: \(.refused_503); connect errors: \(.connect_errors); \(.open_at_end) open at the end"' "$tmp/hostile.json"
echo "  server: $(grep -E '^mosaic_connections_total' "$tmp/metrics-hostile.txt" | sed 's/mosaic_connections_total//' | tr '\n' ' ')"
awk -v a="$rss_before" -v d="$rss_during" -v b="$rss_after" \
  'BEGIN{printf "  server RSS: %.1f MiB before, %.1f MiB under attack, %.1f MiB after (growth %+.1f MiB)\n", a/1024, d/1024, b/1024, (b-a)/1024}'
health_p99=$(result attack-health | jq '.p99_us/1000')
bar=$(awk -v p="$health_p99" 'BEGIN{print (p <= 50) ? "met" : "MISSED"}')
echo "  /health p99 under attack: $health_p99 ms (bar: at most 50 ms: $bar)"
item_p99=$(result item | jq '.p99_us/1000')
bar=$(awk -v p="$item_p99" 'BEGIN{print (p <= 50) ? "met" : "MISSED"}')
echo "  dashboard item page (GET /item) p99: $item_p99 ms (bar: at most 50 ms: $bar)"

echo
jq -r '"real time: \(.plays) new listeners each posted a play and read their next list: p50 \(.p50_ms) ms, p99 \(.p99_ms) ms (target at most 20 ms), max \(.max_ms) ms; \(.reflected) lists reflected their play"' "$tmp/plays-latency.json"
acknowledged=$(( $(jq .reflected "$tmp/plays-latency.json") + $(result plays | jq .ok) ))
users_after=$("$mosaic" --store "$s" --json stats | jq .users)
echo "plays acknowledged: $acknowledged (one new listener each); listeners in the store: $users_before before, $users_after after"

created=$(result post | jq .ok)
if [ -n "$replica_report" ]; then
  echo
  echo "reads through read replicas (GET /recommend, $conns connections split across them, the posting stopped;"
  echo "on $(nproc) cores the replicas share the cores with each other and wrk: a second replica shows its cost, not a speedup):"
  printf '%s' "$replica_report"
fi
echo
echo "posted: $created items created (201) in $(result post | jq '.duration_us/1e6|.*10|round/10') s; the server's item count went from $items_before to $items_after"
failed=0
for phase in health recommend mix item plays plays-recommend attack-recommend attack-health post; do
  n=$(errors "$phase")
  if [ "$n" != 0 ]; then
    failed=1
    echo "FAIL: $n failed requests in phase $phase; first: $(sed -n 's/^FIRST_BAD //p' "$tmp/$phase.txt")"
    grep -E 'Non-2xx|Socket errors' "$tmp/$phase.txt" || true
  fi
done
# The request in flight when the posting stopped may have been written without its answer read.
if [ "$items_after" -lt $((items_before + created)) ] || [ "$items_after" -gt $((items_before + created + 1)) ]; then
  failed=1; echo "FAIL: $created items created but the server counts $((items_after - items_before)) more"
fi
# As for items: the play in flight on each posting connection when wrk stopped may be stored unread.
if [ "$users_after" -lt $((users_before + acknowledged)) ] || \
   [ "$users_after" -gt $((users_before + acknowledged + ${PLAY_CONNECTIONS:-8})) ]; then
  failed=1; echo "FAIL: $acknowledged plays acknowledged but the store has $((users_after - users_before)) more listeners"
fi
if [ "$server_status" != 0 ]; then
  failed=1; echo "FAIL: the server exited with status $server_status after SIGTERM"; tail -5 "$tmp/serve.err"
fi
if [ "$check_status" != 0 ]; then
  failed=1; echo "FAIL: mosaic check after serving:"; cat "$tmp/check.txt"
fi
if [ "$failed" = 0 ]; then echo "0 errors; the server stopped cleanly and the store passes mosaic check"; fi
exit "$failed"
