#!/usr/bin/env bash
# The whole test suite: set-up, lint, type check, every vitest test. Prints "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
status=0
echo "[test] lint (biome)"
npx biome check . || status=1
echo "[test] type check (tsc)"
npx tsc -p tsconfig.json --noEmit || status=1
mkdir -p test-artifacts
echo "[test] vitest"
npx vitest run --reporter=default --reporter=json --outputFile.json=test-artifacts/vitest.json "$@" || status=1
node scripts/test-summary.mjs test-artifacts/vitest.json || status=1
exit $status
