"""Draining and DAEMON services against the real server, with instances registered through the API.
A small loop plays the agents' part: it reports new tasks RUNNING and tasks told to stop STOPPED,
through SubmitTaskStateChange, as an agent would. Also `berth drain --wait` and the AWS CLI's
`aws ecs wait services-stable`.
"""

import subprocess
import threading
import time

from berth_harness import BERTH_BIN
from test_tasks import add_instance, tiny_td


def play_agents(ecs, cluster):
    """One round of agent behaviour for every task in the cluster."""
    running = ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
    stopping = ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]
    for arns, want in ((running, "RUNNING"), (stopping, "STOPPED")):
        for i in range(0, len(arns), 100):
            for t in ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])["tasks"]:
                if t["lastStatus"] not in (want, "STOPPED"):
                    ecs.submit_task_state_change(cluster=cluster, task=t["taskArn"], status=want)


class Agents(threading.Thread):
    def __init__(self, ecs, cluster):
        super().__init__(daemon=True)
        self.ecs, self.cluster, self.done = ecs, cluster, threading.Event()

    def run(self):
        while not self.done.is_set():
            play_agents(self.ecs, self.cluster)
            time.sleep(0.2)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.join(5)


def tasks_on(ecs, cluster, instance, group_prefix="service:"):
    arns = ecs.list_tasks(cluster=cluster, containerInstance=instance)["taskArns"]
    if not arns:
        return []
    return [t for t in ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
            if t["group"].startswith(group_prefix)]


def wait_for(fn, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.2)
    return fn()


def test_berth_drain_waits_until_service_tasks_moved(shared_server, ecs, unique):
    cluster = unique("drain")
    ecs.create_cluster(clusterName=cluster)
    a = add_instance(ecs, cluster, az="us-east-1a")
    b = add_instance(ecs, cluster, az="us-east-1b")
    family = unique("drainfam")
    tiny_td(ecs, family)
    name = unique("web")
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=family, desiredCount=2)
    standalone = ecs.start_task(cluster=cluster, taskDefinition=family,
                                containerInstances=[a])["tasks"][0]["taskArn"]
    with Agents(ecs, cluster):
        assert wait_for(lambda: ecs.describe_services(cluster=cluster, services=[name])
                        ["services"][0]["runningCount"] == 2)
        assert tasks_on(ecs, cluster, a), "spread put one service task on each instance"
        drain = subprocess.run(
            [BERTH_BIN, "drain", a, "--cluster", cluster, "--server", shared_server.endpoint,
             "--credentials", shared_server.credentials_file, "--wait", "--timeout-seconds", "60"],
            capture_output=True, text=True, timeout=90)
        assert drain.returncode == 0, drain.stdout + drain.stderr
        assert "drained in" in drain.stdout
        assert tasks_on(ecs, cluster, a) == []
        # The service kept its count on the other instance; the standalone task was left alone.
        svc = wait_for(lambda: (lambda s: s if s["runningCount"] == 2 else None)(
            ecs.describe_services(cluster=cluster, services=[name])["services"][0]))
        assert svc and svc["runningCount"] == 2
        assert {t["containerInstanceArn"] for t in tasks_on(ecs, cluster, b)} == {b}
        (t,) = ecs.describe_tasks(cluster=cluster, tasks=[standalone])["tasks"]
        assert t["desiredStatus"] == "RUNNING"
    desc = ecs.describe_container_instances(cluster=cluster, containerInstances=[a])
    assert desc["containerInstances"][0]["status"] == "DRAINING"


def test_berth_drain_unknown_instance_fails(shared_server, ecs, unique):
    cluster = unique("drain-miss")
    ecs.create_cluster(clusterName=cluster)
    out = subprocess.run(
        [BERTH_BIN, "drain", "ffffffffffffffffffffffffffffffff", "--cluster", cluster, "--server",
         shared_server.endpoint, "--credentials", shared_server.credentials_file],
        capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "MISSING" in out.stderr


def test_daemon_service_follows_instances(ecs, unique):
    cluster = unique("daemon")
    ecs.create_cluster(clusterName=cluster)
    first = [add_instance(ecs, cluster) for _ in range(2)]
    family = unique("daemonfam")
    tiny_td(ecs, family)
    name = unique("logs")
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=family,
                       schedulingStrategy="DAEMON")

    def per_instance():
        tasks = [t for t in ecs.describe_tasks(
            cluster=cluster, tasks=ecs.list_tasks(cluster=cluster, serviceName=name)["taskArns"]
            or ["none"])["tasks"]]
        counts = {}
        for t in tasks:
            counts[t["containerInstanceArn"]] = counts.get(t["containerInstanceArn"], 0) + 1
        return counts

    with Agents(ecs, cluster):
        assert wait_for(lambda: per_instance() == {i: 1 for i in first})
        third = add_instance(ecs, cluster)
        assert wait_for(lambda: per_instance() == {i: 1 for i in first + [third]})
        ecs.update_container_instances_state(cluster=cluster, containerInstances=[first[0]],
                                             status="DRAINING")
        assert wait_for(lambda: per_instance() == {first[1]: 1, third: 1})
        svc = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
        assert svc["schedulingStrategy"] == "DAEMON"
        assert wait_for(lambda: ecs.describe_services(cluster=cluster, services=[name])
                        ["services"][0]["desiredCount"] == 2)


def test_cli_waiter_services_stable(shared_server, ecs, unique):
    cluster = unique("waiter")
    ecs.create_cluster(clusterName=cluster)
    add_instance(ecs, cluster)
    family = unique("waiterfam")
    tiny_td(ecs, family)
    name = unique("api")
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=family, desiredCount=1)
    with Agents(ecs, cluster):
        assert wait_for(lambda: ecs.describe_services(cluster=cluster, services=[name])
                        ["services"][0]["runningCount"] == 1)
        # The real CLI's waiter (polls every 15 s; a stable service passes on the first poll).
        rc, out = shared_server.aws("ecs", "wait", "services-stable", "--cluster", cluster,
                                    "--services", name)
        assert rc == 0, out
