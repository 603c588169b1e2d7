"""Services with real containers: `berth agent`s on Podman running busybox httpd tasks.

Two agents share one Podman engine (the module's private `podman system service`, from
test_agent.py); each has its own --data-dir, --instance-id and reserved ports, so the server sees
two container instances. Covers: create (desiredCount 2, boto3's services_stable waiter) with every
task answering HTTP on its networkBindings host port; scale 2 -> 3 -> 1; a rolling update to a new
revision; a crash-looping revision tripping the deployment circuit breaker and rolling back; draining
one instance; a DAEMON service across both agents; and kill -9 of the server in the middle of a
rolling deployment, after which the restarted server finishes it with no task lost or duplicated.
Every container carries the berth.cluster label and is removed at the end.
"""

import http.client
import os
import time

import pytest

from agent_harness import IMAGE, Agent, podman_cli, remove_cluster_containers

pytestmark = pytest.mark.skipif(
    __import__("shutil").which("podman") is None, reason="podman is not installed")

BASE_PORTS = "22,2375,2376,51678,51679"


def web_td(ecs, family, msg, command=None):
    cmd = command or ["sh", "-c", "echo $MSG > /www/index.html && exec httpd -f -p 80 -h /www"]
    return ecs.register_task_definition(family=family, containerDefinitions=[{
        "name": "web", "image": IMAGE, "memory": 32, "cpu": 16, "stopTimeout": 1,
        "command": cmd, "environment": [{"name": "MSG", "value": msg}],
        "portMappings": [{"containerPort": 80, "hostPort": 0}]}])["taskDefinition"]["taskDefinitionArn"]


def start_agents(server, cluster, podman, tmp_path_factory, n=2):  # noqa: F811
    agents = []
    for i in range(n):
        a = Agent(server, cluster, podman, str(tmp_path_factory.mktemp(f"agent{i}")),
                  extra_args=["--instance-id", f"i-0berthreal{i:06d}",
                              "--reserved-ports", f"{BASE_PORTS},{40100 + i}",
                              "--availability-zone", f"us-east-1{'ab'[i % 2]}"])
        a.start()
        agents.append(a)
    return agents


@pytest.fixture(scope="module")
def two(shared_server, podman, tmp_path_factory):  # noqa: F811
    name = f"svcreal-{os.getpid()}"
    ecs = shared_server.client()
    ecs.create_cluster(clusterName=name)
    agents = start_agents(shared_server, name, podman, tmp_path_factory)
    yield {"name": name, "ecs": ecs, "agents": agents, "podman": podman}
    for a in agents:
        a.stop()
    remove_cluster_containers(podman, name)


def wait_for(fn, timeout=30, what="condition"):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.time() < deadline, f"timed out waiting for {what}; last: {v!r}"
        time.sleep(0.25)


def describe(c, svc):
    return c["ecs"].describe_services(cluster=c["name"], services=[svc])["services"][0]


def stable(c, svc, attempts=60):
    c["ecs"].get_waiter("services_stable").wait(
        cluster=c["name"], services=[svc], WaiterConfig={"Delay": 1, "MaxAttempts": attempts})
    return describe(c, svc)


def live_tasks(c, svc):
    """Tasks of the service the server wants RUNNING."""
    arns = c["ecs"].list_tasks(cluster=c["name"], serviceName=svc, desiredStatus="RUNNING")["taskArns"]
    return c["ecs"].describe_tasks(cluster=c["name"], tasks=arns)["tasks"] if arns else []


def http_get(port, timeout=10):
    deadline = time.time() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            body = conn.getresponse().read()
            conn.close()
            return body
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def bodies(c, svc):
    """The body every live task serves on its networkBindings host port, by task ARN."""
    out = {}
    for t in live_tasks(c, svc):
        assert t["lastStatus"] == "RUNNING", t["lastStatus"]
        (nb,) = t["containers"][0]["networkBindings"]
        assert nb["containerPort"] == 80 and nb["hostPort"] > 0
        out[t["taskArn"]] = http_get(nb["hostPort"])
    return out


def running_containers(c):
    """task ARN -> number of running containers on the engine for this cluster."""
    out = podman_cli(c["podman"], "ps", "--filter", f"label=berth.cluster={c['name']}",
                     "--format", '{{index .Labels "berth.task-arn"}}').stdout.split()
    counts = {}
    for arn in out:
        counts[arn] = counts.get(arn, 0) + 1
    return counts


def delete(c, svc):
    c["ecs"].delete_service(cluster=c["name"], service=svc, force=True)
    wait_for(lambda: not live_tasks(c, svc), 30, "service tasks to stop")


