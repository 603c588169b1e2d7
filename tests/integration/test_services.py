"""Services through boto3 and the AWS CLI against the real server: CreateService, DescribeServices,
ListServices, UpdateService, DeleteService shapes; the service controller starting tasks; and the
services_stable waiter once the tasks run. Instances are registered through the API (no agent):
the test moves tasks on with SubmitTaskStateChange, as an agent would.
"""

import time

import pytest

from test_tasks import add_instance, tiny_td

SERVICE_ARN = "arn:aws:ecs:us-east-1:123456789012:service/{cluster}/{name}"


def wait_for(fn, timeout=15):
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value or time.time() > deadline:
            return value
        time.sleep(0.1)


def service_tasks(ecs, cluster, name, status="RUNNING"):
    return ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus=status)["taskArns"]


def run_all(ecs, cluster, arns):
    for arn in arns:
        ecs.submit_task_state_change(cluster=cluster, task=arn, status="RUNNING")


@pytest.fixture
def setup(ecs, unique):
    cluster = unique("svc")
    ecs.create_cluster(clusterName=cluster)
    for _ in range(2):
        add_instance(ecs, cluster)
    family = unique("svcfam")
    tiny_td(ecs, family)
    tiny_td(ecs, family, memory=48)
    return cluster, family


def test_service_lifecycle_and_waiter(ecs, setup, unique):
    cluster, family = setup
    name = unique("web")
    out = ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=family + ":1",
                             desiredCount=2, clientToken="tok-" + name,
                             tags=[{"key": "team", "value": "a"}])["service"]
    assert out["serviceArn"] == SERVICE_ARN.format(cluster=cluster, name=name)
    assert out["status"] == "ACTIVE"
    assert out["schedulingStrategy"] == "REPLICA"
    assert out["deploymentConfiguration"]["maximumPercent"] == 200
    assert out["deploymentConfiguration"]["minimumHealthyPercent"] == 100
    (dep,) = out["deployments"]
    assert dep["status"] == "PRIMARY" and dep["rolloutState"] == "IN_PROGRESS"
    assert dep["id"].startswith("ecs-svc/") and len(dep["id"]) == 27
    again = ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=family + ":1",
                               desiredCount=2, clientToken="tok-" + name,
                               tags=[{"key": "team", "value": "a"}])["service"]
    assert again["deployments"][0]["id"] == dep["id"]
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="not idempotent"):
        ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=family,
                           desiredCount=1)

    # The controller starts the tasks; an agent's reports make them RUNNING.
    arns = wait_for(lambda: len(service_tasks(ecs, cluster, name)) == 2
                    and service_tasks(ecs, cluster, name))
    assert arns and len(arns) == 2
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    assert {t["group"] for t in tasks} == {"service:" + name}
    assert {t["startedBy"] for t in tasks} == {dep["id"]}
    run_all(ecs, cluster, arns)
    ecs.get_waiter("services_stable").wait(cluster=cluster, services=[name],
                                           WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    desc = ecs.describe_services(cluster=cluster, services=[name, "nope"], include=["TAGS"])
    (svc,) = desc["services"]
    assert svc["runningCount"] == 2 and svc["pendingCount"] == 0
    assert svc["tags"] == [{"key": "team", "value": "a"}]
    assert desc["failures"] == [{"arn": SERVICE_ARN.format(cluster=cluster, name="nope"),
                                 "reason": "MISSING"}]
    msgs = [e["message"] for e in svc["events"]]
    assert msgs[0] == "(service %s) has reached a steady state." % name
    assert msgs[-1].startswith("(service %s) has started 2 tasks: (task " % name)
    assert wait_for(lambda: ecs.describe_services(cluster=cluster, services=[name])
                    ["services"][0]["deployments"][0]["rolloutState"] == "COMPLETED")

    assert ecs.list_services(cluster=cluster)["serviceArns"] == [svc["serviceArn"]]
    assert ecs.list_services(cluster=cluster, schedulingStrategy="DAEMON")["serviceArns"] == []
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["activeServicesCount"] == 1

    # A new revision rolls out: two deployments until the old tasks are gone.
    up = ecs.update_service(cluster=cluster, service=name, taskDefinition=family + ":2")["service"]
    assert [d["status"] for d in up["deployments"]] == ["PRIMARY", "ACTIVE"]
    new_id = up["deployments"][0]["id"]

    def new_tasks():
        arns = service_tasks(ecs, cluster, name)
        tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []
        fresh = [t["taskArn"] for t in tasks if t["startedBy"] == new_id]
        return len(fresh) == 2 and fresh
    fresh = wait_for(new_tasks)
    assert fresh
    run_all(ecs, cluster, fresh)
    # The old tasks were taken by an "agent" (the reports above), so the controller asks for them
    # to stop and the agent reports STOPPED.
    old = wait_for(lambda: len(service_tasks(ecs, cluster, name, "STOPPED")) == 2
                   and service_tasks(ecs, cluster, name, "STOPPED"))
    assert sorted(old) == sorted(arns)
    for arn in old:
        ecs.submit_task_state_change(cluster=cluster, task=arn, status="STOPPED")
    ecs.get_waiter("services_stable").wait(cluster=cluster, services=[name],
                                           WaiterConfig={"Delay": 1, "MaxAttempts": 20})
    svc = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
    assert svc["taskDefinition"].endswith(family + ":2")
    assert sorted(service_tasks(ecs, cluster, name)) == sorted(fresh)

    # Delete: refused while scaled above 0 unless forced; DRAINING, then INACTIVE.
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="scaled above 0"):
        ecs.delete_service(cluster=cluster, service=name)
    gone = ecs.delete_service(cluster=cluster, service=name, force=True)["service"]
    assert gone["status"] == "DRAINING"
    # No agent: the stops are reported by the test.
    for arn in fresh:
        ecs.submit_task_state_change(cluster=cluster, task=arn, status="STOPPED")
    assert wait_for(lambda: ecs.describe_services(cluster=cluster, services=[name])
                    ["services"][0]["status"] == "INACTIVE")
    ecs.get_waiter("services_inactive").wait(cluster=cluster, services=[name],
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 10})
    with pytest.raises(ecs.exceptions.ServiceNotActiveException):
        ecs.update_service(cluster=cluster, service=name, desiredCount=1)
    with pytest.raises(ecs.exceptions.ServiceNotFoundException):
        ecs.update_service(cluster=cluster, service="missing", desiredCount=1)


