#!/usr/bin/python3
"""Latency of durable writes: RegisterTaskDefinition over keep-alive connections.

Sequential mode (always): N calls, one after another, on ONE keep-alive http.client connection.
Each request carries its own fresh SigV4 signature, computed right before it is sent; the clock
starts after signing, so the figures are send -> full response read, as a client sees them minus
its own signing cost. Every call must answer 200 with the new revision.

Concurrent mode (--threads T, T > 1): the same N calls split over T threads, each with its own
connection, all released together. Each thread signs its whole batch before the start (Python's
GIL would otherwise put one thread's signing inside another thread's measured latency), so here
throughput is wall-clock and excludes signing too. The server must group commits to go faster
than one fsync per write.

By default starts its own server (BERTH_BIN or --berth, temp data dir, --threads 2) and stops it
with SIGTERM at the end; --endpoint/--credentials point it at a running server instead.
Target: p99 <= 10 ms sequential (every acknowledged write is durable: SQLite WAL, synchronous=FULL).
"""

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time

import bench_common as bc

TARGET_P99_MS = 10.0
# Per-call socket timeout: a write that takes longer has failed the benchmark anyway.
CALL_TIMEOUT_S = 10.0
# A whole mode gives up after this long, whatever N is (bounded runtime on a wedged server).
# Signatures are valid for 5 minutes, so pre-signed batches must also be used within that.
MODE_DEADLINE_S = 240.0


def summarize(label, latencies_s, wall_s, errors):
    lat = sorted(x * 1000 for x in latencies_s)
    n = len(lat)
    row = {
        "mode": label, "calls": n, "errors": errors,
        "p50_ms": bc.percentile(lat, 50), "p90_ms": bc.percentile(lat, 90),
        "p99_ms": bc.percentile(lat, 99), "max_ms": lat[-1] if lat else float("nan"),
        "mean_ms": sum(lat) / n if n else float("nan"),
        "throughput_per_s": n / wall_s if wall_s > 0 else float("nan"),
    }
    print(f"{label:<14} calls={n:<6} errors={errors:<3} p50={row['p50_ms']:.2f} ms  "
          f"p90={row['p90_ms']:.2f} ms  p99={row['p99_ms']:.2f} ms  max={row['max_ms']:.2f} ms  "
          f"throughput={row['throughput_per_s']:,.0f}/s")
    return row


