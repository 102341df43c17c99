#!/usr/bin/env bash
# Cross-checks `mosaic eval`: most-popular's warm Recall@20 and NDCG@20 on ml-latest-small, from the
# harness and from bench/mostpop_recall.awk reading the split the harness wrote to disk. They must
# agree to 1e-6. Also checks that the same seed writes a byte-identical split twice. Then, on
# ml-latest-small and lastfm-kgcn, EASE's and RP3beta's Recall@20 and NDCG@20 at the settings the
# harness chose on validation, recomputed by bench/peers_check.py (numpy, shares no code), must
# agree to 1e-4.
#   bench/eval_check.sh [BUILD_DIR]     (needs ../shared/datasets and python3-numpy)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mosaic=${1:-$here/build}/jobs/mosaic
datasets=$here/../shared/datasets
data=$datasets/ml-latest-small
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

# EASE and RP3beta against numpy, on both datasets (the model is not needed: --no-model).
status=0
for pair in "ml-latest-small movielens" "lastfm-kgcn lastfm-kgcn"; do
  read -r folder name <<<"$pair"
  [ -d "$datasets/$folder" ] || { echo "eval_check: $datasets/$folder is absent" >&2; exit 1; }
  "$mosaic" --json eval --data "$datasets/$folder" --dataset "$name" --protocol warm --seed 7 --no-model \
    --dump-split "$tmp/$name" > "$tmp/$name.json"
  /usr/bin/python3 "$here/bench/peers_check.py" "$tmp/$name" "$tmp/$name.json" || status=1
done
exit $status
