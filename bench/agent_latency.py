#!/usr/bin/env python3
"""RunTask -> RUNNING latency through berth (server + agent + Podman) vs raw `podman run -d` of the
same container, measured in the same run, plus the agent's RSS idle and with N running tasks.

Usage: BERTH_BIN=build/apps/berth/berth /usr/bin/python3 bench/agent_latency.py [N]
"""

import os
import pathlib
import statistics
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


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    work = tempfile.mkdtemp(prefix="berth-bench-")
    gen = podman_service(pathlib.Path(tempfile.mkdtemp(dir=work)))
    podman = gen.__enter__()
    server = BerthServer(work).start()
    ecs = server.client()
    ecs.create_cluster(clusterName="bench")
    agent = ta.Agent(server, "bench", podman, work)
    agent.start()
    c = {"name": "bench", "ecs": ecs, "podman": podman}
    try:
        time.sleep(1)
        idle = rss_kib(agent.proc.pid)
        td = ta.register(ecs, "bench", [{"name": "s", "command": ["sleep", "3600"], "stopTimeout": 1}])
        berth, raw, arns = [], [], []
        for i in range(n):
            t0 = time.monotonic()
            arn = ta.run(c, td)
            while ecs.describe_tasks(cluster="bench", tasks=[arn])["tasks"][0]["lastStatus"] != "RUNNING":
                time.sleep(0.005)
            berth.append(time.monotonic() - t0)
            arns.append(arn)
            t0 = time.monotonic()
            subprocess.run(["podman", "run", "-d", "--label", "berth.cluster=bench", "--memory", "32m",
                            ta.IMAGE, "sleep", "3600"], env=podman["env"], check=True, capture_output=True)
            raw.append(time.monotonic() - t0)
        loaded = rss_kib(agent.proc.pid)
        ms = lambda x: f"{x * 1000:.0f} ms"  # noqa: E731
        print(f"RunTask->RUNNING  p50 {ms(statistics.median(berth))}  p99 {ms(pct(berth, 99))}  (n={n})")
        print(f"podman run -d     p50 {ms(statistics.median(raw))}  p99 {ms(pct(raw, 99))}")
        print(f"ratio p50 {statistics.median(berth) / statistics.median(raw):.2f}")
        print(f"agent RSS idle {idle / 1024:.1f} MiB, with {n} running tasks {loaded / 1024:.1f} MiB")
        for a in arns:
            ecs.stop_task(cluster="bench", task=a)
    finally:
        time.sleep(3)
        agent.stop()
        server.stop()
        ids = ta.podman_cli(podman, "ps", "-aq", "--filter", "label=berth.cluster=bench").stdout.split()
        if ids:
            ta.podman_cli(podman, "rm", "-f", "-t", "0", *ids)
        gen.__exit__(None, None, None)


if __name__ == "__main__":
    main()
