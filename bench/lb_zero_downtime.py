#!/usr/bin/env python3
"""Zero downtime, measured: a 4-task web service behind a Berth load balancer (real HAProxy, real
Podman containers running busybox httpd on dynamic host ports) keeps answering every request
through a rolling update and a scale-in, under load from wrk.

  1. starts a private `podman system service`, a `berth server` (which runs HAProxy) and one
     `berth agent` in a temp dir; creates a load balancer on 127.0.0.1, a target group (health
     checks every 5 s, 2 to become healthy, deregistration delay 3 s), a listener and a service of
     4 tasks, and waits until the 4 targets are healthy;
  2. throughput: wrk for --bench-seconds through the listener, and the same wrk straight at one
     container's host port (the ceiling without the proxy: busybox httpd closes every connection);
  3. zero downtime: wrk through the listener for --load-seconds while (a) a new task definition
     revision rolls out (UpdateService, minimumHealthyPercent 100, maximumPercent 200) until the
     deployment is COMPLETED with 4 tasks, then (b) the service scales in to 2 and settles;
  4. prints the request counts and the failed requests (non-2xx responses + socket errors) of the
     loaded run, and exits 1 unless failed == 0 and both operations finished within the load.

Usage: BERTH_BIN=build/apps/berth/berth /usr/bin/python3 bench/lb_zero_downtime.py [--json]
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import pytest  # noqa: E402,F401  (the harness imports it)
from agent_harness import IMAGE, Agent, podman_service, remove_cluster_containers  # noqa: E402
from berth_harness import BerthServer, free_port, wait_for  # noqa: E402

CLUSTER = "zdt"
WEB = ["sh", "-c", "echo $VERSION > /www/index.html && echo ok > /www/health && "
       "exec httpd -f -p 80 -h /www"]


def parse_wrk(out):
    """Requests, failed requests (non-2xx/3xx + socket errors) and requests/s from wrk's report."""
    r = {"requests": 0, "non2xx": 0, "socket_errors": 0, "rps": 0.0}
    m = re.search(r"(\d+) requests in", out)
    if m:
        r["requests"] = int(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        r["non2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        r["socket_errors"] = sum(int(x) for x in m.groups())
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        r["rps"] = float(m.group(1))
    r["failed"] = r["non2xx"] + r["socket_errors"]
    return r


def wrk(url, seconds, connections=8, threads=1, background=False):
    cmd = ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout",
           "5s", url]
    if background:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return parse_wrk(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--load-seconds", type=int, default=75)
    ap.add_argument("--bench-seconds", type=int, default=5)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    work = pathlib.Path(tempfile.mkdtemp(prefix="berth-zdt-"))
    result = {}
    with podman_service(work / "podman") as podman:
        (work / "server").mkdir()
        server = BerthServer(work / "server").start()
        agent = None
        try:
            ecs, elb = server.client(), server.client("elbv2")
            ecs.create_cluster(clusterName=CLUSTER)
            agent = Agent(server, CLUSTER, podman, str(work))
            agent.start()
            port = free_port()
            lb = elb.create_load_balancer(
                Name="zdt", Type="application",
                SubnetMappings=[{"SubnetId": "local", "PrivateIPv4Address": "127.0.0.1"}])
            lb_arn = lb["LoadBalancers"][0]["LoadBalancerArn"]
            tg = elb.create_target_group(
                Name="zdt", Protocol="HTTP", Port=80, VpcId="vpc-local", HealthCheckPath="/health",
                HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2,
                HealthyThresholdCount=2, UnhealthyThresholdCount=2)["TargetGroups"][0][
                    "TargetGroupArn"]
            elb.modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
                {"Key": "deregistration_delay.timeout_seconds", "Value": "3"}])
            elb.create_listener(LoadBalancerArn=lb_arn, Protocol="HTTP", Port=port,
                                DefaultActions=[{"Type": "forward", "TargetGroupArn": tg}])

            def register(version):
                return ecs.register_task_definition(family="zdt", containerDefinitions=[{
                    "name": "web", "image": IMAGE, "memory": 32, "command": WEB,
                    "stopTimeout": 2, "environment": [{"name": "VERSION", "value": version}],
                    "portMappings": [{"containerPort": 80, "hostPort": 0}]}])["taskDefinition"][
                        "taskDefinitionArn"]

            ecs.create_service(cluster=CLUSTER, serviceName="web", taskDefinition=register("v1"),
                               desiredCount=4,
                               deploymentConfiguration={"minimumHealthyPercent": 100,
                                                        "maximumPercent": 200},
                               loadBalancers=[{"targetGroupArn": tg, "containerName": "web",
                                               "containerPort": 80}])

            def healthy(n):
                ds = elb.describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]
                return len(ds) == n and all(d["TargetHealth"]["State"] == "healthy" for d in ds)

            wait_for("4 healthy targets", lambda: healthy(4))
            url = f"http://127.0.0.1:{port}/"
            task = ecs.describe_tasks(cluster=CLUSTER, tasks=ecs.list_tasks(
                cluster=CLUSTER, serviceName="web")["taskArns"][:1])["tasks"][0]
            direct = task["containers"][0]["networkBindings"][0]["hostPort"]
            result["via_haproxy"] = wrk(url, args.bench_seconds)
            result["direct_one_container"] = wrk(f"http://127.0.0.1:{direct}/",
                                                 args.bench_seconds)

            def service():
                return ecs.describe_services(cluster=CLUSTER, services=["web"])["services"][0]

            load = wrk(url, args.load_seconds, background=True)
            t0 = time.time()
            ecs.update_service(cluster=CLUSTER, service="web", taskDefinition=register("v2"))

            def rolled():
                s = service()
                d = s["deployments"]
                return (len(d) == 1 and d[0]["rolloutState"] == "COMPLETED" and
                        s["runningCount"] == 4 and healthy(4))
            wait_for("rolling update", rolled, timeout=args.load_seconds)
            result["rolling_update_seconds"] = round(time.time() - t0, 1)
            t1 = time.time()
            ecs.update_service(cluster=CLUSTER, service="web", desiredCount=2)

            def scaled():
                s = service()
                live = ecs.list_tasks(cluster=CLUSTER, serviceName="web")["taskArns"]
                return s["runningCount"] == 2 and len(live) == 2 and healthy(2)
            wait_for("scale-in", scaled, timeout=max(1, args.load_seconds - (time.time() - t0)))
            result["scale_in_seconds"] = round(time.time() - t1, 1)
            result["operations_within_load"] = time.time() - t0 < args.load_seconds
            out, _ = load.communicate(timeout=args.load_seconds + 60)
            result["under_load"] = parse_wrk(out)
            result["ratio_haproxy_to_direct"] = round(
                result["via_haproxy"]["rps"] / max(1.0, result["direct_one_container"]["rps"]), 2)
        finally:
            if agent:
                agent.stop()
            remove_cluster_containers(podman, CLUSTER)
            server.stop()
            server.stop_proxy()

    ok = result.get("under_load", {}).get("failed", 1) == 0 and result.get(
        "operations_within_load", False)
    result["ok"] = ok
    if args.json:
        print(json.dumps(result))
    else:
        u = result["under_load"]
        print(f"under load ({args.load_seconds} s, rolling update + scale-in 4 -> 2): "
              f"{u['requests']} requests, {u['failed']} failed "
              f"(non-2xx {u['non2xx']}, socket errors {u['socket_errors']})")
        print(f"rolling update {result['rolling_update_seconds']} s, "
              f"scale-in {result['scale_in_seconds']} s")
        print(f"throughput: via HAProxy (4 containers) {result['via_haproxy']['rps']:.0f} req/s, "
              f"direct to one container {result['direct_one_container']['rps']:.0f} req/s "
              f"(ratio {result['ratio_haproxy_to_direct']})")
        print("ZERO DOWNTIME: OK" if ok else "ZERO DOWNTIME: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
