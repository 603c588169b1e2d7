"""Services against simulated instances (`berth sim-agents`): the real server and the real
WebSocket protocol, with no containers. 20 instances in 3 AZs; a 50-task service reaches steady
state (boto3's services_stable waiter), rolls to a new revision, and — with a failure rate — has
its failed tasks replaced.
"""

import os
import queue
import signal
import subprocess
import threading
import time

import pytest

from berth_harness import BERTH_BIN

INSTANCES = 20


class SimAgents:
    """`berth sim-agents` as a child process; start() returns once every instance is connected."""

    def __init__(self, server, cluster, workdir, **flags):
        cmd = [BERTH_BIN, "sim-agents", "--server", server.endpoint, "--cluster", cluster,
               "--credentials", server.credentials_file, "--count", str(INSTANCES)]
        for k, v in flags.items():
            cmd += ["--" + k.replace("_", "-"), str(v)]
        self.log = os.path.join(str(workdir), f"sim-{cluster}.stderr")
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL)
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l.decode()) for l in self.proc.stdout],
                         daemon=True).start()
        try:
            first = lines.get(timeout=20)
        except queue.Empty:
            self.stop()
            pytest.fail("sim-agents did not connect: " + open(self.log).read()[-2000:])
        assert "registered and connected" in first, first

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def fleet(server, tmp_path, unique):
    made = []

    def make(**flags):
        cluster = unique("sim")
        ecs = server.client()
        ecs.create_cluster(clusterName=cluster)
        made.append(SimAgents(server, cluster, tmp_path, **flags))
        return ecs, cluster

    yield make
    for s in made:
        assert s.stop() == 0


def register(ecs, family, image):
    return ecs.register_task_definition(
        family=family,
        containerDefinitions=[{
            "name": "web", "image": image, "cpu": 128, "memory": 256, "essential": True,
            "portMappings": [{"containerPort": 80, "hostPort": 0}]}],
    )["taskDefinition"]["taskDefinitionArn"]


def wait_stable(ecs, cluster, name, timeout=20):
    ecs.get_waiter("services_stable").wait(
        cluster=cluster, services=[name],
        WaiterConfig={"Delay": 1, "MaxAttempts": timeout})


def test_service_scales_and_rolls_on_simulated_instances(fleet, unique):
    ecs, cluster = fleet(start_latency_ms=100, seed=7)
    instances = ecs.describe_container_instances(
        cluster=cluster, containerInstances=ecs.list_container_instances(
            cluster=cluster)["containerInstanceArns"])["containerInstances"]
    assert len(instances) == INSTANCES
    assert all(i["agentConnected"] for i in instances)
    azs = {a["value"] for i in instances for a in i["attributes"]
           if a["name"] == "ecs.availability-zone"}
    assert azs == {"us-east-1a", "us-east-1b", "us-east-1c"}

    family = unique("simweb")
    v1 = register(ecs, family, "web:1")
    v2 = register(ecs, family, "web:2")
    name = unique("svc")
    ecs.create_service(
        cluster=cluster, serviceName=name, taskDefinition=v1, desiredCount=50,
        placementStrategy=[{"type": "spread", "field": "attribute:ecs.availability-zone"},
                           {"type": "binpack", "field": "memory"}])
    wait_stable(ecs, cluster, name)
    svc = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
    assert svc["runningCount"] == 50 and len(svc["deployments"]) == 1
    tasks = ecs.describe_tasks(cluster=cluster, tasks=ecs.list_tasks(
        cluster=cluster, serviceName=name)["taskArns"])["tasks"]
    assert len(tasks) == 50
    assert all(t["lastStatus"] == "RUNNING" for t in tasks)
    binding = tasks[0]["containers"][0]["networkBindings"][0]
    assert binding["containerPort"] == 80 and binding["hostPort"] >= 32768

    ecs.update_service(cluster=cluster, service=name, taskDefinition=v2)
    deadline = time.time() + 30
    while time.time() < deadline:
        svc = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
        (primary,) = [d for d in svc["deployments"] if d["status"] == "PRIMARY"]
        assert svc["runningCount"] <= 100  # maximumPercent 200
        if len(svc["deployments"]) == 1 and primary["rolloutState"] == "COMPLETED":
            break
        time.sleep(0.5)
    assert primary["taskDefinition"] == v2 and primary["rolloutState"] == "COMPLETED"
    assert svc["runningCount"] == 50
    wait_stable(ecs, cluster, name)


def test_failed_tasks_are_replaced(fleet, unique):
    ecs, cluster = fleet(start_latency_ms=100, failure_rate=0.2, seed=11)
    family = unique("simflaky")
    td = register(ecs, family, "flaky:1")
    name = unique("svc")
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=td, desiredCount=20)
    wait_stable(ecs, cluster, name, timeout=30)
    stopped = ecs.list_tasks(cluster=cluster, serviceName=name,
                             desiredStatus="STOPPED")["taskArns"]
    assert stopped, "with a 20% failure rate some of the first tasks fail"
    for t in ecs.describe_tasks(cluster=cluster, tasks=stopped[:100])["tasks"]:
        assert t["stopCode"] == "EssentialContainerExited"
        assert t["containers"][0]["exitCode"] == 1
    svc = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
    assert svc["runningCount"] == 20