def test_create_scale_update(two, unique):
    c, ecs = two, two["ecs"]
    fam, svc = unique("web"), unique("websvc")
    v1 = web_td(ecs, fam, "v1")
    ecs.create_service(cluster=c["name"], serviceName=svc, taskDefinition=v1, desiredCount=2,
                       deploymentConfiguration={"maximumPercent": 200, "minimumHealthyPercent": 100})
    s = stable(c, svc)
    assert s["runningCount"] == 2 and len(s["deployments"]) == 1
    assert sorted(bodies(c, svc).values()) == [b"v1\n"] * 2
    assert "has reached a steady state." in s["events"][0]["message"]

    ecs.update_service(cluster=c["name"], service=svc, desiredCount=3)
    wait_for(lambda: describe(c, svc)["runningCount"] == 3 and len(live_tasks(c, svc)) == 3, 30,
             "scale to 3")
    s = stable(c, svc)
    assert sorted(bodies(c, svc).values()) == [b"v1\n"] * 3
    ecs.update_service(cluster=c["name"], service=svc, desiredCount=1)
    wait_for(lambda: len(live_tasks(c, svc)) == 1, 30, "scale to 1")
    s = stable(c, svc)
    assert s["runningCount"] == 1
    assert list(bodies(c, svc).values()) == [b"v1\n"]
    wait_for(lambda: sum(running_containers(c).get(t["taskArn"], 0) for t in live_tasks(c, svc)) == 1,
             20, "one container for the one task")

    # Rolling update to a new revision (different environment) at desiredCount 2.
    v2 = web_td(ecs, fam, "v2")
    ecs.update_service(cluster=c["name"], service=svc, taskDefinition=v2, desiredCount=2)
    wait_for(lambda: describe(c, svc)["deployments"][0]["rolloutState"] == "COMPLETED"
             and len(describe(c, svc)["deployments"]) == 1, 45, "rollout to v2")
    s = stable(c, svc)
    assert s["taskDefinition"] == v2 and s["runningCount"] == 2
    assert {t["taskDefinitionArn"] for t in live_tasks(c, svc)} == {v2}
    assert sorted(bodies(c, svc).values()) == [b"v2\n"] * 2
    delete(c, svc)


def test_crash_looping_revision_trips_breaker_and_rolls_back(two, unique):
    c, ecs = two, two["ecs"]
    fam, svc = unique("cb"), unique("cbsvc")
    good = web_td(ecs, fam, "good")
    ecs.create_service(cluster=c["name"], serviceName=svc, taskDefinition=good, desiredCount=2,
                       deploymentConfiguration={
                           "maximumPercent": 200, "minimumHealthyPercent": 100,
                           "deploymentCircuitBreaker": {"enable": True, "rollback": True}})
    stable(c, svc)
    bad = web_td(ecs, fam, "bad", command=["sh", "-c", "exit 1"])
    ecs.update_service(cluster=c["name"], service=svc, taskDefinition=bad)
    bad_id = describe(c, svc)["deployments"][0]["id"]

    def failed():
        deps = {d["id"]: d for d in describe(c, svc)["deployments"]}
        d = deps.get(bad_id)
        return d is None or d["rolloutState"] == "FAILED"
    wait_for(failed, 60, "the circuit breaker to trip")
    # Rolled back: the good revision is PRIMARY again and completes; the bad one goes away.
    wait_for(lambda: (lambda s: s["taskDefinition"] == good and len(s["deployments"]) == 1
                      and s["deployments"][0]["rolloutState"] == "COMPLETED")(describe(c, svc)),
             60, "rollback to complete")
    s = stable(c, svc)
    assert s["runningCount"] == 2
    msgs = " | ".join(e["message"] for e in s["events"])
    assert "circuit breaker" in msgs.lower() or "rolling back" in msgs.lower() or "rolled back" in msgs.lower(), msgs
    assert {t["taskDefinitionArn"] for t in live_tasks(c, svc)} == {good}
    assert sorted(bodies(c, svc).values()) == [b"good\n"] * 2
    stopped = ecs.list_tasks(cluster=c["name"], serviceName=svc, desiredStatus="STOPPED")["taskArns"]
    bad_tasks = [t for t in ecs.describe_tasks(cluster=c["name"], tasks=stopped)["tasks"]
                 if t["taskDefinitionArn"] == bad] if stopped else []
    assert len(bad_tasks) >= 3, "the breaker's threshold is 3 failed tasks for desiredCount 2"
    delete(c, svc)


