#!/usr/bin/env bash
# Rejects #includes that break the module dependency rules (docs/architecture.md).
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
check() {  # check DIR PATTERN WHY
  local hits
  hits=$(grep -rnE "#include [<\"]($2)" "$1" --include='*.h' --include='*.cc' || true)
  if [ -n "$hits" ]; then
    echo "check_deps: $1 must not include $2 ($3):"; echo "$hits"; fail=1
  fi
}
check src/common 'model/|store/|api/|server/|boost/asio|boost/beast|sqlite3' "common is the base"
check src/model 'store/|api/|server/|boost/asio|boost/beast|sqlite3' "model is pure domain"
check src/store 'model/|api/|server/|boost/asio|boost/beast' "store knows no protocol"
check src/api 'store/|server/|boost/asio|boost/beast|sqlite3' "api knows no transport or storage"
[ -d src/scheduler ] && check src/scheduler 'store/|api/|server/|boost/asio|boost/beast|sqlite3|spdlog|random>|chrono>' "the scheduler is pure"
# Beast/Asio only in transport .cc files (listener, engine client, agent clients), never in a
# header: compile time on 2 cores is precious.
beast=$(grep -rlE '#include <boost/(beast|asio)' src --include='*.h' || true)
if [ -n "$beast" ]; then echo "check_deps: Beast/Asio in headers: $beast"; fail=1; fi
exit $fail
