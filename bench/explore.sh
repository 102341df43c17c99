#!/usr/bin/env bash
# Exploration, simulated on MovieLens through the real server (issue 17; bench/explore.py says how).
# The model is rebuilt on the first 80% of the ratings by time, over the movies rated by then; the
# rest of the window is played in sessions against four copies of that store, one server each:
#   greedy (explore=0), thompson (explore=2: Thompson sampling, seeded per round), epsilon (each of the
#   last two positions, with probability 0.1, a random new movie), random (both, always).
# Two ground truths, each with all four policies: the users' real later ratings, and EASE^R fitted on
# every rating (future included) read as a probability of a play. Prints, per truth, cumulative
# plays, plays of new movies, the median days from a new movie's entry to its 5th play, the shares of
# new movies reaching 5 plays and ever shown, the catalogue's coverage, and thompson against greedy
# (target: 5 plays at least 2x sooner, at most 3% fewer plays). Each server is stopped and its store
# passes `mosaic check`; exits 1 when a request or a check fails.
#
#   bench/explore.sh [BUILD_DIR]
#
# EPOCHS (rebuild; default the rebuild's), NO_TEXT=1 imports and serves without the text model,
# MOSAIC_BENCH_STORE=DIR keeps the rebuilt starting store there and reuses it when it exists (the
# split is deterministic), TRUTHS="later ease" picks the ground truths.
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

/usr/bin/python3 "$here/bench/explore.py" split "$ml/ratings.csv" "$ml/movies.csv" "$ml/tags.csv" "$tmp"
s=$tmp/base
if [ -n "${MOSAIC_BENCH_STORE:-}" ] && [ -d "$MOSAIC_BENCH_STORE" ]; then
  cp -a "$MOSAIC_BENCH_STORE" "$s"
  echo "starting store: $MOSAIC_BENCH_STORE (reused)"
else
  "$mosaic" --store "$s" "${text[@]}" import --format movielens-movies "$tmp/movies.csv" >/dev/null
  "$mosaic" --store "$s" "${text[@]}" import --format movielens-tags "$tmp/tags.csv" >/dev/null
  "$mosaic" --store "$s" "${text[@]}" import --format movielens-ratings "$tmp/train.csv" >/dev/null
  t0=$(date +%s)
  "$mosaic" --store "$s" --json rebuild ${EPOCHS:+--epochs "$EPOCHS"} >"$tmp/rebuild.json"
  echo "rebuild on the first 80%: $(( $(date +%s) - t0 )) s, $(jq -c '{version, epochs}' "$tmp/rebuild.json")"
  if [ -n "${MOSAIC_BENCH_STORE:-}" ]; then cp -a "$s" "$MOSAIC_BENCH_STORE"; fi
fi
catalogue=$(( $(wc -l <"$tmp/movies.csv") - 1 ))

status=0
policies=(greedy thompson epsilon random)
for truth in ${TRUTHS:-later ease}; do
echo
echo "== ground truth: $truth"
for policy in "${policies[@]}"; do
  rm -rf "$tmp/$policy"
  cp -a "$s" "$tmp/$policy"
  "$mosaic" --store "$tmp/$policy" "${text[@]}" serve --port 0 --json >"$tmp/$policy.out" 2>"$tmp/$policy.err" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1200); do
    [ -s "$tmp/$policy.out" ] && break
    kill -0 "$pid" 2>/dev/null || { echo "bench: the $policy server exited:" >&2; cat "$tmp/$policy.err" >&2; exit 1; }
    sleep 0.1
  done
  port=$(head -1 "$tmp/$policy.out" | jq -r .port)
  [[ "$port" =~ ^[0-9]+$ ]] || { echo "bench: the $policy server printed no port" >&2; exit 1; }
  /usr/bin/python3 "$here/bench/explore.py" simulate "$tmp" --port "$port" --policy "$policy" --truth "$truth" \
    --result "$tmp/$policy.json" || status=1
  kill -TERM "$pid"
  wait "$pid" || { echo "bench: the $policy server exited non-zero" >&2; status=1; }
  pids=()
  "$mosaic" --store "$tmp/$policy" check >/dev/null || { echo "bench: mosaic check failed on the $policy store" >&2; status=1; }
done
echo
results=()
for policy in "${policies[@]}"; do results+=("$tmp/$policy.json"); done
/usr/bin/python3 "$here/bench/explore.py" report --catalogue "$catalogue" "${results[@]}"
done
[ "$status" = 0 ] && echo "every store passes mosaic check"
exit "$status"
