#!/usr/bin/env bash
# Cross-checks `mosaic eval`: most-popular's warm Recall@20 and NDCG@20 on ml-latest-small, from the
# harness and from bench/mostpop_recall.awk reading the split the harness wrote to disk. They must
# agree to 1e-6. Also checks that the same seed writes a byte-identical split twice.
#   bench/eval_check.sh [BUILD_DIR]     (needs ../shared/datasets)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mosaic=${1:-$here/build}/jobs/mosaic
data=$here/../shared/datasets/ml-latest-small
[ -d "$data" ] || { echo "eval_check: $data is absent" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$mosaic" --json eval --data "$data" --dataset movielens --protocol warm --seed 7 --dump-split "$tmp/a" > "$tmp/run.json"
"$mosaic" --json eval --data "$data" --dataset movielens --protocol warm --seed 7 --dump-split "$tmp/b" > /dev/null
if cmp -s <(cat "$tmp"/a/*.tsv) <(cat "$tmp"/b/*.tsv); then echo "same seed, same split: byte-identical"; else echo "split differs between runs" >&2; exit 1; fi
harness=$(grep -o '"metrics":{[^}]*},"model":"MostPopular"' "$tmp/run.json")
h_recall=$(sed -E 's/.*"Recall@20":([0-9.eE+-]+).*/\1/' <<<"$harness")
h_ndcg=$(sed -E 's/.*"NDCG@20":([0-9.eE+-]+).*/\1/' <<<"$harness")
read -r _ users _ a_recall _ a_ndcg < <(gawk -f "$here/bench/mostpop_recall.awk" "$tmp/a/items.tsv" "$tmp/a/train.tsv" "$tmp/a/test.tsv")
awk -v hr="$h_recall" -v ar="$a_recall" -v hn="$h_ndcg" -v an="$a_ndcg" -v u="$users" 'BEGIN{
  dr = hr - ar; if (dr < 0) dr = -dr; dn = hn - an; if (dn < 0) dn = -dn
  printf "most-popular warm on ml-latest-small (%d users): Recall@20 harness %.8f awk %.8f |diff| %.1e; NDCG@20 harness %.8f awk %.8f |diff| %.1e\n", u, hr, ar, dr, hn, an, dn
  exit (dr <= 1e-6 && dn <= 1e-6) ? 0 : 1 }'