def test_unplaceable_service_event(ecs, setup, unique):
    cluster, family = setup
    big = unique("big")
    tiny_td(ecs, big, memory=100000)
    name = unique("big")
    ecs.create_service(cluster=cluster, serviceName=name, taskDefinition=big, desiredCount=1)
    events = wait_for(lambda: ecs.describe_services(cluster=cluster, services=[name])
                      ["services"][0]["events"])
    assert "was unable to place a task because no container instance met all of its " \
           "requirements. The closest matching (container-instance " in events[0]["message"]
    assert "has insufficient memory available" in events[0]["message"]


def test_aws_cli_services(shared_server, ecs, setup, unique):
    cluster, family = setup
    name = unique("cli")
    rc, out = shared_server.aws("ecs", "create-service", "--cluster", cluster, "--service-name",
                                name, "--task-definition", family, "--desired-count", "1",
                                "--deployment-configuration",
                                "maximumPercent=100,minimumHealthyPercent=0,"
                                "deploymentCircuitBreaker={enable=true,rollback=true}")
    assert rc == 0, out
    assert out["service"]["deploymentConfiguration"]["deploymentCircuitBreaker"] == \
        {"enable": True, "rollback": True}
    rc, out = shared_server.aws("ecs", "describe-services", "--cluster", cluster, "--services", name)
    assert rc == 0, out
    assert out["services"][0]["desiredCount"] == 1
    rc, out = shared_server.aws("ecs", "update-service", "--cluster", cluster, "--service", name,
                                "--desired-count", "0")
    assert rc == 0, out
    assert out["service"]["desiredCount"] == 0
    rc, out = shared_server.aws("ecs", "delete-service", "--cluster", cluster, "--service", name)
    assert rc == 0, out
    assert out["service"]["status"] == "DRAINING"
    rc, err = shared_server.aws("ecs", "describe-services", "--cluster", "nope-" + name,
                                "--services", name)
    assert rc == 254 and "ClusterNotFoundException" in err
