#!/usr/bin/python3
"""Placement throughput: concurrent RunTask (count 10) against 1,000 container instances.

What it does (every loop bounded in time and count, all traffic to 127.0.0.1):
  1. copies the berth binary to a temp dir and starts `berth server` there (temp data dir);
  2. creates cluster `bench`, registers a task definition and --instances container instances
     through the API (4 size classes, 3 AZs, a custom `tier` attribute, the capabilities the task
     definition requires);
  3. baseline: the same number of clients issue PutAttributes (one durable write of one instance
     record; each client writes its own instance) for --baseline-seconds;
  4. RunTask: clients issue RunTask count=10 with placementStrategy spread(AZ) then binpack(memory)
     and memberOf(attribute:tier in [web, general]) for --seconds (or --max-calls);
  5. checks the cluster afterwards: the instances' pendingTasksCount add up to the tasks placed and
     no instance has negative remaining resources;
  6. prints calls/s, placements/s (tasks placed per second), p50/p99 latency, and where the CPU went
     (server, clients, everything else), then stops the server with SIGTERM and deletes the temp dir.

Clients are separate processes (Python's GIL would otherwise serialize them), each with ONE
keep-alive http.client connection, closed loop (send, read the whole answer, send the next). Every
request is SigV4-signed (bench_common.sign, what the AWS CLI signs) with its own signature; each
client signs its whole batch before the start, so signing is not in the measured window or the
client CPU figure. Answers are checked cheaply: HTTP 200, and tasks counted by their
"containerInstanceArn" member (one per task in a RunTask answer); the first answer of each client
is parsed in full to confirm that count.

  /usr/bin/python3 bench/run_task_bench.py                       # 16 clients, 10 s, 1,000 instances
  /usr/bin/python3 bench/run_task_bench.py --clients 4,16,32 --seconds 5
  BERTH_BIN=/path/to/berth /usr/bin/python3 bench/run_task_bench.py --instances 200

Every acknowledged write is durable (SQLite WAL, synchronous=FULL), so the figures depend on the
disk's fsync latency: compare RunTask with the baseline of the same run, not across runs.
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = "bench"
FAMILY = "bench-run"
TARGET_PLACEMENTS_PER_S = 10_000
CALL_TIMEOUT_S = 30.0          # one call slower than this has failed the benchmark anyway
SETUP_DEADLINE_S = 300.0       # registering the fleet; signatures stay valid 5 minutes
PHASE_GRACE_S = 60.0           # a phase's processes get this long after their deadline to report
CLK_TCK = os.sysconf("SC_CLK_TCK")

AZS = ["us-east-1a", "us-east-1b", "us-east-1c"]
# (instance type, CPU units, MiB): memory binds first for the task below (128 CPU / 256 MiB).
SIZES = [("m5.xlarge", 16384, 16384), ("m5.2xlarge", 32768, 32768),
         ("m5.4xlarge", 65536, 65536), ("m5.8xlarge", 131072, 131072)]
TIERS = ["web", "general", "batch"]
PLACEMENT = {
    "placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"},
                          {"type": "binpack", "field": "memory"}],
    "placementConstraints": [{"type": "memberOf",
                              "expression": "attribute:tier in [web, general]"}],
}


def task_definition():
    """bench_common's realistic task definition (two containers, health check, log driver, IAM
    role, a memberOf on ecs.os-type), sized down so that 1,000 instances hold ~150k tasks."""
    td = bc.task_definition(FAMILY)
    td["cpu"], td["memory"] = "128", "256"
    web, log = td["containerDefinitions"]
    web.update(cpu=96, memory=192, memoryReservation=128)
    log.update(cpu=32, memory=64)
    return td


def instance_attributes(td_required, tier):
    attrs = [{"name": a["name"]} for a in td_required]
    attrs += [{"name": "ecs.os-type", "value": "linux"}, {"name": "tier", "value": tier}]
    return attrs


class Conn:
    """One keep-alive connection that signs and sends ECS calls."""

    def __init__(self, host, creds):
        self.host, self.creds = host, creds
        self.conn = http.client.HTTPConnection(*host.split(":"), timeout=CALL_TIMEOUT_S)

    retried = 0  # 5xx answers retried, over all connections (setup only)

    def call(self, action, payload, retries=0):
        """One call; a 5xx answer is retried up to `retries` times, as the AWS CLI would."""
        for attempt in range(retries + 1):
            headers, body = bc.sign(self.creds, self.host, action, payload)
            self.conn.request("POST", "/", body=body, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
            if resp.status < 500 or attempt == retries:
                break
            Conn.retried += 1
            time.sleep(0.05 * (attempt + 1))
        if resp.status != 200:
            raise RuntimeError(f"{action} -> {resp.status}: {data[:300]!r}")
        return json.loads(data) if data else {}

    def close(self):
        self.conn.close()


def setup(host, creds, n_instances):
    c = Conn(host, creds)
    c.call("CreateCluster", {"clusterName": CLUSTER})
    td = c.call("RegisterTaskDefinition", task_definition())["taskDefinition"]
    required = td.get("requiresAttributes", [])
    c.close()
    arns = [None] * n_instances
    errors = []
    deadline = time.monotonic() + SETUP_DEADLINE_S

    def register(first):
        conn = Conn(host, creds)
        try:
            for i in range(first, n_instances, 4):
                if time.monotonic() > deadline:
                    raise RuntimeError("fleet registration took too long")
                itype, cpu, mem = SIZES[i % len(SIZES)]
                ec2 = "i-%017x" % (0x100000 + i)
                doc = {"instanceId": ec2, "availabilityZone": AZS[i % 3], "region": bc.REGION,
                       "instanceType": itype, "imageId": "ami-0bench", "accountId": "123456789012",
                       "privateIp": f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}"}
                out = conn.call("RegisterContainerInstance", {
                    "cluster": CLUSTER, "instanceIdentityDocument": json.dumps(doc),
                    "totalResources": [
                        {"name": "CPU", "type": "INTEGER", "integerValue": cpu},
                        {"name": "MEMORY", "type": "INTEGER", "integerValue": mem},
                        {"name": "PORTS", "type": "STRINGSET",
                         "stringSetValue": ["22", "2375", "2376", "51678", "51679"]},
                        {"name": "PORTS_UDP", "type": "STRINGSET", "stringSetValue": []}],
                    "versionInfo": {"agentVersion": "1.70.2", "agentHash": "a1b2c3d4",
                                    "dockerVersion": "DockerVersion: 20.10.23"},
                    "attributes": instance_attributes(required, TIERS[(i // 3) % 3])},
                    retries=5)  # concurrent registrations into one cluster can answer 500
                arns[i] = out["containerInstance"]["containerInstanceArn"]
        except Exception as e:  # noqa: BLE001 - reported by the caller
            errors.append(repr(e))
        finally:
            conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=register, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SETUP_DEADLINE_S + 10)
    if errors or None in arns:
        raise SystemExit(f"setup failed: {errors[:3]}")
    print(f"setup: cluster {CLUSTER}, {td['taskDefinitionArn']} "
          f"(requires {len(required)} attributes), {n_instances} instances in "
          f"{time.monotonic() - t0:.1f} s ({Conn.retried} ServerException answers retried)")
    return arns, td


# ---- one measured phase

def run_task_request(client, seq, _arns):
    return "RunTask", {"cluster": CLUSTER, "taskDefinition": FAMILY, "count": 10,
                       "startedBy": f"bench-{client}-{seq}", **PLACEMENT}


def put_attributes_request(client, seq, arns):
    return "PutAttributes", {"cluster": CLUSTER, "attributes": [
        {"name": "bench-seq", "value": str(seq), "targetId": arns[client % len(arns)]}]}


REQUESTS = {"RunTask": run_task_request, "PutAttributes": put_attributes_request}


def worker(kind, client, n_calls, host, cred_path, arns, ready, start_at, out_q):
    """One client process: sign n_calls requests, wait for the start, send them closed-loop."""
    try:
        creds = bc.load_credentials(cred_path)
        batch = [bc.sign(creds, host, *REQUESTS[kind](client, i, arns)) for i in range(n_calls)]
        conn = http.client.HTTPConnection(*host.split(":"), timeout=CALL_TIMEOUT_S)
        conn.connect()
        ready.wait()  # all clients signed and connected
        while start_at.value == 0.0:
            time.sleep(0.001)
        deadline = start_at.value
        lat, placed, failures, errors, short, first_error = [], 0, 0, 0, 0, None
        cpu0 = os.times()
        for i, (headers, body) in enumerate(batch):
            if time.monotonic() >= deadline:
                break
            t0 = time.perf_counter()
            conn.request("POST", "/", body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            lat.append(time.perf_counter() - t0)
            if resp.status != 200:
                errors += 1
                first_error = first_error or f"{resp.status} {data[:200]!r}"
                continue
            if kind == "RunTask":
                n = data.count(b'"containerInstanceArn"')
                if i == 0:  # confirm the cheap count once per client
                    parsed = json.loads(data)
                    assert n == len(parsed["tasks"]), (n, len(parsed["tasks"]))
                placed += n
                short += n < 10
                failures += data.count(b'"reason"')
        cpu1 = os.times()
        conn.close()
        out_q.put({"lat": lat, "placed": placed, "failures": failures, "errors": errors,
                   "short": short,
                   "first_error": first_error,
                   "cpu_s": (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)})
    except Exception as e:  # noqa: BLE001 - reported by the parent
        out_q.put({"exception": repr(e)})


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def machine_cpu_s():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    return (sum(v[:8]) - idle) / CLK_TCK


def run_phase(kind, clients, seconds, max_calls, host, cred_path, arns, server_pid):
    ctx = mp.get_context("fork")
    ready = ctx.Barrier(clients + 1)
    start_at = ctx.Value("d", 0.0)
    out_q = ctx.Queue()
    per_client = max(1, max_calls // clients)
    procs = [ctx.Process(target=worker, args=(kind, c, per_client, host, cred_path, arns, ready,
                                              start_at, out_q), daemon=True)
             for c in range(clients)]
    for p in procs:
        p.start()
    ready.wait(timeout=SETUP_DEADLINE_S)
    srv0, all0 = proc_cpu_s(server_pid), machine_cpu_s()
    t0 = time.monotonic()
    start_at.value = t0 + seconds  # the deadline; non-zero releases the clients
    results = []
    for _ in procs:
        results.append(out_q.get(timeout=seconds + CALL_TIMEOUT_S + PHASE_GRACE_S))
    wall = time.monotonic() - t0
    srv1, all1 = proc_cpu_s(server_pid), machine_cpu_s()
    for p in procs:
        p.join(timeout=10)
    bad = [r["exception"] for r in results if "exception" in r]
    if bad:
        raise SystemExit(f"{kind}: client failed: {bad[0]}")
    lat = sorted(x * 1000 for r in results for x in r["lat"])
    calls = len(lat)
    placed = sum(r["placed"] for r in results)
    client_cpu = sum(r["cpu_s"] for r in results)
    server_cpu = srv1 - srv0
    return {
        "phase": kind, "clients": clients, "calls": calls, "wall_s": wall,
        "errors": sum(r["errors"] for r in results),
        "first_error": next((r["first_error"] for r in results if r["first_error"]), None),
        "calls_per_s": calls / wall, "placed": placed, "placements_per_s": placed / wall,
        "failure_entries": sum(r["failures"] for r in results),
        "short_calls": sum(r["short"] for r in results),
        "p50_ms": bc.percentile(lat, 50), "p99_ms": bc.percentile(lat, 99),
        "max_ms": lat[-1] if lat else float("nan"),
        "server_cores": server_cpu / wall, "client_cores": client_cpu / wall,
        "other_cores": max(0.0, (all1 - all0 - server_cpu - client_cpu) / wall),
        "server_us_per_call": server_cpu / calls * 1e6 if calls else float("nan"),
        "exhausted_calls": per_client * clients <= calls,
    }


def print_row(r):
    placements = f"{r['placements_per_s']:>10,.0f}" if r["phase"] == "RunTask" else f"{'-':>10}"
    print(f"{r['phase']:<14}{r['clients']:>5}{r['calls']:>8}{r['errors']:>5}"
          f"{r['calls_per_s']:>10,.0f}{placements}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}"
          f"{r['max_ms']:>9.1f}{r['server_us_per_call']:>10.0f}"
          f"   {r['server_cores']:.2f}/{r['client_cores']:.2f}/{r['other_cores']:.2f}"
          + ("   (ran out of pre-signed calls: raise --max-calls)" if r["exhausted_calls"] else ""))
    if r["short_calls"]:
        print(f"    {r['short_calls']:,} calls placed fewer than 10 tasks (fleet full?): "
              f"{r['failure_entries']:,} failure entries")
    if r["first_error"]:
        print(f"    first error: {r['first_error']}")


HEADER = (f"{'phase':<14}{'cli':>5}{'calls':>8}{'err':>5}{'calls/s':>10}{'placed/s':>10}"
          f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'srv us':>10}   cores srv/cli/other")


def check_cluster(host, creds, arns, placed_total):
    """The instances' books must add up to what RunTask answered."""
    c = Conn(host, creds)
    pending, negative = 0, 0
    for i in range(0, len(arns), 100):
        out = c.call("DescribeContainerInstances", {"cluster": CLUSTER,
                                                    "containerInstances": arns[i:i + 100]})
        for ci in out["containerInstances"]:
            pending += ci["pendingTasksCount"] + ci["runningTasksCount"]
            for r in ci["remainingResources"]:
                if r["type"] == "INTEGER" and r["integerValue"] < 0:
                    negative += 1
    c.close()
    ok = pending == placed_total and negative == 0
    print(f"check: instances hold {pending:,} tasks, RunTask answered {placed_total:,} placed; "
          f"negative remaining resources: {negative} -> {'ok' if ok else 'MISMATCH'}")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--berth", default=os.environ.get(
        "BERTH_BIN", os.path.join(REPO, "build", "apps", "berth", "berth")))
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--clients", default="16", help="comma-separated client counts")
    ap.add_argument("--seconds", type=float, default=10.0, help="RunTask phase length")
    ap.add_argument("--baseline-seconds", type=float, default=5.0)
    ap.add_argument("--max-calls", type=int, default=40_000,
                    help="pre-signed calls per phase (split over the clients)")
    ap.add_argument("--server-threads", type=int, default=2)
    ap.add_argument("--json", help="also write the rows here as JSON")
    args = ap.parse_args()
    clients_list = [int(x) for x in args.clients.split(",")]
    if not os.access(args.berth, os.X_OK):
        raise SystemExit(f"no berth binary at {args.berth} (build it or set BERTH_BIN)")

    tmp = tempfile.mkdtemp(prefix="berth-run-task-bench-")
    binary = os.path.join(tmp, "berth")
    shutil.copy2(args.berth, binary)  # a rebuild during the run cannot swap it
    server = bc.Server(binary, os.path.join(tmp, "data"), threads=args.server_threads)
    rows, ok = [], True
    try:
        creds = bc.load_credentials(server.credentials_path)
        print(f"berth server {server.host} (pid {server.proc.pid}, --threads "
              f"{args.server_threads}); {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}")
        arns, _ = setup(server.host, creds, args.instances)
        print(HEADER)
        placed_total = 0
        for clients in clients_list:
            for kind, seconds in (("PutAttributes", args.baseline_seconds),
                                  ("RunTask", args.seconds)):
                r = run_phase(kind, clients, seconds, args.max_calls, server.host,
                              server.credentials_path, arns, server.proc.pid)
                rows.append(r)
                print_row(r)
                if kind == "RunTask":
                    placed_total += r["placed"]
        ok = check_cluster(server.host, creds, arns, placed_total)
        best = max((r for r in rows if r["phase"] == "RunTask"),
                   key=lambda r: r["placements_per_s"])
        verdict = "met" if best["placements_per_s"] >= TARGET_PLACEMENTS_PER_S else "MISSED"
        base = next(r for r in rows if r["phase"] == "PutAttributes"
                    and r["clients"] == best["clients"])
        print(f"best: {best['placements_per_s']:,.0f} placements/s ({best['calls_per_s']:,.0f} "
              f"RunTask/s x 10) at {best['clients']} clients; baseline PutAttributes "
              f"{base['calls_per_s']:,.0f} writes/s at the same concurrency; target "
              f"{TARGET_PLACEMENTS_PER_S:,}/s {verdict}")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
    finally:
        rc = server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    if rc != 0:
        print(f"server exited {rc} on SIGTERM")
    return 0 if ok and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
