#!/usr/bin/python3
"""Helper for bench/http_bench.sh: seed a server, write signed wrk scripts, print the result table.

  setup  --host H --credentials F               create the cluster and task definition read below
  sign   --host H --credentials F --out-dir D   write D/{health,describe_clusters,describe_task_definition}.lua
                                                with fresh signatures, after checking each request once
  report --results FILE [--duration S]          print the table of FILE (JSON lines from the runs)

SigV4 signatures are valid for 5 minutes, so http_bench.sh calls `sign` again before every wrk run.
"""

import argparse
import json
import socket
import sys
import time

import boto3

import bench_common as bc

CLUSTER = "bench"
FAMILY = "bench-web"
# Reads the benchmark issues, as the AWS CLI would send them.
READS = {
    "describe_clusters": ("DescribeClusters", {"clusters": [CLUSTER]}),
    "describe_task_definition": ("DescribeTaskDefinition", {"taskDefinition": FAMILY}),
}
TARGET_MIN_RPS = 60_000       # reads on 2 cores
TARGET_MIN_RATIO = 0.40       # reads vs the same server's GET /health in the same run
# A run during which other processes (someone's compile) used more than a quarter of a core is
# flagged; http_bench.sh repeats it a bounded number of times and the report keeps the last try.
NOISY_OTHER_CORES = 0.25

# wrk calls done() once at the end of a run; printing one JSON line from it avoids parsing wrk's
# human output and avoids a per-response Lua hook (which makes wrk parse every body and slows it).
DONE_HOOK = r'''
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"duration_us":%d,"requests":%d,"bytes":%d,"connect_errors":%d,' ..
    '"read_errors":%d,"write_errors":%d,"non2xx":%d,"timeouts":%d,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.duration, summary.requests, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.mean, latency.max))
end
'''


def ecs_client(host, credentials):
    creds = bc.load_credentials(credentials)
    return boto3.session.Session().client(
        "ecs", region_name=bc.REGION, endpoint_url=f"http://{host}",
        aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key)


def cmd_setup(args):
    ecs = ecs_client(args.host, args.credentials)
    # A few neighbours so the reads do not hit a store holding only the rows they ask for.
    for i in range(20):
        ecs.create_cluster(clusterName=f"other-{i}")
    ecs.create_cluster(clusterName=CLUSTER,
                       tags=[{"key": "env", "value": "bench"}],
                       settings=[{"name": "containerInsights", "value": "disabled"}])
    # The read asks for the family, i.e. its latest ACTIVE revision: how many revisions the family
    # has is a knob (a service deployed from CI registers one per deploy).
    for i in range(args.revisions):
        td = ecs.register_task_definition(**bc.task_definition(FAMILY, i))["taskDefinition"]
    for i in range(10):
        ecs.register_task_definition(**bc.task_definition(f"other-family-{i}", i))
    print(f"seeded cluster {CLUSTER} and {td['taskDefinitionArn']}")


def lua_string(s):
    out = s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{out}"'


def raw_exchange(host, request_bytes, timeout=5.0):
    """Sends one request on a fresh connection; returns (status, total response bytes, body)."""
    addr, port = host.rsplit(":", 1)
    with socket.create_connection((addr, int(port)), timeout=timeout) as s:
        s.sendall(request_bytes)
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        while len(body) < length and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, len(head) + 4 + len(body), body


def wire_request(method, path, headers, body):
    """The bytes wrk sends for a script's request (wrk adds Content-Length for a body)."""
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def check_read(name, body):
    doc = json.loads(body)
    if name == "describe_clusters":
        ok = doc.get("clusters") and doc["clusters"][0].get("clusterName") == CLUSTER
    else:
        ok = doc.get("taskDefinition", {}).get("family") == FAMILY
    if not ok:
        raise SystemExit(f"{name}: unexpected response {body[:300]!r}")


def cmd_sign(args):
    creds = bc.load_credentials(args.credentials)
    expected = {}
    status, size, body = raw_exchange(args.host, wire_request("GET", "/health", {"Host": args.host}, b""))
    if status != 200 or body != b"ok\n":
        raise SystemExit(f"GET /health answered {status} {body!r}")
    expected["health"] = size
    with open(f"{args.out_dir}/health.lua", "w") as f:
        f.write(f'wrk.headers["Host"] = {lua_string(args.host)}\n{DONE_HOOK}')
    for name, (action, payload) in READS.items():
        headers, body = bc.sign(creds, args.host, action, payload)
        status, size, resp = raw_exchange(args.host, wire_request("POST", "/", headers, body))
        if status != 200:
            raise SystemExit(f"{action} answered {status}: {resp[:300]!r}")
        check_read(name, resp)
        expected[name] = size
        with open(f"{args.out_dir}/{name}.lua", "w") as f:
            f.write('wrk.method = "POST"\n')
            f.write(f"wrk.body = {lua_string(body.decode())}\n")
            for k, v in headers.items():
                f.write(f"wrk.headers[{lua_string(k)}] = {lua_string(v)}\n")
            f.write(DONE_HOOK)
    with open(f"{args.out_dir}/expected_sizes.json", "w") as f:
        json.dump(expected, f)