def one_call(conn, headers, body, expect_family):
    """Sends one signed request; returns (seconds, error or None). Reads the whole response."""
    t0 = time.perf_counter()
    conn.request("POST", "/", body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    dt = time.perf_counter() - t0
    if resp.status != 200:
        return dt, f"HTTP {resp.status}: {data[:200]!r}"
    td = json.loads(data).get("taskDefinition", {})
    if td.get("family") != expect_family or not td.get("revision"):
        return dt, f"unexpected body {data[:200]!r}"
    return dt, None


def connect(host):
    addr, port = host.rsplit(":", 1)
    conn = http.client.HTTPConnection(addr, int(port), timeout=CALL_TIMEOUT_S)
    conn.connect()
    return conn


def run_sequential(host, creds, n, family, label="sequential"):
    conn = connect(host)
    lat, errors, first_error = [], 0, None
    measured = 0.0
    deadline = time.monotonic() + MODE_DEADLINE_S
    for i in range(n):
        if time.monotonic() > deadline:
            print(f"{label}: stopped after {i} calls (time bound {MODE_DEADLINE_S:.0f} s)")
            break
        headers, body = bc.sign(creds, host, "RegisterTaskDefinition", bc.task_definition(family, i))
        dt, err = one_call(conn, headers, body, family)
        measured += dt
        if err:
            errors += 1
            first_error = first_error or err
        else:
            lat.append(dt)
    conn.close()
    if first_error:
        print(f"{label}: first error: {first_error}")
    # Throughput over the measured time only: signing is excluded as it is from latency.
    return summarize(label, lat, measured, errors)


def run_concurrent(host, creds, n, threads, family_prefix):
    per_thread = [n // threads + (1 if t < n % threads else 0) for t in range(threads)]
    batches = []
    for t, count in enumerate(per_thread):
        fam = f"{family_prefix}-t{t}"  # one family per thread: revisions of one family serialize
        batches.append([(fam, *bc.sign(creds, host, "RegisterTaskDefinition", bc.task_definition(fam, i)))
                        for i in range(count)])
    conns = [connect(host) for _ in range(threads)]
    start = threading.Barrier(threads + 1)
    results = [None] * threads
    deadline = time.monotonic() + MODE_DEADLINE_S

    def worker(t):
        lat, errors, first = [], 0, None
        start.wait()
        for fam, headers, body in batches[t]:
            if time.monotonic() > deadline:
                break
            try:
                dt, err = one_call(conns[t], headers, body, fam)
            except OSError as e:  # timeout or reset: count it, stop this thread
                errors, first = errors + 1, first or repr(e)
                break
            if err:
                errors, first = errors + 1, first or err
            else:
                lat.append(dt)
        results[t] = (lat, errors, first)

    ts = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(threads)]
    for th in ts:
        th.start()
    start.wait()
    t0 = time.perf_counter()
    for th in ts:
        th.join(timeout=MODE_DEADLINE_S + CALL_TIMEOUT_S)
    wall = time.perf_counter() - t0
    for c in conns:
        c.close()
    lat = [x for r in results if r for x in r[0]]
    errors = sum(r[1] for r in results if r)
    firsts = [r[2] for r in results if r and r[2]]
    if firsts:
        print(f"concurrent: first error: {firsts[0]}")
    if any(th.is_alive() for th in ts):
        print("concurrent: a thread did not finish in time")
    return summarize(f"concurrent x{threads}", lat, wall, errors)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--calls", type=int, default=2000, help="calls per mode (default 2000)")
    p.add_argument("--threads", type=int, default=4,
                   help="also run the concurrent mode with this many threads (default 4; 1 = skip)")
    p.add_argument("--berth", default=os.environ.get("BERTH_BIN", "build/apps/berth/berth"),
                   help="server binary to start (default $BERTH_BIN or build/apps/berth/berth)")
    p.add_argument("--server-threads", type=int, default=2)
    p.add_argument("--endpoint", help="use a running server at 127.0.0.1:PORT instead of starting one")
    p.add_argument("--credentials", help="its credentials file (with --endpoint)")
    p.add_argument("--json", help="also write the result rows to this file")
    args = p.parse_args()
    if not 1 <= args.calls <= 100_000:
        p.error("--calls must be 1..100000")
    if not 1 <= args.threads <= 64:
        p.error("--threads must be 1..64")

    server = tmp = None
    try:
        if args.endpoint:
            host = args.endpoint.removeprefix("http://").rstrip("/")
            if not host.startswith("127.0.0.1:"):
                p.error("--endpoint must be 127.0.0.1:PORT")
            if not args.credentials:
                p.error("--endpoint needs --credentials")
            cred_path = args.credentials
        else:
            root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            binary = args.berth if os.path.isabs(args.berth) else os.path.join(root, args.berth)
            tmp = tempfile.mkdtemp(prefix="berth-register-bench.")
            private = os.path.join(tmp, "berth")
            shutil.copy2(binary, private)  # a rebuild during the run cannot swap it
            server = bc.Server(private, os.path.join(tmp, "data"), threads=args.server_threads)
            host, cred_path = server.host, server.credentials_path
        creds = bc.load_credentials(cred_path)
        print(f"RegisterTaskDefinition latency: server {host}, {args.calls} calls per mode, "
              f"body {len(json.dumps(bc.task_definition('bench-register')))} bytes, "
              f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
        # Warm-up: connection, page cache, the first WAL checkpoint; not measured.
        run_sequential(host, creds, min(50, args.calls), "bench-warmup", label="warm-up")
        rows = [run_sequential(host, creds, args.calls, "bench-register")]
        if args.threads > 1:
            rows.append(run_concurrent(host, creds, args.calls, args.threads, "bench-register-conc"))
        seq = rows[0]
        verdict = "ok" if seq["p99_ms"] <= TARGET_P99_MS and seq["errors"] == 0 else "MISS"
        print(f"target: sequential p99 <= {TARGET_P99_MS:.0f} ms: {verdict}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
        return 0 if all(r["errors"] == 0 for r in rows) else 2
    finally:
        if server:
            rc = server.stop()
            if rc not in (0, None):
                print(f"server exited with {rc} on SIGTERM")
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
