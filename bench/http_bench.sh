#!/usr/bin/env bash
# HTTP throughput of the ECS read path against the same server's fixed-response ceiling.
#
# Starts `berth server` on 127.0.0.1:0 with a temp data dir, seeds a cluster and a task definition
# (boto3), then runs wrk against GET /health (the ceiling: no auth, no JSON, no store),
# DescribeClusters and DescribeTaskDefinition (SigV4-signed, precomputed, re-signed before each run),
# at several connection counts and in two CPU layouts:
#   shared  server (--threads 2) and wrk (-t2) float over both cores; wrk takes a large share of
#           the CPU, so absolute req/s understate what the server does with 2 cores of its own.
#   split   server pinned to CPU 0, wrk (-t1) pinned to CPU 1: the server has exactly one core and
#           never competes with the load generator, so numbers are "per server core".
# Both are reported; the ratio vs /health in the same layout and connection count is the figure
# that carries over between machines. Builds nothing.
#
# Environment (all optional):
#   BERTH_BIN      server binary (default build/apps/berth/berth, relative to the repo root)
#   DURATION       seconds per wrk run (default 10)
#   CONNS          connection counts (default "32 64 128")
#   MODES          layouts to run (default "shared split")
#   SERVER_THREADS --threads for the server (default 2)
#   REVISIONS      revisions registered in the family DescribeTaskDefinition reads (default 5)
#   NOISE_RETRIES  repeats of a run disturbed by other processes' CPU use (default 2)
#   RESULTS        also keep the JSON-lines results at this path
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="$ROOT/bench"
PY=/usr/bin/python3          # Debian's: it has botocore/boto3 (python3-boto3)
BERTH_BIN="${BERTH_BIN:-build/apps/berth/berth}"
[[ "$BERTH_BIN" = /* ]] || BERTH_BIN="$ROOT/$BERTH_BIN"
DURATION="${DURATION:-10}"
CONNS="${CONNS:-32 64 128}"
MODES="${MODES:-shared split}"
SERVER_THREADS="${SERVER_THREADS:-2}"
REVISIONS="${REVISIONS:-5}"
NOISE_RETRIES="${NOISE_RETRIES:-2}"
ENDPOINTS="health describe_clusters describe_task_definition"

for tool in wrk taskset "$PY"; do
  command -v "$tool" >/dev/null || { echo "http_bench: $tool not found (apt-get install wrk python3-boto3)" >&2; exit 1; }
done
[[ -x "$BERTH_BIN" ]] || { echo "http_bench: no server binary at $BERTH_BIN (build target berth first)" >&2; exit 1; }
[[ "$DURATION" =~ ^[0-9]+$ && "$DURATION" -ge 1 && "$DURATION" -le 120 ]] || { echo "DURATION must be 1..120" >&2; exit 1; }

WORK="$(mktemp -d /tmp/berth-http-bench.XXXXXX)"
SERVER_PID=""

stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVER_PID" 2>/dev/null && { echo "http_bench: server ignored SIGTERM for 15 s; killing" >&2; kill -KILL "$SERVER_PID" 2>/dev/null || true; }
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}
cleanup() {
  stop_server
  [[ -z "${RESULTS:-}" || ! -f "$WORK/results.jsonl" ]] || cp "$WORK/results.jsonl" "$RESULTS"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A private copy, so a rebuild by someone else during the run cannot swap the binary under us.
cp "$BERTH_BIN" "$WORK/berth"

start_server() {  # $1 = mode; sets SERVER_PID, HOST, CREDS
  local mode="$1" data="$WORK/data-$1" pin=()
  [[ "$mode" == split ]] && pin=(taskset -c 0)
  "${pin[@]}" "$WORK/berth" server --listen 127.0.0.1:0 --data-dir "$data" --threads "$SERVER_THREADS" \
    >"$WORK/server-$mode.out" 2>"$WORK/server-$mode.err" &
  SERVER_PID=$!
  HOST=""
  for _ in $(seq 1 150); do  # 15 s at most; startup takes milliseconds
    # (the redirection may not exist yet when the machine is busy: `|| true` keeps set -e quiet)
    HOST="$(head -n1 "$WORK/server-$mode.out" 2>/dev/null | sed -n 's#^berth server listening on http://##p' || true)"
    [[ -n "$HOST" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server-$mode.err" >&2; echo "http_bench: server exited" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n "$HOST" ]] || { echo "http_bench: server printed no endpoint" >&2; exit 1; }
  CREDS="$data/credentials"
}

cpu_ticks() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9; exit}' /proc/stat; }  # busy total
proc_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }  # utime+stime of all the server's threads

run_wrk() {  # $1 = mode, $2 = endpoint, $3 = connections, $4 = seconds, $5 = record (1/0)
  local mode="$1" ep="$2" c="$3" d="$4" path="/" threads=2 pin=()
  [[ "$ep" == health ]] && path="/health"
  if [[ "$mode" == split ]]; then threads=1; pin=(taskset -c 1); fi
  # Explicit `|| exit`: run_measured calls this in an && list, where set -e does not apply.
  cd "$BENCH" && "$PY" wrk_requests.py sign --host "$HOST" --credentials "$CREDS" --out-dir "$WORK" || exit 1
  # CPU accounting around the run: the server's ticks, wrk's user+sys, and everything else on the
  # machine (other people's compiles on a shared box show up there and explain noisy runs).
  local cpu0 cpu1 srv0 srv1 TIMEFORMAT='%3U %3S'
  cpu0="$(cpu_ticks)"; srv0="$(proc_ticks "$SERVER_PID")"
  # wrk stops itself after -d; `timeout` is the guard if it hangs on a wedged server.
  { time timeout $((d + 30)) "${pin[@]}" wrk -t"$threads" -c"$c" -d"${d}s" --timeout 5s \
      -s "$WORK/$ep.lua" "http://$HOST$path" >"$WORK/wrk.out" 2>&1; } 2>"$WORK/wrk.time" \
    || { cat "$WORK/wrk.out" >&2; exit 1; }
  kill -0 "$SERVER_PID" 2>/dev/null || { tail -c 2000 "$WORK/server-$mode.err" >&2; echo "http_bench: server died during $ep c=$c" >&2; exit 1; }
  cpu1="$(cpu_ticks)"; srv1="$(proc_ticks "$SERVER_PID")"
  [[ "$5" == 1 ]] || return 0
  local rc=0
  cd "$BENCH" && "$PY" wrk_requests.py record --mode "$mode" --endpoint "$ep" --conns "$c" \
    --results "$WORK/results.jsonl" --expected "$WORK/expected_sizes.json" \
    --cpu "$cpu0 $cpu1 $srv0 $srv1 $(tail -n1 "$WORK/wrk.time") $(nproc) $(getconf CLK_TCK)" <"$WORK/wrk.out" || rc=$?
  printf '  %-7s %-26s c=%-4s %s%s\n' "$mode" "$ep" "$c" "$(grep -E '^Requests/sec' "$WORK/wrk.out")" \
    "$([[ $rc == 3 ]] && echo '  (noisy: other processes used CPU)')"
  [[ $rc == 0 || $rc == 3 ]] || exit 1
  return $rc
}

# A run disturbed by other processes is repeated, NOISE_RETRIES times at most.
run_measured() {  # $1 = mode, $2 = endpoint, $3 = connections
  local try
  for try in $(seq 0 "$NOISE_RETRIES"); do
    run_wrk "$1" "$2" "$3" "$DURATION" 1 && return 0
    [[ $try -lt $NOISE_RETRIES ]] && sleep 2
  done
  return 0
}

echo "berth http bench: $(date -u +%FT%TZ), $(nproc) cores, binary $BERTH_BIN"
echo "  wrk $DURATION s per run, connections: $CONNS, layouts: $MODES, server --threads $SERVER_THREADS, $REVISIONS revisions"
for mode in $MODES; do
  [[ "$mode" == shared || "$mode" == split ]] || { echo "unknown mode $mode" >&2; exit 1; }
  start_server "$mode"
  echo "layout $mode: server $HOST (pid $SERVER_PID, CPUs $(awk '/Cpus_allowed_list/{print $2}' "/proc/$SERVER_PID/status"))"
  (cd "$BENCH" && "$PY" wrk_requests.py setup --host "$HOST" --credentials "$CREDS" --revisions "$REVISIONS") | sed 's/^/  /'
  run_wrk "$mode" describe_clusters 32 2 0   # warm-up: page cache, allocator, connection setup
  for c in $CONNS; do
    for ep in $ENDPOINTS; do
      run_measured "$mode" "$ep" "$c"
    done
  done
  stop_server
  # The server logs to stderr; a large log here means per-request logging on the hot path.
  echo "  server stderr after the runs: $(wc -c <"$WORK/server-$mode.err") bytes"
done
echo
cd "$BENCH" && "$PY" wrk_requests.py report --results "$WORK/results.jsonl"
