#!/usr/bin/python3
"""Service throughput against 1,000 simulated container instances (`berth sim-agents`).

What it does (every wait bounded, all traffic to 127.0.0.1):
  1. copies the berth binary to a temp dir and starts `berth server` there (temp data dir);
  2. creates cluster `bench` and starts `berth sim-agents --count N` (default 1,000 instances of
     4 vCPU / 16 GiB in 3 AZs, 200 ms mean start latency), waiting for its "connected" line;
  3. scale: creates service `scale` (task definition 128 CPU / 256 MiB, one dynamic host port;
     placementStrategy spread(AZ) then binpack(memory)) with desiredCount 0, then UpdateService to
     --tasks (default 5,000) and times until runningCount == desiredCount with one deployment;
  4. roll: creates service `roll` with --roll-tasks (default 1,000), waits for it to be stable,
     then UpdateService to revision 2 (default maximumPercent 200 / minimumHealthyPercent 100) and
     times until the new deployment is COMPLETED and the old one gone;
  5. prints tasks/minute for both, the deployment time, and the CPU seconds the server and the
     simulator used in each phase (from /proc), then stops both and deletes the temp dir.

  /usr/bin/python3 bench/services_bench.py
  /usr/bin/python3 bench/services_bench.py --instances 200 --tasks 1000 --roll-tasks 200
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import boto3
from botocore.config import Config

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_common as bc  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLUSTER = "bench"
TARGET_TASKS_PER_MIN = 50_000
CLK_TCK = os.sysconf("SC_CLK_TCK")
POLL_S = 0.5


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    except OSError:
        return 0.0


def threads_cpu(pid):
    """CPU seconds per thread name (comm), to say which part of the server is busy."""
    out = {}
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            out[f"{name}/{tid}"] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    except OSError:
        pass
    return out


def task_definition(ecs, family, image):
    return ecs.register_task_definition(
        family=family, networkMode="bridge",
        containerDefinitions=[{
            "name": "web", "image": image, "cpu": 128, "memory": 256, "essential": True,
            "portMappings": [{"containerPort": 8080, "hostPort": 0}]}],
    )["taskDefinition"]["taskDefinitionArn"]


def describe(ecs, name):
    return ecs.describe_services(cluster=CLUSTER, services=[name])["services"][0]


def wait(ecs, name, done, timeout, label):
    """Polls until done(service) or timeout; prints progress every 5 s. Returns seconds or None."""
    t0 = time.monotonic()
    last = t0
    while True:
        svc = describe(ecs, name)
        now = time.monotonic()
        if done(svc):
            return now - t0
        if now - t0 > timeout:
            print(f"  {label}: TIMEOUT after {timeout:.0f} s: running {svc['runningCount']} "
                  f"pending {svc['pendingCount']} deployments "
                  f"{[(d['status'], d['runningCount'], d['rolloutState']) for d in svc['deployments']]}")
            return None
        if now - last >= 5:
            last = now
            print(f"  {label}: {now - t0:5.1f} s running {svc['runningCount']} pending "
                  f"{svc['pendingCount']} deployments {len(svc['deployments'])}", flush=True)
        time.sleep(POLL_S)


class Phase:
    """CPU seconds of the server (by thread) and of the simulator over one phase."""

    def __init__(self, server_pid, sim_pid):
        self.pids = (server_pid, sim_pid)
        self.before = (cpu_seconds(server_pid), cpu_seconds(sim_pid), threads_cpu(server_pid))

    def report(self, seconds):
        s, m, th = cpu_seconds(self.pids[0]), cpu_seconds(self.pids[1]), threads_cpu(self.pids[0])
        busy = sorted(((v - self.before[2].get(k, 0.0), k) for k, v in th.items()), reverse=True)
        top = ", ".join(f"{k.split('/')[0]} {v:.1f}s" for v, k in busy[:4] if v > 0.05)
        print(f"  cpu: server {s - self.before[0]:.1f} s ({(s - self.before[0]) / seconds:.0%} of "
              f"a core; busiest threads: {top}), simulator {m - self.before[1]:.1f} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--tasks", type=int, default=5000)
    ap.add_argument("--roll-tasks", type=int, default=1000)
    ap.add_argument("--start-latency-ms", type=int, default=200)
    ap.add_argument("--server-threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=300.0, help="per phase, seconds")
    args = ap.parse_args()

    binary = os.environ.get("BERTH_BIN", os.path.join(REPO, "build", "apps", "berth", "berth"))
    tmp = tempfile.mkdtemp(prefix="berth-svc-bench-")
    sim = server = None
    try:
        shutil.copy2(binary, os.path.join(tmp, "berth"))
        binary = os.path.join(tmp, "berth")
        server = bc.Server(binary, os.path.join(tmp, "data"), threads=args.server_threads)
        endpoint = "http://" + server.host
        creds = bc.load_credentials(server.credentials_path)
        ecs = boto3.client(
            "ecs", endpoint_url=endpoint, region_name=bc.REGION,
            aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
            config=Config(retries={"max_attempts": 2}, read_timeout=60))
        ecs.create_cluster(clusterName=CLUSTER)

        t0 = time.monotonic()
        sim_log = open(os.path.join(tmp, "sim.err"), "w")
        sim = subprocess.Popen(
            [binary, "sim-agents", "--server", endpoint, "--cluster", CLUSTER,
             "--credentials", server.credentials_path, "--count", str(args.instances),
             "--start-latency-ms", str(args.start_latency_ms), "--seed", "1"],
            stdout=subprocess.PIPE, stderr=sim_log, stdin=subprocess.DEVNULL, text=True)
        line = []
        reader = threading.Thread(target=lambda: line.append(sim.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout=args.timeout)
        if not line or "connected" not in line[0]:
            raise SystemExit("sim-agents did not connect: " + open(sim_log.name).read()[-2000:])
        threading.Thread(target=lambda: [None for _ in sim.stdout], daemon=True).start()
        print(f"{args.instances} simulated instances registered and connected in "
              f"{time.monotonic() - t0:.1f} s")

        v1 = task_definition(ecs, "bench-svc", "web:1")
        v2 = task_definition(ecs, "bench-svc", "web:2")
        strategy = [{"type": "spread", "field": "attribute:ecs.availability-zone"},
                    {"type": "binpack", "field": "memory"}]

        # Scale 0 -> N.
        ecs.create_service(cluster=CLUSTER, serviceName="scale", taskDefinition=v1, desiredCount=0,
                           placementStrategy=strategy)
        n = args.tasks
        print(f"scale 0 -> {n}:")
        phase = Phase(server.proc.pid, sim.pid)
        ecs.update_service(cluster=CLUSTER, service="scale", desiredCount=n)
        took = wait(ecs, "scale", lambda s: s["runningCount"] == n and len(s["deployments"]) == 1,
                    args.timeout, "scale")
        scale_rate = n / took * 60 if took else None
        if took:
            print(f"  {n} tasks RUNNING in {took:.1f} s: {scale_rate:,.0f} tasks/minute "
                  f"(target {TARGET_TASKS_PER_MIN:,})")
        phase.report(took or args.timeout)

        # Roll M tasks to a new revision.
        m = args.roll_tasks
        print(f"roll {m} tasks to a new revision (maximumPercent 200, minimumHealthyPercent 100):")
        ecs.create_service(cluster=CLUSTER, serviceName="roll", taskDefinition=v1, desiredCount=m,
                           placementStrategy=strategy)
        ready = wait(ecs, "roll", lambda s: s["runningCount"] == m and len(s["deployments"]) == 1,
                     args.timeout, "roll setup")
        roll_took = None
        if ready is not None:
            phase = Phase(server.proc.pid, sim.pid)
            ecs.update_service(cluster=CLUSTER, service="roll", taskDefinition=v2)

            def rolled(s):
                d = s["deployments"]
                return (len(d) == 1 and d[0]["taskDefinition"] == v2
                        and d[0]["rolloutState"] == "COMPLETED" and s["runningCount"] == m)

            roll_took = wait(ecs, "roll", rolled, args.timeout, "roll")
            if roll_took:
                print(f"  deployment COMPLETED in {roll_took:.1f} s: {m} tasks replaced, "
                      f"{m / roll_took * 60:,.0f} tasks/minute started (and as many stopped)")
            phase.report(roll_took or args.timeout)
        ok = bool(took and roll_took)
        print("RESULT", "ok" if ok else "incomplete",
              f"scale_tasks_per_min={scale_rate and round(scale_rate)}",
              f"roll_seconds={roll_took and round(roll_took, 1)}")
        return 0 if ok else 1
    finally:
        if sim is not None and sim.poll() is None:
            sim.send_signal(signal.SIGTERM)
            try:
                sim.wait(timeout=15)
            except subprocess.TimeoutExpired:
                sim.kill()
                sim.wait()
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
