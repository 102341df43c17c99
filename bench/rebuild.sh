#!/usr/bin/env bash
# A full `mosaic rebuild` of the Last.FM graph (KGCN's kg.txt and plays, HetRec's artist names: the
# same imports as `mosaic eval --dataset lastfm-kgcn`), beside a peer measured in the same run: the
# import of those same files into the store (wall time of the three imports). Prints the rebuild's
# per-stage seconds, seconds per epoch, TransR triples/s, its total wall time and the ratio of the
# rebuild's wall time to the import's.
#
#   bench/rebuild.sh [BUILD_DIR]      (needs ../shared/datasets; EPOCHS=N (default: the model's, 80), DEVICE=cpu|cuda|auto)
# Item texts are encoded when the text model is present (the model then reads them, as in use);
# NO_TEXT=1 leaves them out.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mosaic=${1:-$here/build}/jobs/mosaic
data=$here/../shared/datasets
lk=$data/lastfm-kgcn; het=$data/hetrec2011-lastfm-2k
[ -x "$mosaic" ] || { echo "bench: $mosaic not built; run scripts/setup" >&2; exit 1; }
[ -d "$lk" ] || { echo "bench: $lk is absent; nothing to measure" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench: jq missing (apt-get install jq)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
epochs=${EPOCHS:-}
epoch_args=()
[ -n "$epochs" ] && epoch_args=(--epochs "$epochs")
device=${DEVICE:-cpu}
text=()
if [ -n "${NO_TEXT:-}" ] || ! "$mosaic" embed test >/dev/null 2>&1; then text=(--no-text); fi

now() { date +%s.%N; }
s=$tmp/s
t0=$(now)
[ -f "$het/artists.dat" ] && "$mosaic" --store "$s" "${text[@]}" import --format hetrec-artists "$het/artists.dat" >/dev/null
"$mosaic" --store "$s" "${text[@]}" import --format kg "$lk/kg.txt" --links "$lk/item_index2entity_id.txt" >/dev/null
"$mosaic" --store "$s" "${text[@]}" import --format lastfm-plays "$lk/user_artists.dat" >/dev/null
t1=$(now)
"$mosaic" --store "$s" --device "$device" rebuild "${epoch_args[@]}" --json >"$tmp/rebuild.json"
t2=$(now)

import_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
rebuild_s=$(awk -v a="$t1" -v b="$t2" 'BEGIN{print b-a}')
r=$tmp/rebuild.json
echo "Last.FM (lastfm-kgcn + HetRec names$([ ${#text[@]} -gt 0 ] && echo ', no text' || echo ', with text')), $(jq -r .epochs "$r") epochs on $(jq -r .device "$r")"
jq -r '.counts | "graph: \(.users) users, \(.items) items, \(.entities) entities, \(.interactions) interactions, \(.kg_triples) KG triples / \(.kg_relations) relations"' "$r"
jq -r '.stages | "stages: snapshot \(.snapshot|.*100|round/100) s, training \(.training|.*100|round/100) s, representations \(.representations|.*100|round/100) s, write \(.write|.*100|round/100) s"' "$r"
jq -r '"seconds per epoch: \(.seconds_per_epoch|.*1000|round/1000)   TransR: \(.transr_triples_per_second|round) triples/s   final BPR loss \(.final_loss.bpr|.*10000|round/10000)"' "$r"
awk -v r="$rebuild_s" -v i="$import_s" \
  'BEGIN{printf "rebuild wall time: %.2f s (process included); peer, importing the same files: %.2f s; ratio %.1fx\n", r, i, r/i}'
