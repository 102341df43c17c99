#!/usr/bin/env bash
# Ingest speed against the decoding floor, measured in the same run. For a 60 s 720p and a 60 s
# 1080p H.264+AAC clip (generated here, keyframe every 2 s as streaming encoders write them),
# prints the wall time of `mosaic ingest --no-text` into a fresh store (hash, decode, visual and
# audio features, write)
# beside the `ffmpeg` CLI doing only the decoding floor: keyframes scaled to 224x224 RGB, plus
# the whole audio resampled to mono 16 kHz float, both to /dev/null. Target: ratio <= 1.3 and
# >= 100x real time at 720p. The last column is the same ingest with the item's text embedding
# too (loading LibTorch and the text model, ~0.2 s, is most of the difference). Then the
# throughput of `ingest --no-text --jobs 2` over ../shared/media.
#
#   bench/ingest.sh [BUILD_DIR]     (best of 3 runs each)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mosaic=${1:-$here/build}/jobs/mosaic
media=$here/../shared/media
[ -x "$mosaic" ] || { echo "bench: $mosaic not built; run scripts/setup" >&2; exit 1; }
command -v ffmpeg >/dev/null || { echo "bench: ffmpeg missing; run scripts/setup" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
runs=3

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{print b-a}'; }
min() { awk -v a="$1" -v b="$2" 'BEGIN{print (a==""||b<a)?b:a}'; }

echo "generating clips (60 s, H.264 veryfast + AAC, keyframe every 2 s)..."
for size in 1280x720 1920x1080; do
  ffmpeg -v error -y -f lavfi -i "testsrc2=size=$size:rate=25:duration=60" \
    -f lavfi -i "sine=frequency=440:beep_factor=4:duration=60" \
    -c:v libx264 -preset veryfast -g 50 -pix_fmt yuv420p -c:a aac -b:a 128k -shortest "$tmp/clip-$size.mp4"
done

printf '\n%-10s %9s %12s %12s %8s %12s %14s\n' clip MB "mosaic s" "ffmpeg s" ratio "x realtime" "with text s"
for size in 1280x720 1920x1080; do
  clip=$tmp/clip-$size.mp4
  tm=""; tf=""; tt=""
  for _ in $(seq $runs); do
    rm -rf "$tmp/store"
    t0=$(now); "$mosaic" --store "$tmp/store" ingest "$clip" >/dev/null; t1=$(now)
    tt=$(min "$tt" "$(elapsed "$t0" "$t1")")
    rm -rf "$tmp/store"
    t0=$(now); "$mosaic" --store "$tmp/store" --no-text ingest "$clip" >/dev/null; t1=$(now)
    ffmpeg -v error -skip_frame nokey -i "$clip" -vf scale=224:224 -f rawvideo -pix_fmt rgb24 - >/dev/null
    ffmpeg -v error -i "$clip" -vn -ac 1 -ar 16000 -f f32le - >/dev/null
    t2=$(now)
    tm=$(min "$tm" "$(elapsed "$t0" "$t1")"); tf=$(min "$tf" "$(elapsed "$t1" "$t2")")
  done
  mb=$(awk -v b="$(stat -c %s "$clip")" 'BEGIN{printf "%.1f", b/1e6}')
  awk -v c="$size" -v mb="$mb" -v m="$tm" -v f="$tf" -v t="$tt" \
    'BEGIN{printf "%-10s %9s %12.3f %12.3f %7.2fx %11.0fx %14.3f\n", c, mb, m, f, m/f, 60/m, t}'
done

if [ -d "$media" ]; then
  best=""
  for _ in $(seq $runs); do
    rm -rf "$tmp/store"
    t0=$(now); "$mosaic" --store "$tmp/store" --no-text --json ingest --jobs 2 "$media" >"$tmp/ingest.json"; t1=$(now)
    best=$(min "$best" "$(elapsed "$t0" "$t1")")
  done
  files=$(grep -o '"status":"ingested"' "$tmp/ingest.json" | wc -l)
  bytes=$(grep -o '^{"bytes":[0-9]*' "$tmp/ingest.json" | grep -o '[0-9]*$')
  awk -v n="$files" -v b="$bytes" -v t="$best" \
    'BEGIN{printf "\n../shared/media with --jobs 2: %d files, %.1f MB in %.2f s = %.1f files/s, %.1f MB/s\n", n, b/1e6, t, n/t, b/1e6/t}'
fi
