#!/usr/bin/env bash
# Sets up Berth and brings up a one-machine cluster: the control plane on its embedded store,
# Podman's Docker-compatible service (started when nothing answers), an agent, and a sample web
# task built locally from Debian's busybox-static. Prints the endpoint, the credentials profile
# and the URL that answers. Ctrl-C stops it gracefully; containers are re-adopted next time.
# BERTH_LISTEN and BERTH_DATA_DIR override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec ./build/apps/berth/berth dev --listen "${BERTH_LISTEN:-127.0.0.1:8080}" \
  --data-dir "${BERTH_DATA_DIR:-$PWD/berth-dev}"
