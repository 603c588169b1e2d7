#!/usr/bin/env bash
# Sets up Berth and starts the control plane on its embedded store.
# Prints the endpoint and a working `aws ecs` example. Ctrl-C stops it gracefully.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec ./build/apps/berth/berth server --listen "${BERTH_LISTEN:-127.0.0.1:8080}" \
  --data-dir "${BERTH_DATA_DIR:-$PWD/berth-data}" "$@"
