#!/usr/bin/env bash
# A full `mosaic rebuild` of the Last.FM graph (KGCN's kg.txt and plays, HetRec's artist names: the
# same imports as `mosaic eval --dataset lastfm-kgcn`), beside a peer measured in the same run: the
# import of those same files into the store (wall time of the three imports). Prints the rebuild's
# per-stage seconds, seconds per epoch, TransR triples/s, its total wall time and the ratio of the
# rebuild's wall time to the import's.
#
#   bench/rebuild.sh [--ranks 1,2] [--scale 2,4] [BUILD_DIR]  (needs ../shared/datasets; EPOCHS=N (default: the
#                                          model's, 80, or 3 with --ranks), DEVICE=cpu|cuda|auto)
# Item texts are encoded when the text model is present (the model then reads them, as in use);
# NO_TEXT=1 leaves them out.
#
# After the first version, `rebuild --model-kind v2` of the same store (the second version, fitted
# in closed form: no epochs), with its wall time and fit stages beside the first version's.
#
# --scale: the same catalogue with the plays tiled: each listener copied N times under new ids, every
# copy after the first with a tenth of its plays dropped (a fixed hash of user, artist and copy), so
# that the copies are perturbed, not identical. For 1x and each factor: interactions, the first
# version's seconds per epoch (3 epochs) and the second version's fit seconds, each as a ratio to
# 1x beside the ratio of interactions.
#
# --ranks: after the single-process rebuild, `rebuild --distributed` with each number of ranks as
# processes on this machine (loopback), one compute thread per rank (OMP_NUM_THREADS=1, so that the
# ranks do not fight over the cores; the 1-rank row runs with one thread too). Prints per rank
# count: seconds per epoch and per step, bytes allreduced per step and the seconds in allreduce;
# then a model of N machines on a 10 Gbit/s network, stated as a model: the work the 1- and 2-rank
# rows show to divide over ranks (the loss terms) and the work every rank repeats (the propagation
# over the whole graph), plus a ring allreduce of the measured bytes.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ranks=""
scale=""
while [ $# -gt 0 ]; do
  case "$1" in
    --ranks) ranks=$2; shift 2 ;;
    --scale) scale=$2; shift 2 ;;
    *) break ;;
  esac
