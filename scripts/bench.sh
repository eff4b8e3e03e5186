#!/usr/bin/env bash
# npm run bench:<name> — set-up, then the benchmark; its last line is one JSON object.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: bench.sh <name>}"
bash scripts/setup.sh >&2
exec node --expose-gc "dist/scripts/bench/${name}.js" "${@:2}"
