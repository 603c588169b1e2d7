#!/usr/bin/env bash
# Sets up Berth and runs every test: GoogleTest unit tests (ctest), then the integration tests
# that start the real binary and drive it with boto3 and the AWS CLI (pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/check_deps.sh
(cd build && ctest --output-on-failure -j"$(nproc)" --timeout 300)
export BERTH_BIN="$PWD/build/apps/berth/berth"
/usr/bin/python3 -m pytest -q -p no:cacheprovider tests/integration
