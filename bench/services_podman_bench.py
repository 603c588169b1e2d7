#!/usr/bin/env python3
"""A service 0 -> N busybox tasks through berth (server + one agent + Podman), timed to
runningCount N, against the parallel `podman run -d` ceiling for the same container measured in the
same run.

  1. starts a private `podman system service` (runc, as the tests do), builds the busybox image, a
     `berth server` and one `berth agent` in a temp dir;
  2. berth: creates service `scale` with desiredCount 0 (one container, `sleep 3600`, 16 MiB), then
     UpdateService to N and times until runningCount == N with one deployment (and pendingCount 0);
     then scales to 0 and waits until the containers are gone;
  3. ceiling: `podman run -d` of the same image, command and memory limit, N times, --parallel at a
     time (default 8), timed until every command has returned (each returns once its container runs);
  4. prints both, tasks/minute and the ratio, then removes every container it made.

Usage: BERTH_BIN=build/apps/berth/berth /usr/bin/python3 bench/services_podman_bench.py [--tasks 50] [--parallel 8]
"""

import argparse
import concurrent.futures
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import pytest  # noqa: E402,F401  (the harness imports it)
from berth_harness import BerthServer  # noqa: E402
import test_agent as ta  # noqa: E402
from agent_harness import podman_service  # noqa: E402

CLUSTER = "podbench"
CMD = ["sleep", "3600"]


def cluster_containers(podman, running_only=False):
    args = ["ps", "-q", "--filter", f"label=berth.cluster={CLUSTER}"]
    if not running_only:
        args.insert(1, "-a")
    return ta.podman_cli(podman, *args).stdout.split()


def clean(podman):
    ids = cluster_containers(podman)
    if ids:
        ta.podman_cli(podman, "rm", "-f", "-t", "0", *ids)


def describe(ecs):
    return ecs.describe_services(cluster=CLUSTER, services=["scale"])["services"][0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=50)
    ap.add_argument("--parallel", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    n = args.tasks

    work = tempfile.mkdtemp(prefix="berth-svc-podman-")
    gen = podman_service(pathlib.Path(tempfile.mkdtemp(dir=work)))
    podman = gen.__enter__()
    server = BerthServer(work).start()
    agent = None
    try:
        ecs = server.client()
        ecs.create_cluster(clusterName=CLUSTER)
        agent = ta.Agent(server, CLUSTER, podman, work)
        agent.start()
        td = ecs.register_task_definition(family="podbench", containerDefinitions=[{
            "name": "s", "image": ta.IMAGE, "memory": 16, "cpu": 10, "command": CMD,
            "stopTimeout": 1}])["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(cluster=CLUSTER, serviceName="scale", taskDefinition=td, desiredCount=0)
        time.sleep(1)

        # berth: service 0 -> n
        t0 = time.monotonic()
        ecs.update_service(cluster=CLUSTER, service="scale", desiredCount=n)
        first = None
        while True:
            s = describe(ecs)
            if first is None and s["runningCount"] > 0:
                first = time.monotonic() - t0
            if s["runningCount"] == n and s["pendingCount"] == 0 and len(s["deployments"]) == 1:
                break
            if time.monotonic() - t0 > args.timeout:
                sys.exit(f"timed out: runningCount {s['runningCount']} of {n}")
            time.sleep(0.05)
        berth_s = time.monotonic() - t0
        engine_running = len(cluster_containers(podman, running_only=True))

        ecs.update_service(cluster=CLUSTER, service="scale", desiredCount=0)
        deadline = time.monotonic() + args.timeout
        while cluster_containers(podman) and time.monotonic() < deadline:
            time.sleep(0.2)
        clean(podman)

        # ceiling: n x `podman run -d`, --parallel at a time
        def one(i):
            r = subprocess.run(["podman", "run", "-d", "--label", f"berth.cluster={CLUSTER}",
                                "--memory", "16m", ta.IMAGE, *CMD],
                               env=podman["env"], capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(r.stderr)
        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
            list(pool.map(one, range(n)))
        raw_s = time.monotonic() - t0
        raw_running = len(cluster_containers(podman, running_only=True))

        per_min = lambda s: n / s * 60  # noqa: E731
        print(f"berth service 0 -> {n} RUNNING: {berth_s:.2f} s ({per_min(berth_s):.0f} tasks/min; "
              f"first RUNNING after {first:.2f} s; {engine_running} containers running)")
        print(f"podman run -d x{n}, {args.parallel} parallel: {raw_s:.2f} s "
              f"({per_min(raw_s):.0f} containers/min; {raw_running} running)")
        print(f"ratio berth / podman: {berth_s / raw_s:.2f}")
    finally:
        if agent:
            agent.stop()
        server.stop()
        clean(podman)
        gen.__exit__(None, None, None)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
