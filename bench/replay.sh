#!/usr/bin/env bash
# Real time, measured by replaying history (issue 16): MovieLens latest-small is cut by time, the
# model is rebuilt on the first 80% of its ratings, and the last 20% are replayed in time order
# through two running servers: before each rating, each policy's top 20 for that user (unseen items
# only) is checked for the movie rated, then the rating is posted to both servers.
#   - updates on:  `mosaic serve` (users folded in from their plays as they come);
#   - updates off: `mosaic serve --frozen-users` (the version's users as trained; newcomers get 404);
#   - recency popularity: the peer, computed by bench/replay.py from the same stream.
# Prints hit-rate@20 overall and for users first seen in the replay window, the ratio of updates on
# to updates off (target at least 1.3x), and /recommend latency; then stops both servers and runs
# `mosaic check` on both stores. Exits 1 when a request fails or a check does. Debian's python3 and
# python3-numpy (scripts/setup), by path: a python3 earlier on PATH may lack numpy.
#
#   bench/replay.sh [BUILD_DIR]
#
# EPOCHS (rebuild; default the rebuild's), LIMIT=N replays only the first N ratings (default all),
# NO_TEXT=1 imports and serves without the text model.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mosaic=${1:-$here/build}/jobs/mosaic
ml=$here/../shared/datasets/ml-latest-small
[ -x "$mosaic" ] || { echo "bench: $mosaic not built; run scripts/setup" >&2; exit 1; }
[ -d "$ml" ] || { echo "bench: $ml is absent; nothing to measure" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench: jq missing (apt-get install jq)" >&2; exit 1; }
text=(); [ "${NO_TEXT:-}" = 1 ] && text=(--no-text)
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

/usr/bin/python3 "$here/bench/replay.py" split "$ml/ratings.csv" "$ml/tags.csv" "$tmp"
s=$tmp/on
"$mosaic" --store "$s" "${text[@]}" import --format movielens-movies "$ml/movies.csv" >/dev/null
"$mosaic" --store "$s" "${text[@]}" import --format movielens-tags "$tmp/tags.csv" >/dev/null
"$mosaic" --store "$s" "${text[@]}" import --format movielens-ratings "$tmp/train.csv" >/dev/null
t0=$(date +%s)
"$mosaic" --store "$s" --json rebuild ${EPOCHS:+--epochs "$EPOCHS"} >"$tmp/rebuild.json"
echo "rebuild on the first 80%: $(( $(date +%s) - t0 )) s, $(jq -c '{version, epochs, fold_in}' "$tmp/rebuild.json")"
cp -a "$s" "$tmp/off"

# Starts a server on a free port (in this shell, so that its pid is kept); sets $port.
start() {
  local store=$1 name=$2; shift 2
  "$mosaic" --store "$store" "${text[@]}" serve --port 0 --json "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  for _ in $(seq 1200); do
    [ -s "$tmp/$name.out" ] && break
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "bench: the $name server exited:" >&2; cat "$tmp/$name.err" >&2; exit 1; }
    sleep 0.1
  done
  port=$(head -1 "$tmp/$name.out" | jq -r .port)
  [[ "$port" =~ ^[0-9]+$ ]] || { echo "bench: the $name server printed no port" >&2; exit 1; }
}
start "$tmp/on" on; port_on=$port
start "$tmp/off" off --frozen-users; port_off=$port

/usr/bin/python3 "$here/bench/replay.py" replay "$tmp" --on "$port_on" --off "$port_off" ${LIMIT:+--limit "$LIMIT"}

status=0
for p in "${pids[@]}"; do
  kill -TERM "$p"
  wait "$p" || { echo "bench: a server exited non-zero" >&2; status=1; }
done
pids=()
for store in on off; do
  "$mosaic" --store "$tmp/$store" check >/dev/null || { echo "bench: mosaic check failed on the $store store" >&2; status=1; }
done
[ "$status" = 0 ] && echo "both stores pass mosaic check"
exit "$status"
