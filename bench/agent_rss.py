#!/usr/bin/env python3
"""The agent's resident memory: idle (registered, connected, no tasks) and with N running busybox
tasks (RunTask count=10, N/10 times, all on one agent), read from /proc/PID/status (VmRSS, and
VmHWM for the peak). Target: <= 15 MiB idle.

Usage: BERTH_BIN=build/apps/berth/berth /usr/bin/python3 bench/agent_rss.py [N=50]
"""

import os
import pathlib
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import pytest  # noqa: E402,F401  (the harness imports it)
from berth_harness import BerthServer  # noqa: E402
import test_agent as ta  # noqa: E402
from agent_harness import podman_service  # noqa: E402


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    work = tempfile.mkdtemp(prefix="berth-rss-")
    gen = podman_service(pathlib.Path(tempfile.mkdtemp(dir=work)))
    podman = gen.__enter__()
    server = BerthServer(work).start()
    ecs = server.client()
    ecs.create_cluster(clusterName="rss")
    agent = ta.Agent(server, "rss", podman, work)
    agent.start()
    c = {"name": "rss", "ecs": ecs, "podman": podman, "agent": agent}
    arns = []
    try:
        time.sleep(2)  # registered and connected, first heartbeat exchange done
        pid = agent.proc.pid
        idle, idle_threads = status_kib(pid, "VmRSS"), status_kib(pid, "Threads")
        td = ta.register(ecs, "rss", [{"name": "s", "command": ["sleep", "3600"], "memory": 16,
                                       "stopTimeout": 1}])
        t0 = time.monotonic()
        while len(arns) < n:
            r = ecs.run_task(cluster="rss", taskDefinition=td, count=min(10, n - len(arns)))
            assert not r["failures"], r["failures"]
            arns += [t["taskArn"] for t in r["tasks"]]
        pending = set(arns)
        while pending:
            batch = list(pending)[:100]
            for t in ecs.describe_tasks(cluster="rss", tasks=batch)["tasks"]:
                assert t["lastStatus"] != "STOPPED", t.get("stoppedReason")
                if t["lastStatus"] == "RUNNING":
                    pending.discard(t["taskArn"])
            assert time.monotonic() - t0 < 300, f"{len(pending)} tasks not RUNNING after 300 s"
            time.sleep(0.5)
        took = time.monotonic() - t0
        time.sleep(2)  # a couple of poll rounds with every task running
        loaded, threads = status_kib(pid, "VmRSS"), status_kib(pid, "Threads")
        peak = status_kib(pid, "VmHWM")
        print(f"agent RSS idle            {mib(idle)}  ({idle_threads} threads)")
        print(f"agent RSS with {n} tasks   {mib(loaded)}  ({threads} threads; "
              f"all RUNNING in {took:.1f} s)")
        print(f"agent peak RSS (VmHWM)    {mib(peak)}")
        print(f"per running task          {(loaded - idle) / max(1, n):.0f} KiB")
    finally:
        for a in arns:
            try:
                ecs.stop_task(cluster="rss", task=a)
            except Exception:  # noqa: BLE001  (best effort; containers are removed below)
                pass
        time.sleep(3)
        agent.stop()
        server.stop()
        ta.remove_cluster_containers(podman, "rss")
        gen.__exit__(None, None, None)


if __name__ == "__main__":
    main()
