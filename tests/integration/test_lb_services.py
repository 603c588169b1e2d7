"""Services behind a load balancer, end to end: real HAProxy, real Podman containers (busybox
httpd), the ECS and ELBv2 APIs driven with the AWS CLI and boto3.

One server (with its HAProxy) and one agent per module. Health checks run every 5 s (the ELBv2
minimum) with thresholds of 2, so a new task takes about 10 s to take traffic.
"""

import http.client
import os
import re
import shutil
import time

import pytest

from agent_harness import IMAGE, Agent, podman_cli, remove_cluster_containers
from berth_harness import free_port, wait_for

pytestmark = [
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
    pytest.mark.skipif(shutil.which("haproxy") is None and not os.path.exists("/usr/sbin/haproxy"),
                       reason="haproxy is not installed"),
]

# Each container writes its hostname (the container id) as its page, and a health file.
WEB = ["sh", "-c", "hostname > /www/index.html && echo ok > /www/health && "
       "mkdir -p /www/api && echo api > /www/api/hello && exec httpd -f -p 80 -h /www"]


def get(port, path="/", host=None, timeout=5):
    """(status, body) of one GET through the listener; (0, error) when the connection fails."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", path, headers={"Host": host} if host else {})
        r = conn.getresponse()
        body = r.read().decode()
        conn.close()
        return r.status, body
    except OSError as e:
        return 0, str(e)


@pytest.fixture(scope="module")
def lb(shared_server, podman, tmp_path_factory):
    server = shared_server
    ecs, elb = server.client(), server.client("elbv2")
    name = f"lb-{os.getpid()}"
    ecs.create_cluster(clusterName=name)
    agent = Agent(server, name, podman, str(tmp_path_factory.mktemp("agent")))
    agent.start()
    port = free_port()
    lb_arn = elb.create_load_balancer(
        Name=f"web-{os.getpid()}", SubnetMappings=[{"SubnetId": "local",
                                                    "PrivateIPv4Address": "127.0.0.1"}],
        Type="application")["LoadBalancers"][0]["LoadBalancerArn"]
    c = {"server": server, "ecs": ecs, "elb": elb, "name": name, "agent": agent,
         "podman": podman, "port": port, "lb_arn": lb_arn, "n": 0}
    yield c
    agent.stop()
    remove_cluster_containers(podman, name)


def target_group(c, name, delay=2, path="/health"):
    tg = c["elb"].create_target_group(
        Name=name, Protocol="HTTP", Port=80, VpcId="vpc-local", HealthCheckPath=path,
        HealthCheckIntervalSeconds=5, HealthCheckTimeoutSeconds=2, HealthyThresholdCount=2,
        UnhealthyThresholdCount=2)["TargetGroups"][0]["TargetGroupArn"]
    c["elb"].modify_target_group_attributes(TargetGroupArn=tg, Attributes=[
        {"Key": "deregistration_delay.timeout_seconds", "Value": str(delay)}])
    return tg


def web_service(c, service, tg, count, command=WEB):
    td = c["ecs"].register_task_definition(family=service, containerDefinitions=[{
        "name": "web", "image": IMAGE, "memory": 32, "command": command, "stopTimeout": 2,
        "portMappings": [{"containerPort": 80, "hostPort": 0}]}])["taskDefinition"]
    c["ecs"].create_service(cluster=c["name"], serviceName=service,
                            taskDefinition=td["taskDefinitionArn"], desiredCount=count,
                            loadBalancers=[{"targetGroupArn": tg, "containerName": "web",
                                            "containerPort": 80}])
    return td["taskDefinitionArn"]


def health(c, tg):
    return c["elb"].describe_target_health(TargetGroupArn=tg)["TargetHealthDescriptions"]


def healthy(c, tg, n):
    ds = health(c, tg)
    ok = [d for d in ds if d["TargetHealth"]["State"] == "healthy"]
    return ds if len(ok) == n and len(ds) == n else None


def events(c, service):
    s = c["ecs"].describe_services(cluster=c["name"], services=[service])["services"][0]
    return [e["message"] for e in s["events"]]


def service_tasks(c, service, status="RUNNING"):
    arns = c["ecs"].list_tasks(cluster=c["name"], serviceName=service,
                               desiredStatus=status)["taskArns"]
    if not arns:
        return []
    return c["ecs"].describe_tasks(cluster=c["name"], tasks=arns)["tasks"]


@pytest.fixture(scope="module")
def web(lb):
    """A 3-task web service on dynamic host ports behind the listener's default action, set up
    with the AWS CLI as a user would."""
    server = lb["server"]
    rc, out = server.aws("elbv2", "create-target-group", "--name", f"web-{os.getpid()}",
                         "--protocol", "HTTP", "--port", "80", "--vpc-id", "vpc-local",
                         "--health-check-path", "/health", "--health-check-interval-seconds", "5",
                         "--health-check-timeout-seconds", "2", "--healthy-threshold-count", "2",
                         "--unhealthy-threshold-count", "2")
    assert rc == 0, out
    tg = out["TargetGroups"][0]["TargetGroupArn"]
    rc, out = server.aws("elbv2", "modify-target-group-attributes", "--target-group-arn", tg,
                         "--attributes", "Key=deregistration_delay.timeout_seconds,Value=4")
    assert rc == 0, out
    rc, out = server.aws("elbv2", "create-listener", "--load-balancer-arn", lb["lb_arn"],
                         "--protocol", "HTTP", "--port", str(lb["port"]),
                         "--default-actions", f"Type=forward,TargetGroupArn={tg}")
    assert rc == 0, out
    listener = out["Listeners"][0]["ListenerArn"]
    td = lb["ecs"].register_task_definition(
        family="web", containerDefinitions=[{
            "name": "nginx", "image": IMAGE, "memory": 32, "command": WEB, "stopTimeout": 2,
            "portMappings": [{"containerPort": 80, "hostPort": 0}]}])["taskDefinition"][
                "taskDefinitionArn"]
    rc, out = server.aws("ecs", "create-service", "--cluster", lb["name"], "--service-name", "web",
                         "--task-definition", td, "--desired-count", "3", "--load-balancers",
                         f"targetGroupArn={tg},containerName=nginx,containerPort=80")
    assert rc == 0, out
    assert out["service"]["loadBalancers"] == [
        {"targetGroupArn": tg, "containerName": "nginx", "containerPort": 80}]
    return {"tg": tg, "listener": listener, "td": td}


def test_dynamic_ports_behind_one_listener(lb, web):
    ds = wait_for("3 healthy targets", lambda: healthy(lb, web["tg"], 3))
    ports = {d["Target"]["Port"] for d in ds}
    assert len(ports) == 3 and all(p >= 1024 for p in ports), ports
    instance = lb["ecs"].describe_container_instances(
        cluster=lb["name"], containerInstances=[lb["agent"].arn])["containerInstances"][0]
    assert {d["Target"]["Id"] for d in ds} == {instance["ec2InstanceId"]}
    # The registered ports are the tasks' actual host ports.
    bound = {t["containers"][0]["networkBindings"][0]["hostPort"]
             for t in service_tasks(lb, "web")}
    assert bound == ports
    bodies = set()
    for _ in range(30):
        status, body = get(lb["port"])
        assert status == 200, body
        bodies.add(body)
    assert len(bodies) == 3, bodies  # round robin over the three containers
    registered = [re.match(r"\(service web\) registered (\d+) targets in \(target-group (.*)\)$", m)
                  for m in events(lb, "web")]
    assert sum(int(m.group(1)) for m in registered if m and m.group(2) == web["tg"]) == 3, \
        events(lb, "web")
    wait_for("deployment completed", lambda: lb["ecs"].describe_services(
        cluster=lb["name"], services=["web"])["services"][0]["deployments"][0][
            "rolloutState"] == "COMPLETED", timeout=10)


def test_path_and_host_rules_route_to_services(lb, web):
    wait_for("web healthy", lambda: healthy(lb, web["tg"], 3))
    api_tg = target_group(lb, f"api-{os.getpid()}")
    admin_tg = target_group(lb, f"admin-{os.getpid()}")
    elb = lb["elb"]
    elb.create_rule(ListenerArn=web["listener"], Priority=10,
                    Conditions=[{"Field": "path-pattern", "Values": ["/api/*"]}],
                    Actions=[{"Type": "forward", "TargetGroupArn": api_tg}])
    elb.create_rule(ListenerArn=web["listener"], Priority=20,
                    Conditions=[{"Field": "host-header",
                                 "HostHeaderConfig": {"Values": ["admin.example.com"]}}],
                    Actions=[{"Type": "forward", "TargetGroupArn": admin_tg}])
    # As in ECS, a service's target group must be attached to a load balancer first.
    web_service(lb, "api", api_tg, 1)
    web_service(lb, "admin", admin_tg, 1, command=[
        "sh", "-c", "echo admin > /www/index.html && echo ok > /www/health && "
        "exec httpd -f -p 80 -h /www"])
    wait_for("api healthy", lambda: healthy(lb, api_tg, 1))
    wait_for("admin healthy", lambda: healthy(lb, admin_tg, 1))
    assert get(lb["port"], "/api/hello") == (200, "api\n")
    assert get(lb["port"], "/", host="admin.example.com") == (200, "admin\n")
    assert get(lb["port"], "/", host="ADMIN.example.com:8080") == (200, "admin\n")
    status, body = get(lb["port"], "/")
    assert status == 200 and body not in ("admin\n", "api\n")
    # The path rule wins over the host rule (lower priority number first).
    assert get(lb["port"], "/api/hello", host="admin.example.com") == (200, "api\n")


def test_failing_health_check_is_replaced(lb, web):
    wait_for("web healthy", lambda: healthy(lb, web["tg"], 3))
    victim = service_tasks(lb, "web")[0]
    runtime_id = victim["containers"][0]["runtimeId"]
    out = podman_cli(lb["podman"], "exec", runtime_id, "rm", "/www/health")
    assert out.returncode == 0, out.stderr
    port = victim["containers"][0]["networkBindings"][0]["hostPort"]

    def unhealthy():
        for d in health(lb, web["tg"]):
            if d["Target"]["Port"] == port and d["TargetHealth"]["State"] in ("unhealthy",
                                                                               "draining"):
                return d
    wait_for("target unhealthy", unhealthy, timeout=60)
    stopped = wait_for("task stopped", lambda: [
        t for t in service_tasks(lb, "web", "STOPPED") if t["taskArn"] == victim["taskArn"]],
        timeout=60)[0]
    assert "ELB health checks" in stopped["stoppedReason"], stopped["stoppedReason"]
    assert any("is unhealthy in (target-group" in m for m in events(lb, "web"))
    wait_for("replacement healthy", lambda: healthy(lb, web["tg"], 3), timeout=90)
    assert port not in {d["Target"]["Port"] for d in health(lb, web["tg"])}


def test_deregistration_delay_holds_draining_target(lb, web):
    wait_for("web healthy", lambda: healthy(lb, web["tg"], 3))
    lb["ecs"].update_service(cluster=lb["name"], service="web", desiredCount=2)

    def draining():
        return [d for d in health(lb, web["tg"]) if d["TargetHealth"]["State"] == "draining"]
    ds = wait_for("a draining target", draining, timeout=30, every=0.2)
    draining_at = time.time()
    assert ds[0]["TargetHealth"]["Reason"] == "Target.DeregistrationInProgress"
    # While draining the task still runs, shown as DEACTIVATING, and traffic keeps flowing.
    tasks = service_tasks(lb, "web", "STOPPED")
    assert "DEACTIVATING" in {t["lastStatus"] for t in tasks}, [t["lastStatus"] for t in tasks]
    for _ in range(10):
        assert get(lb["port"])[0] == 200
    wait_for("drained", lambda: not draining(), timeout=30, every=0.2)
    held = time.time() - draining_at
    assert 2.5 <= held <= 12, held  # deregistration_delay.timeout_seconds = 4
    assert any("has begun draining connections on 1 tasks." in m for m in events(lb, "web"))
    wait_for("2 running", lambda: len([t for t in service_tasks(lb, "web")
                                       if t["lastStatus"] == "RUNNING"]) == 2, timeout=30)
    lb["ecs"].update_service(cluster=lb["name"], service="web", desiredCount=3)
    wait_for("back to 3", lambda: healthy(lb, web["tg"], 3))


def test_stop_task_drains_before_stopping(lb, web):
    wait_for("web healthy", lambda: healthy(lb, web["tg"], 3))
    victim = service_tasks(lb, "web")[0]
    port = victim["containers"][0]["networkBindings"][0]["hostPort"]
    out = lb["ecs"].stop_task(cluster=lb["name"], task=victim["taskArn"], reason="by hand")
    assert out["task"]["lastStatus"] == "DEACTIVATING", out["task"]["lastStatus"]
    states = {d["Target"]["Port"]: d["TargetHealth"]["State"] for d in health(lb, web["tg"])}
    assert states[port] == "draining", states
    for _ in range(10):
        assert get(lb["port"])[0] == 200
    t = wait_for("stopped", lambda: [
        t for t in service_tasks(lb, "web", "STOPPED")
        if t["taskArn"] == victim["taskArn"] and t["lastStatus"] == "STOPPED"], timeout=40)[0]
    assert t["stopCode"] == "UserInitiated" and t["stoppedReason"] == "by hand", t
    wait_for("replaced", lambda: healthy(lb, web["tg"], 3))


def test_proxy_keeps_serving_while_berth_restarts(lb, web):
    wait_for("web healthy", lambda: healthy(lb, web["tg"], 3))
    server = lb["server"]
    pid = server.proxy_pid()
    assert pid is not None
    server.stop(kill9=True)
    for _ in range(20):
        assert get(lb["port"])[0] == 200
    server.listen = f"127.0.0.1:{server.port}"
    server.start()
    lb["ecs"], lb["elb"] = server.client(), server.client("elbv2")
    assert server.proxy_pid() == pid  # adopted, not restarted
    for _ in range(20):
        assert get(lb["port"])[0] == 200
    wait_for("web healthy after restart", lambda: healthy(lb, web["tg"], 3))


def test_rolling_update_and_scale_in_drop_no_request():
    """The zero-downtime check (bench/lb_zero_downtime.py, its own server, agent and proxy): wrk
    through the listener during a rolling update of 4 tasks and a scale-in to 2."""
    import json
    import subprocess
    import sys
    from berth_harness import REPO
    p = subprocess.run([sys.executable, os.path.join(REPO, "bench", "lb_zero_downtime.py"),
                        "--json", "--load-seconds", "50", "--bench-seconds", "2"],
                       capture_output=True, text=True, timeout=300)
    assert p.stdout.strip(), p.stderr[-3000:]
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["operations_within_load"], r
    assert r["under_load"]["requests"] > 1000, r
    assert r["under_load"]["failed"] == 0, r
    assert p.returncode == 0, r
