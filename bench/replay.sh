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
source "$here/bench/ml_common.sh"

/usr/bin/python3 "$here/bench/replay.py" split "$ml/ratings.csv" "$ml/tags.csv" "$tmp"
s=$tmp/on
"$mosaic" --store "$s" "${text[@]}" import --format movielens-movies "$ml/movies.csv" >/dev/null
"$mosaic" --store "$s" "${text[@]}" import --format movielens-tags "$tmp/tags.csv" >/dev/null
"$mosaic" --store "$s" "${text[@]}" import --format movielens-ratings "$tmp/train.csv" >/dev/null
t0=$(date +%s)
"$mosaic" --store "$s" --json rebuild ${EPOCHS:+--epochs "$EPOCHS"} >"$tmp/rebuild.json"
echo "rebuild on the first 80%: $(( $(date +%s) - t0 )) s, $(jq -c '{version, epochs, fold_in}' "$tmp/rebuild.json")"
cp -a "$s" "$tmp/off"

start_server "$tmp/on" on; port_on=$port
start_server "$tmp/off" off --frozen-users; port_off=$port

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
