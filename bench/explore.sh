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
# MODEL_KIND=v1|v2 (rebuild --model-kind; default v1), EPOCHS (rebuild, v1; default the rebuild's), NO_TEXT=1 imports and serves without the text model,
# MOSAIC_BENCH_STORE=DIR keeps the rebuilt starting store there and reuses it when it exists (the
# split is deterministic), TRUTHS="later ease" picks the ground truths.
#
# PRIOR_GRID="0.5 2 8 32" chooses the prior's strength (serve --explore-prior) on validation instead:
# per truth, greedy and Thompson with each strength play the window's first half of sessions, the
# strength with the most plays of new movies among those losing at most 3% of greedy's plays is kept
# (bench/explore.py report --choose), and the four policies play the second half with it.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
source "$here/bench/ml_common.sh"

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
  "$mosaic" --store "$s" --json rebuild ${MODEL_KIND:+--model-kind "$MODEL_KIND"} ${EPOCHS:+--epochs "$EPOCHS"} >"$tmp/rebuild.json"
  echo "rebuild on the first 80%: $(( $(date +%s) - t0 )) s, $(jq -c '{version, kind, epochs}' "$tmp/rebuild.json")"
  if [ -n "${MOSAIC_BENCH_STORE:-}" ]; then cp -a "$s" "$MOSAIC_BENCH_STORE"; fi
fi
catalogue=$(( $(wc -l <"$tmp/movies.csv") - 1 ))

status=0
# Plays POLICY on the window's HALF against a fresh copy of the starting store, its results in
# $tmp/LABEL.json; further arguments go to serve.
simulate() {
  local policy=$1 half=$2 truth=$3 label=$4; shift 4
  rm -rf "$tmp/$label"
  cp -a "$s" "$tmp/$label"
  start_server "$tmp/$label" "$label" "$@"
  local pid=${pids[-1]}
  /usr/bin/python3 "$here/bench/explore.py" simulate "$tmp" --port "$port" --policy "$policy" --truth "$truth" \
    --half "$half" --label "$label" --result "$tmp/$label.json" || status=1
  kill -TERM "$pid"
  wait "$pid" || { echo "bench: the $label server exited non-zero" >&2; status=1; }
  pids=()
  "$mosaic" --store "$tmp/$label" check >/dev/null || { echo "bench: mosaic check failed on the $label store" >&2; status=1; }
  rm -rf "$tmp/$label"
}
if [ -n "${PRIOR_GRID:-}" ]; then
  for truth in ${TRUTHS:-later ease}; do
    echo; echo "== ground truth: $truth; validation: the first half of the sessions"
    results=("$tmp/greedy.json")
    simulate greedy first "$truth" greedy
    for prior in $PRIOR_GRID; do
      simulate thompson first "$truth" "thompson-prior=$prior" --explore-prior "$prior"
      results+=("$tmp/thompson-prior=$prior.json")
    done
    /usr/bin/python3 "$here/bench/explore.py" report --catalogue "$catalogue" --choose "$tmp/chosen" "${results[@]}"
    prior=$(cat "$tmp/chosen")
    echo; echo "== ground truth: $truth; test: the second half of the sessions, prior strength $prior"
    results=()
    for policy in greedy thompson epsilon random; do
      simulate "$policy" second "$truth" "$policy" --explore-prior "$prior"
      results+=("$tmp/$policy.json")
    done
    /usr/bin/python3 "$here/bench/explore.py" report --catalogue "$catalogue" "${results[@]}"
  done
  [ "$status" = 0 ] && echo "every store passes mosaic check"
  exit "$status"
fi
policies=(greedy thompson epsilon random)
for truth in ${TRUTHS:-later ease}; do
echo
echo "== ground truth: $truth"
for policy in "${policies[@]}"; do
  rm -rf "$tmp/$policy"
  cp -a "$s" "$tmp/$policy"
  start_server "$tmp/$policy" "$policy"
  pid=${pids[-1]}
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