done
mosaic=${1:-$here/build}/jobs/mosaic
data=$here/../shared/datasets
lk=$data/lastfm-kgcn; het=$data/hetrec2011-lastfm-2k
[ -x "$mosaic" ] || { echo "bench: $mosaic not built; run scripts/setup" >&2; exit 1; }
[ -d "$lk" ] || { echo "bench: $lk is absent; nothing to measure" >&2; exit 1; }
command -v jq >/dev/null || { echo "bench: jq missing (apt-get install jq)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
epochs=${EPOCHS:-}
[ -n "$ranks" ] && [ -z "$epochs" ] && epochs=3
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

# The second version of the same store.
t3=$(now)
"$mosaic" --store "$s" rebuild --model-kind v2 --json >"$tmp/rebuild2.json"
t4=$(now)
v2_s=$(awk -v a="$t3" -v b="$t4" 'BEGIN{print b-a}')
r2=$tmp/rebuild2.json
echo
echo "second version (rebuild --model-kind v2), same store:"
jq -r '.second_version | "chosen: EASE^R lambda \(.ease_lambda), rank \(.ease_rank), blend weight \(.blend_weight) (\(.cold_weight) without plays, k \(.count_k), offset \(.offset_weight // 0)); kernel g \(.content.g), w_text \(.content.w_text), lambda \(.content.lambda), rank \(.content.rank), pop \(.content.pop)"' "$r2"
jq -r '.second_version.fit_stages[] | "  \(.stage): \(.seconds|.*100|round/100) s"' "$r2"
awk -v a="$v2_s" -v b="$rebuild_s" -v e="$(jq .seconds_per_epoch "$r")" \
  'BEGIN{printf "second version wall time: %.2f s (process included); first version %.2f s (%.3f s/epoch); ratio %.2fx\n", a, b, e, a/b}'

if [ -n "$scale" ]; then
  echo
  echo "plays tiled (listeners copied, each copy after the first with a tenth of its plays dropped):"
  printf "%-6s %14s %10s %16s %10s %16s %10s\n" scale interactions ratio "v1 s/epoch" ratio "v2 fit s" ratio
  base_x=""; base_e=""; base_f=""
  for f in 1 ${scale//,/ }; do
    st=$tmp/scaled$f
    awk -v f="$f" 'NR == 1 { print; next }
      { for (k = 0; k < f; k++) { if (k > 0 && ($1 * 31 + $2 * 17 + k * 7) % 10 == 0) continue
          printf "%d\t%s\t%s\n", $1 + k * 1000000, $2, $3 } }' "$lk/user_artists.dat" >"$tmp/plays$f.dat"
    [ -f "$het/artists.dat" ] && "$mosaic" --store "$st" "${text[@]}" import --format hetrec-artists "$het/artists.dat" >/dev/null
    "$mosaic" --store "$st" "${text[@]}" import --format kg "$lk/kg.txt" --links "$lk/item_index2entity_id.txt" >/dev/null
    "$mosaic" --store "$st" "${text[@]}" import --format lastfm-plays "$tmp/plays$f.dat" >/dev/null
    "$mosaic" --store "$st" --device "$device" rebuild --epochs 3 --json >"$tmp/s1_$f.json"
    "$mosaic" --store "$st" rebuild --model-kind v2 --json >"$tmp/s2_$f.json"
    x=$(jq .counts.interactions "$tmp/s1_$f.json"); e=$(jq .seconds_per_epoch "$tmp/s1_$f.json"); fit=$(jq .stages.fit "$tmp/s2_$f.json")
    [ -z "$base_x" ] && { base_x=$x; base_e=$e; base_f=$fit; }
    awk -v f="$f" -v x="$x" -v e="$e" -v fit="$fit" -v bx="$base_x" -v be="$base_e" -v bf="$base_f" \
      'BEGIN{printf "%-6s %14d %9.2fx %16.3f %9.2fx %16.2f %9.2fx\n", f "x", x, x/bx, e, e/be, fit, fit/bf}'
    rm -rf "$st"
  done
fi

[ -n "$ranks" ] || exit 0

# The same store, trained by groups of ranks.
echo
echo "data-parallel rebuilds (rebuild --distributed over Gloo on loopback, one thread per rank, $epochs epochs):"
printf "%-6s %12s %12s %16s %18s\n" ranks "s/epoch" "s/step" "bytes/step" "allreduce s/step"
declare -A step_s bytes
for n in ${ranks//,/ }; do
  port=$(( 20000 + RANDOM % 20000 ))
  pids=()
  for ((r = 0; r < n; r++)); do
    if [ "$n" -eq 1 ]; then
      OMP_NUM_THREADS=1 "$mosaic" --store "$s" --device "$device" rebuild --epochs "$epochs" --json >"$tmp/rank$r.json" &
    else
      OMP_NUM_THREADS=1 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port RANK=$r WORLD_SIZE=$n \
        "$mosaic" --store "$s" --device "$device" rebuild --distributed --epochs "$epochs" --json >"$tmp/rank$r.json" &
    fi
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  r0=$tmp/rank0.json
  per_epoch=$(jq .seconds_per_epoch "$r0")
  # Steps per epoch: interactions / batch (16384), at least 1.
  spe=$(jq '(.counts.interactions / 16384 | ceil) | if . < 1 then 1 else . end' "$r0")
  b=$(jq '.distributed.bytes_allreduced_per_step // 0' "$r0")
  ar=$(jq --argjson e "$epochs" --argjson spe "$spe" '(.distributed.allreduce_seconds // 0) / ($e * $spe)' "$r0")
  step_s[$n]=$(awk -v e="$per_epoch" -v k="$spe" -v a="$ar" 'BEGIN{print e/k - a}')
  bytes[$n]=$b
  printf "%-6s %12.3f %12.3f %16s %18.4f\n" "$n" "$per_epoch" "$(awk -v e="$per_epoch" -v k="$spe" 'BEGIN{print e/k}')" "$b" "$ar"
done
if [ -n "${step_s[1]:-}" ] && [ -n "${step_s[2]:-}" ]; then
  awk -v c1="${step_s[1]}" -v c2="${step_s[2]}" -v b="${bytes[2]}" 'BEGIN{
    # c1 = shared + divided, c2 = shared + divided / 2 (compute per step, allreduce excluded)
    divided = 2 * (c1 - c2); if (divided < 0) divided = 0; if (divided > c1) divided = c1; shared = c1 - divided
    printf "model (not a measurement): per step, %.3f s repeated by every rank (propagation over the whole graph) + %.3f s divided over ranks (the loss terms)\n", shared, divided
    printf "           ring allreduce of %d bytes on 10 Gbit/s with 50 us per hop: 2(N-1)/N x bytes / bandwidth + 2(N-1) x 50 us\n", b
    printf "%-10s %14s %16s %10s\n", "machines", "s/step", "of which comm", "speedup"
    n = split("1 2 4 8 16", ns, " ")
    for (k = 1; k <= n; k++) { N = ns[k]
      comm = N > 1 ? 2 * (N - 1) / N * b * 8 / 10e9 + 2 * (N - 1) * 50e-6 : 0
      t = shared + divided / N + comm
      printf "%-10d %14.4f %16.4f %9.2fx\n", N, t, comm, c1 / t }
  }'
fi
