#!/usr/bin/env bash
# Query latency, in one run, over the item vectors of a real model version (Last.FM, a real
# `mosaic rebuild`), tiled to the sizes measured (bench/query_bench.cc says how; never i.i.d. random):
#   1. exact top-20 at 100k items: ItemIndex::SearchExact p50/p99 beside FAISS IndexFlatIP (Debian
#      libfaiss-dev) on the same vectors, both one thread (target: p99 <= 2 ms and <= 1.2x FAISS), and
#      what exploration (explore=2, 1% of the items new) adds to a query (target: a few hundred us);
#   2. HNSW at 1M items: build time, then p50/p99 and recall@20 against exact per ef (target: p99 <=
#      0.5 ms at recall >= 0.95);
#   3. `mosaic serve`: time from POST /items to the item appearing in /recommend?new_only=1 (target:
#      p99 <= 50 ms).
# Then a summary table with the targets, met or missed.
#
#   bench/query.sh [BUILD_DIR]     (default: build; needs ../shared/datasets unless MOSAIC_BENCH_STORE is set)
# MOSAIC_BENCH_STORE=DIR reuses a store with a model version (copied first: the POSTs never touch it);
# otherwise the Last.FM files are imported into a temporary store and rebuilt with EPOCHS (default 20).
# HNSW_M, HNSW_EFC, HNSW_EFS (comma list), HNSW_ITEMS, EXACT_ITEMS, POSTS tune the runs; NOISE sets the
# tiled copies' noise in per-dimension sds (default: auto, bench/query_bench.cc says why); BENCH_USER
# names the user of the POST run (default: the one with the most plays).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
mosaic=$build/jobs/mosaic
qb=$build/bench/query_bench
data=$here/../shared/datasets
lk=$data/lastfm-kgcn; het=$data/hetrec2011-lastfm-2k
[ -x "$mosaic" ] || { echo "bench: $mosaic not built" >&2; exit 1; }
[ -x "$qb" ] || { echo "bench: $qb not built (ninja -C $build query_bench)" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench: jq missing (apt-get install jq)" >&2; exit 1; }
tmp=$(mktemp -d)
server=
cleanup() {
  if [ -n "$server" ]; then kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
epochs=${EPOCHS:-20}
exact_items=${EXACT_ITEMS:-100000}
hnsw_items=${HNSW_ITEMS:-1000000}
hnsw_m=${HNSW_M:-24}
hnsw_efc=${HNSW_EFC:-128}
hnsw_efs=${HNSW_EFS:-32,48,64,80,96,112,128,160,192,256}
posts=${POSTS:-200}
noise_args=()
[ -n "${NOISE:-}" ] && noise_args=(--noise "$NOISE")

s=$tmp/s
echo "== store"
if [ -n "${MOSAIC_BENCH_STORE:-}" ]; then
  cp -a "$MOSAIC_BENCH_STORE" "$s"
  echo "reusing a copy of $MOSAIC_BENCH_STORE (its current model version)"
else
  [ -d "$lk" ] || { echo "bench: $lk is absent and MOSAIC_BENCH_STORE is not set" >&2; exit 1; }
  text=()
  if ! "$mosaic" embed test >/dev/null 2>&1; then text=(--no-text); fi
  [ -f "$het/artists.dat" ] && "$mosaic" --store "$s" "${text[@]}" import --format hetrec-artists "$het/artists.dat" >/dev/null
  "$mosaic" --store "$s" "${text[@]}" import --format kg "$lk/kg.txt" --links "$lk/item_index2entity_id.txt" >/dev/null
  "$mosaic" --store "$s" "${text[@]}" import --format lastfm-plays "$lk/user_artists.dat" >/dev/null
  echo "imported Last.FM (lastfm-kgcn + HetRec names$([ ${#text[@]} -gt 0 ] && echo ', no text' || echo ', with text'))"
  echo "a real rebuild: mosaic rebuild --epochs $epochs (CPU)..."
  "$mosaic" --store "$s" --device cpu rebuild --epochs "$epochs" --json >"$tmp/rebuild.json"
  jq -r '"model v\(.version): \(.epochs) epochs, \(.counts.users) users, \(.counts.items) items, \(.seconds|round) s"' "$tmp/rebuild.json"
fi
echo "load average before measuring: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"

echo; echo "== exact top-20 at $exact_items items, beside FAISS"
"$qb" exact --store "$s" --items "$exact_items" --queries 2000 -k 20 "${noise_args[@]}" --json >"$tmp/exact.json"
jq -r '"vectors: \(.real_items) real item rows (width \(.dim)) of model v\(.model_version), tiled to \(.items) (copies: Gaussian noise \(.noise*1000|round/1000) sd per dimension, so a copy lies about the median real nearest-neighbour distance \(.nn_median*1000|round/1000) from its source, and scale jitter +-\(.jitter)); \(.queries) real user queries after \(.warmup) warm-up; threads: aten \(.threads.aten), openmp \(.threads.openmp), openblas \(.threads.openblas)"' "$tmp/exact.json"
jq -r '"ItemIndex::SearchExact  p50 \(.exact.p50_ms*1000|round/1000) ms  p99 \(.exact.p99_ms*1000|round/1000) ms",
       "FAISS IndexFlatIP       p50 \(.faiss_flat_ip.p50_ms*1000|round/1000) ms  p99 \(.faiss_flat_ip.p99_ms*1000|round/1000) ms",
       "at::mv_out + at::topk   p50 \(.aten_mv_topk.p50_ms*1000|round/1000) ms  p99 \(.aten_mv_topk.p99_ms*1000|round/1000) ms",
       "exact / FAISS: p50 \(.ratio_p50*100|round/100)x  p99 \(.ratio_p99*100|round/100)x   (top-20 agreement with FAISS \(.agreement_with_faiss*10000|round/10000))",
       "exploration, explore=2 over \(.explore_candidates) new items: p50 \(.explore.p50_ms*1000|round) us  p99 \(.explore.p99_ms*1000|round) us more per query (\(.explored_results) results explored)"' "$tmp/exact.json"

echo; echo "== HNSW at $hnsw_items items (M $hnsw_m, ef_construction $hnsw_efc, 2 build threads, 1 search thread)"
"$qb" hnsw --store "$s" --items "$hnsw_items" --queries 1000 --recall-queries 500 -k 20 --m "$hnsw_m" "${noise_args[@]}" \
  --ef-construction "$hnsw_efc" --ef "$hnsw_efs" --threads 2 --json >"$tmp/hnsw.json"
jq -r '"build: \(.build_seconds*10|round/10) s, graph \(.graph_bytes/1048576|round) MiB; exact at this size p50 \(.exact_ground_truth.p50_ms*100|round/100) ms"' "$tmp/hnsw.json"
jq -r '.sweep[] | "ef \(.ef): p50 \(.p50_ms*1000|round/1000) ms  p99 \(.p99_ms*1000|round/1000) ms  recall@20 \(.recall*10000|round/10000)"' "$tmp/hnsw.json"

echo; echo "== POST /items -> /recommend?new_only=1 (mosaic serve)"
post_status=skipped
if "$mosaic" serve --help >/dev/null 2>&1; then
  # The user with the most plays, and the artist (item) they played most: the new items name it.
  # (One awk, no `| head`: under pipefail a SIGPIPE in the pipeline would end the script.)
  user=${BENCH_USER:-$(awk -F'\t' 'NR>1{p[$1]+=$3} END{for(u in p) if(p[u]>m){m=p[u]; best=u}; print best}' "$lk/user_artists.dat" 2>/dev/null || true)}
  rec=$("$mosaic" --store "$s" recommend --user "${user:-2}" -k 50 --json 2>/dev/null || true)
  [ -n "$rec" ] || echo "bench: user ${user:-2} is unknown to the model (set BENCH_USER)" >&2
  artist=$(echo "$rec" | jq -r '[.results[] | select(.plays)] | .[0].label // empty' 2>/dev/null || true)
  "$mosaic" --store "$s" serve --port 0 --json >"$tmp/serve.out" 2>"$tmp/serve.err" &
  server=$!
  port=
  for _ in $(seq 1 600); do
    port=$(head -1 "$tmp/serve.out" 2>/dev/null | jq -r '.port // empty' 2>/dev/null || true)
    [ -n "$port" ] && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "bench: mosaic serve did not start:" >&2; cat "$tmp/serve.err" >&2
    post_status=failed
  else
    echo "server on port $port; user ${user:-2}, new items by artist '${artist}'; $posts items after 5 warm-up ones"
    args=(post-latency --url "http://127.0.0.1:$port" --user "${user:-2}" --n "$posts" -k 1000 --json)
    [ -n "$artist" ] && args+=(--artist "$artist")
    if "$qb" "${args[@]}" >"$tmp/post.json"; then post_status=ok; else post_status=failed; fi
    [ -s "$tmp/post.json" ] && jq -r '"visible after POST: p50 \(.visible.p50_ms*100|round/100) ms  p99 \(.visible.p99_ms*100|round/100) ms over \(.visible.n) items (POST alone p50 \(.post.p50_ms*100|round/100) ms, p99 \(.post.p99_ms*100|round/100) ms; \(.missing) not seen within \(.timeout_ms) ms; \(.gets) GETs)"' "$tmp/post.json"
    kill -TERM "$server"; wait "$server" || true; server=
  fi
else
  echo "mosaic serve is not built into $mosaic: skipped"
fi

echo; echo "== summary"
verdict() { if [ "$1" = 1 ]; then echo met; else echo missed; fi; }
e=$tmp/exact.json; h=$tmp/hnsw.json; p=$tmp/post.json
exact_p99=$(jq .exact.p99_ms "$e"); ratio=$(jq .ratio_p99 "$e")
printf '%-48s %-26s %-22s %s\n' "figure" "measured" "target" "verdict"
printf '%-48s %-26s %-22s %s\n' "exact top-20 p99, $exact_items items, 1 thread" "$(printf '%.3f ms' "$exact_p99")" "<= 2 ms" \
  "$(verdict "$(awk -v x="$exact_p99" 'BEGIN{print (x<=2)?1:0}')")"
printf '%-48s %-26s %-22s %s\n' "exact p99 / FAISS IndexFlatIP p99" "$(printf '%.2fx (FAISS %.3f ms)' "$ratio" "$(jq .faiss_flat_ip.p99_ms "$e")")" "<= 1.2x" \
  "$(verdict "$(awk -v x="$ratio" 'BEGIN{print (x<=1.2)?1:0}')")"
if [ "$(jq '.chosen | type' "$h")" = '"object"' ]; then
  printf '%-48s %-26s %-22s %s\n' "HNSW p99 at recall@20 >= 0.95, $hnsw_items items" \
    "$(jq -r '.chosen | "\(.p99_ms*1000|round/1000) ms (ef \(.ef), r \(.recall*1000|round/1000))"' "$h")" "<= 0.5 ms, r >= 0.95" \
    "$(verdict "$(jq '.chosen.p99_ms <= 0.5 | if . then 1 else 0 end' "$h")")"
else
  printf '%-48s %-26s %-22s %s\n' "HNSW p99 at recall@20 >= 0.95, $hnsw_items items" \
    "recall < 0.95 at every ef" "<= 0.5 ms, r >= 0.95" missed
fi
if [ "$post_status" != skipped ] && [ -s "$p" ]; then
  printf '%-48s %-26s %-22s %s\n' "POST /items -> in /recommend?new_only=1, p99" "$(printf '%.2f ms' "$(jq .visible.p99_ms "$p")")" "<= 50 ms" \
    "$(verdict "$(jq '(.visible.p99_ms <= 50 and .missing == 0) | if . then 1 else 0 end' "$p")")"
else
  printf '%-48s %-26s %-22s %s\n' "POST /items -> in /recommend?new_only=1, p99" "not measured ($post_status)" "<= 50 ms" "-"
fi