def test_drain_moves_tasks_to_other_agent(two, unique):
    c, ecs = two, two["ecs"]
    a, b = (ag.arn for ag in c["agents"])
    fam, svc = unique("dr"), unique("drsvc")
    td = web_td(ecs, fam, "drain")
    ecs.create_service(cluster=c["name"], serviceName=svc, taskDefinition=td, desiredCount=2,
                       placementStrategy=[{"type": "spread", "field": "instanceId"}])
    stable(c, svc)
    assert {t["containerInstanceArn"] for t in live_tasks(c, svc)} == {a, b}
    try:
        ecs.update_container_instances_state(cluster=c["name"], containerInstances=[a],
                                             status="DRAINING")
        wait_for(lambda: (lambda ts: len(ts) == 2 and all(t["containerInstanceArn"] == b
                                                          and t["lastStatus"] == "RUNNING"
                                                          for t in ts))(live_tasks(c, svc)),
                 45, "tasks to move to the other instance")
        s = stable(c, svc)
        assert s["runningCount"] == 2
        assert sorted(bodies(c, svc).values()) == [b"drain\n"] * 2
        # The replaced task on the drained instance finishes stopping (stopTimeout 1 s).
        wait_for(lambda: ecs.describe_container_instances(
            cluster=c["name"], containerInstances=[a])["containerInstances"][0]
            ["runningTasksCount"] == 0, 20, "the drained instance to run no task")
    finally:
        ecs.update_container_instances_state(cluster=c["name"], containerInstances=[a],
                                             status="ACTIVE")
    delete(c, svc)


def test_daemon_one_container_per_agent(two, unique):
    c, ecs = two, two["ecs"]
    a, b = (ag.arn for ag in c["agents"])
    fam, svc = unique("dmn"), unique("dmnsvc")
    td = web_td(ecs, fam, "daemon")
    ecs.create_service(cluster=c["name"], serviceName=svc, taskDefinition=td,
                       schedulingStrategy="DAEMON")
    s = stable(c, svc)
    assert s["schedulingStrategy"] == "DAEMON" and s["desiredCount"] == 2
    tasks = live_tasks(c, svc)
    assert sorted(t["containerInstanceArn"] for t in tasks) == sorted([a, b])
    running = running_containers(c)
    assert [running.get(t["taskArn"]) for t in tasks] == [1, 1]
    assert sorted(bodies(c, svc).values()) == [b"daemon\n"] * 2
    delete(c, svc)


def test_server_kill9_mid_rolling_deployment(make_server, podman, tmp_path_factory, unique):  # noqa: F811
    server = make_server()
    name = f"svccrash-{os.getpid()}"
    ecs = server.client()
    ecs.create_cluster(clusterName=name)
    agents = start_agents(server, name, podman, tmp_path_factory)
    c = {"name": name, "ecs": ecs, "agents": agents, "podman": podman}
    try:
        fam, svc = unique("crash"), unique("crashsvc")
        v1 = web_td(ecs, fam, "old")
        # maximumPercent 125 with 4 tasks: one new task at a time, so the rollout has several steps.
        ecs.create_service(cluster=name, serviceName=svc, taskDefinition=v1, desiredCount=4,
                           deploymentConfiguration={"maximumPercent": 125,
                                                    "minimumHealthyPercent": 100})
        stable(c, svc)
        v2 = web_td(ecs, fam, "new")
        ecs.update_service(cluster=name, service=svc, taskDefinition=v2)
        # Kill once the first new-revision task runs, with the deployment still in progress.
        wait_for(lambda: any(t["taskDefinitionArn"] == v2 and t["lastStatus"] == "RUNNING"
                             for t in live_tasks(c, svc)), 30, "the first v2 task")
        mid = describe(c, svc)
        assert len(mid["deployments"]) == 2, "the kill must land mid-deployment"
        server.restart(kill9=True, same_port=True)
        c["ecs"] = ecs = server.client()
        wait_for(lambda: all(ci["agentConnected"] for ci in ecs.describe_container_instances(
            cluster=name, containerInstances=[a.arn for a in agents])["containerInstances"]),
            30, "agents to reconnect")
        wait_for(lambda: (lambda s: len(s["deployments"]) == 1 and s["taskDefinition"] == v2
                          and s["deployments"][0]["rolloutState"] == "COMPLETED")(describe(c, svc)),
                 60, "the deployment to complete after the restart")
        s = stable(c, svc)
        assert s["runningCount"] == 4 and s["pendingCount"] == 0
        tasks = live_tasks(c, svc)
        assert len(tasks) == 4 and {t["taskDefinitionArn"] for t in tasks} == {v2}
        # No duplicates and no lost tasks: the engine runs exactly one container per live task
        # and nothing else for this cluster (old-revision containers are gone).
        wait_for(lambda: running_containers(c) == {t["taskArn"]: 1 for t in tasks}, 30,
                 "engine containers == live tasks")
        assert sorted(bodies(c, svc).values()) == [b"new\n"] * 4
        # Every task the service ever started is either live (v2) or STOPPED.
        all_arns = (ecs.list_tasks(cluster=name, serviceName=svc, desiredStatus="STOPPED")["taskArns"]
                    + [t["taskArn"] for t in tasks])
        every = ecs.describe_tasks(cluster=name, tasks=all_arns)["tasks"]
        assert len({t["taskArn"] for t in every}) == len(every)
        for t in every:
            if t["taskArn"] not in {x["taskArn"] for x in tasks}:
                assert t["lastStatus"] == "STOPPED", (t["taskArn"], t["lastStatus"])
        delete(c, svc)
    finally:
        for a in agents:
            a.stop()
        remove_cluster_containers(podman, name)
