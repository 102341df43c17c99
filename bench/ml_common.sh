# Sourced by the MovieLens replays (bench/replay.sh, bench/explore.sh): their common set-up and a way to
# start a server. Expects $here (the repository) and $1 (the build folder, optional) of the caller.
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

# Starts `mosaic serve` on STORE on a free port, in this shell (so that its pid is kept in $pids); sets
# $port. NAME names its output files in $tmp; further arguments go to serve.
start_server() {
  local store=$1 name=$2; shift 2
  rm -f "$tmp/$name.out"  # a file left by an earlier server of that name would be read as this one's
  "$mosaic" --store "$store" "${text[@]}" serve --port 0 --json "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  for _ in $(seq 1200); do
    [ -s "$tmp/$name.out" ] && break
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "bench: the $name server exited:" >&2; cat "$tmp/$name.err" >&2; exit 1; }
    sleep 0.1
  done
  port=$(head -1 "$tmp/$name.out" | jq -r .port)
  [[ "$port" =~ ^[0-9]+$ ]] || { echo "bench: the $name server printed no port" >&2; exit 1; }
}
