#!/usr/bin/env bash
# Import throughput on the real datasets, beside a peer measured in the same run: SQLite's
# bulk CSV import (`.import`) of the same file into a table with a primary key, in one
# transaction. Imports run with --no-text: the peer stores rows, it does not run a text
# encoder (bench/text.sh measures that). Prints rows/s for both and their ratio, then the wall time of a cold
# `mosaic stats` (a fresh process) beside the bare process start of `mosaic --help`.
#
#   bench/import.sh [BUILD_DIR]      (needs ../shared/datasets; best of 3 runs each)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mosaic=${1:-$here/build}/jobs/mosaic
data=$here/../shared/datasets
[ -x "$mosaic" ] || { echo "bench: $mosaic not built; run scripts/setup" >&2; exit 1; }
[ -d "$data" ] || { echo "bench: $data is absent; nothing to measure" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "bench: sqlite3 missing; run scripts/setup" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
runs=3

now() { date +%s.%N; }
# best_of CMD...: the smallest wall time of $runs runs (a fresh store each run).
best_of() {
  local best=""
  for _ in $(seq $runs); do
    rm -rf "$tmp/s" "$tmp/db.sqlite"
    [ -n "${PREPARE:-}" ] && eval "$PREPARE"
    local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now)
    best=$(awk -v a="$best" -v b="$(awk -v x="$t0" -v y="$t1" 'BEGIN{print y-x}')" 'BEGIN{print (a==""||b<a)?b:a}')
  done
  echo "$best"
}

# sqlite_import FILE SEP SKIP_HEADER COLUMNS PRIMARY_KEY
sqlite_import() {
  local file=$1 sep=$2 cols=$3 pk=$4
  { echo "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t($cols, PRIMARY KEY($pk));"
    echo ".mode csv"; [ "$sep" = tab ] && echo ".separator \"\\t\""
    echo ".import --skip 1 '$file' t"; } | sqlite3 "$tmp/db.sqlite"
}

printf '%-34s %10s %12s %12s %8s\n' "file (format)" rows "mosaic r/s" "sqlite r/s" ratio
bench_file() {  # label format file prepare sqlite-args...
  local label=$1 format=$2 file=$3 prepare=$4; shift 4
  local rows; rows=$(($(grep -c '' "$file") - 1))
  local tm ts
  tm=$(PREPARE=$prepare best_of "$mosaic" --store "$tmp/s" --no-text import --format "$format" "$file")
  ts=$(best_of sqlite_import "$file" "$@")
  awk -v l="$label" -v r="$rows" -v tm="$tm" -v ts="$ts" \
    'BEGIN{printf "%-34s %10d %12.0f %12.0f %7.2fx\n", l, r, r/tm, r/ts, tm/ts}'
}
lk=$data/lastfm-kgcn; ml=$data/ml-latest-small; het=$data/hetrec2011-lastfm-2k
bench_file "lastfm user_artists (lastfm-plays)" lastfm-plays "$lk/user_artists.dat" "" tab "u,a,w" "u,a"
bench_file "hetrec artists (hetrec-artists)" hetrec-artists "$het/artists.dat" "" tab "id,name,url,pic" "id"
bench_file "ml ratings (movielens-ratings)" movielens-ratings "$ml/ratings.csv" "" csv "u,m,r,t" "u,m"
bench_file "ml movies (movielens-movies)" movielens-movies "$ml/movies.csv" "" csv "m,title,genres" "m"
bench_file "ml tags (movielens-tags)" movielens-tags "$ml/tags.csv" \
  "\"$mosaic\" --store \"$tmp/s\" --no-text import --format movielens-movies \"$ml/movies.csv\" >/dev/null" csv "u,m,tag,t" "u,m,tag"

# Whole datasets into one store each, then a cold `stats` in a fresh process.
rm -rf "$tmp/lastfm" "$tmp/ml"
t0=$(now)
"$mosaic" --store "$tmp/lastfm" --no-text import --format hetrec-artists "$het/artists.dat" >/dev/null
"$mosaic" --store "$tmp/lastfm" --no-text import --format kg "$lk/kg.txt" --links "$lk/item_index2entity_id.txt" >/dev/null
"$mosaic" --store "$tmp/lastfm" --no-text import --format lastfm-plays "$lk/user_artists.dat" >/dev/null
t1=$(now)
"$mosaic" --store "$tmp/ml" --no-text import --format movielens-movies "$ml/movies.csv" >/dev/null
"$mosaic" --store "$tmp/ml" --no-text import --format movielens-ratings "$ml/ratings.csv" >/dev/null
"$mosaic" --store "$tmp/ml" --no-text import --format movielens-tags "$ml/tags.csv" >/dev/null
t2=$(now)
rows_lastfm=$(( $(grep -c '' "$het/artists.dat") - 1 + $(grep -c '' "$lk/kg.txt") + $(grep -c '' "$lk/item_index2entity_id.txt") + $(grep -c '' "$lk/user_artists.dat") - 1 ))
rows_ml=$(( $(grep -c '' "$ml/movies.csv") + $(grep -c '' "$ml/ratings.csv") + $(grep -c '' "$ml/tags.csv") - 3 ))
echo
awk -v r="$rows_lastfm" -v t="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" \
  'BEGIN{printf "whole lastfm-kgcn + hetrec names: %d rows in %.2f s = %.0f rows/s\n", r, t, r/t}'
awk -v r="$rows_ml" -v t="$(awk -v a="$t1" -v b="$t2" 'BEGIN{print b-a}')" \
  'BEGIN{printf "whole ml-latest-small:            %d rows in %.2f s = %.0f rows/s\n", r, t, r/t}'
for s in lastfm ml; do
  PREPARE=""
  best=""; base=""
  for _ in $(seq $runs); do
    t0=$(now); "$mosaic" --store "$tmp/$s" stats --json >/dev/null; t1=$(now)
    "$mosaic" --help >/dev/null; t2=$(now)
    best=$(awk -v a="$best" -v b="$(awk -v x="$t0" -v y="$t1" 'BEGIN{print y-x}')" 'BEGIN{print (a==""||b<a)?b:a}')
    base=$(awk -v a="$base" -v b="$(awk -v x="$t1" -v y="$t2" 'BEGIN{print y-x}')" 'BEGIN{print (a==""||b<a)?b:a}')
  done
  awk -v s="$s" -v t="$best" -v b="$base" \
    'BEGIN{printf "cold stats (%s): %.1f ms wall, process start alone %.1f ms (%.1fx)\n", s, t*1000, b*1000, t/b}'
done