def cmd_report(args):
    latest = {}
    for line in open(args.results):
        if line.strip():
            r = json.loads(line)
            latest[(r["mode"], r["conns"], r["endpoint"])] = r  # the last try of each run wins
    rows = list(latest.values())
    if not rows:
        print("no results")
        return 1
    ceilings = {(r["mode"], r["conns"]): r["rps"] for r in rows if r["endpoint"] == "health"}
    # Server CPU per request of the ceiling vs the read: a ratio that other processes' load barely
    # moves (req/s ratios do move when a compile lands on one run and not the other).
    ceiling_cpu = {(r["mode"], r["conns"]): r["server_cpu_us_per_req"]
                   for r in rows if r["endpoint"] == "health"}
    hdr = (f"{'mode':<8} {'endpoint':<26} {'conns':>5} {'req/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
           f"{'B/resp':>7} {'bad':>5} {'srv us/req':>10} {'cores s/w/other':>15} {'vs ceiling':>10} {'cpu ratio':>9}  target")
    print(hdr)
    print("-" * len(hdr))
    failed = False
    for r in rows:
        ceiling = ceilings.get((r["mode"], r["conns"]))
        bad = r["non2xx"] + r["read_errors"] + r["write_errors"] + r["connect_errors"] + r["timeouts"]
        bad += r.get("size_mismatch", 0)
        cc = ceiling_cpu.get((r["mode"], r["conns"]))
        cpu_ratio = f"{cc / r['server_cpu_us_per_req'] * 100:.0f}%" if cc else "-"
        if r["endpoint"] == "health":
            ratio, verdict, cpu_ratio = "ceiling", "", ""
        else:
            rr = r["rps"] / ceiling if ceiling else float("nan")
            ratio = f"{rr * 100:.0f}%"
            meets = rr >= TARGET_MIN_RATIO and r["rps"] >= TARGET_MIN_RPS and bad == 0
            verdict = "ok" if meets else "MISS"
        if bad:
            failed = True
        print(f"{r['mode']:<8} {r['endpoint']:<26} {r['conns']:>5} {r['rps']:>9,.0f} "
              f"{r['p50_us'] / 1000:>7.2f} {r['p99_us'] / 1000:>7.2f} {r['bytes_per_resp']:>7.0f} "
              f"{bad:>5} {r['server_cpu_us_per_req']:>10.1f} "
              f"{r['server_cores']:>4.2f}/{r['wrk_cores']:.2f}/{r['other_cores']:.2f}{'!' if r.get('noisy') else ' '}"
              f"{ratio:>10} {cpu_ratio:>9}  {verdict}")
    print()
    print(f"targets for reads: >= {TARGET_MIN_RATIO:.0%} of the ceiling at the same connection count, "
          f">= {TARGET_MIN_RPS:,} req/s, no bad responses ('bad' = non-2xx/3xx + socket errors + "
          f"responses whose size differs from the checked one)")
    print("cpu ratio = ceiling's srv us/req / the read's: the server-side cost ratio, robust to noise")
    print("srv us/req = server CPU time per request; cores s/w/other = cores used by the server, wrk,"
          " and anything else on the machine during the run ('!' = other > "
          f"{NOISY_OTHER_CORES} cores even after retries: treat that row with suspicion)")
    if failed:
        print("WARNING: some runs had bad responses: their req/s do not measure successful reads")
    return 2 if failed else 0


def cmd_record(args):
    """Turns a wrk run's BENCHJSON line into a result row (stdin: wrk output)."""
    text = sys.stdin.read()
    line = next((l for l in text.splitlines() if l.startswith("BENCHJSON ")), None)
    if line is None:
        sys.stderr.write(text)
        raise SystemExit("wrk printed no BENCHJSON line")
    r = json.loads(line[len("BENCHJSON "):])
    r.update(mode=args.mode, endpoint=args.endpoint, conns=args.conns)
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["bytes_per_resp"] = r["bytes"] / max(1, r["requests"])
    expected = json.load(open(args.expected))[args.endpoint]
    # Every good response has the checked size (Date and request id have fixed widths); allow a
    # byte of drift per response on average before calling the run suspicious.
    r["expected_bytes"] = expected
    # --cpu "BUSY0 TOTAL0 BUSY1 TOTAL1 SRV0 SRV1 WRK_USER_S WRK_SYS_S NCPU CLK_TCK" (ticks summed over CPUs)
    b0, t0, b1, t1, s0, s1, wu, ws, ncpu, hz = (float(x) for x in args.cpu.split())
    per_core = (t1 - t0) / ncpu  # ticks one core had during the run
    server, wrk = s1 - s0, (wu + ws) * hz
    r["server_cores"] = server / per_core
    r["wrk_cores"] = wrk / per_core
    r["other_cores"] = max(0.0, (b1 - b0) - server - wrk) / per_core
    r["server_cpu_us_per_req"] = server / hz * 1e6 / max(1, r["requests"])
    r["size_mismatch"] = 0 if abs(r["bytes_per_resp"] - expected) <= 1 else r["requests"]
    r["noisy"] = r["other_cores"] > NOISY_OTHER_CORES
    with open(args.results, "a") as f:
        f.write(json.dumps(r) + "\n")
    return 3 if r["noisy"] else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("setup", "sign"):
        s = sub.add_parser(name)
        s.add_argument("--host", required=True, help="127.0.0.1:PORT, exactly as wrk sends it")
        s.add_argument("--credentials", required=True)
        if name == "setup":
            s.add_argument("--revisions", type=int, default=5, help="revisions of the read family")
        if name == "sign":
            s.add_argument("--out-dir", required=True)
    s = sub.add_parser("record")
    for a in ("--mode", "--endpoint", "--results", "--expected"):
        s.add_argument(a, required=True)
    s.add_argument("--conns", type=int, required=True)
    s.add_argument("--cpu", required=True, help="CPU tick counters around the run (see http_bench.sh)")
    s = sub.add_parser("report")
    s.add_argument("--results", required=True)
    args = p.parse_args()
    return {"setup": cmd_setup, "sign": cmd_sign, "record": cmd_record, "report": cmd_report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main() or 0)
