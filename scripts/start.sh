#!/usr/bin/env bash
# npm start — the main job: set-up, then the complete local deployment on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/src/cli/sealroom.js demo "$@"
