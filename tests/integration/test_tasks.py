"""Tasks through boto3 and the AWS CLI: RunTask and StartTask answers, DescribeTasks, ListTasks
filters and paging, StopTask, retention of STOPPED tasks, and DeleteCluster while tasks exist.

Placement itself (strategies, constraints, failure reasons, accounting) is in test_placement.py.
Instances are registered through the API, so tasks stay PENDING (no agent takes them).
"""

import itertools
import re
import time

import pytest

from berth_harness import VERSION_INFO, identity_document, total_resources

ACCOUNT_REGION = "us-east-1:123456789012"
TASK_ARN_RE = r"arn:aws:ecs:us-east-1:123456789012:task/{cluster}/[0-9a-f]{{32}}$"
_EC2_IDS = itertools.count(0x0b000000)


def add_instance(ecs, cluster, *, cpu=4096, memory=4096, az="us-east-1a", attributes=()):
    ec2 = "i-%017x" % next(_EC2_IDS)
    return ecs.register_container_instance(
        cluster=cluster, instanceIdentityDocument=identity_document(ec2, az=az),
        totalResources=total_resources(cpu=cpu, memory=memory), versionInfo=VERSION_INFO,
        attributes=[dict(name=n, **({"value": v} if v is not None else {}))
                    for n, v in attributes])["containerInstance"]["containerInstanceArn"]


def tiny_td(ecs, family, memory=32, **kw):
    return ecs.register_task_definition(family=family, containerDefinitions=[
        {"name": "app", "image": "busybox:latest", "cpu": 10, "memory": memory}],
        **kw)["taskDefinition"]


def cluster_with_instances(ecs, unique, prefix, n=1, **kw):
    cluster = unique(prefix)
    ecs.create_cluster(clusterName=cluster)
    return cluster, [add_instance(ecs, cluster, **kw) for _ in range(n)]


def list_all(ecs, **kw):
    arns, token, pages = [], None, 0
    while True:
        page = ecs.list_tasks(**kw, **({"nextToken": token} if token else {}))
        pages += 1
        arns += page["taskArns"]
        token = page.get("nextToken")
        if not token:
            return arns, pages


# ---- RunTask

def test_run_task_answer(ecs, unique):
    cluster, (inst,) = cluster_with_instances(ecs, unique, "run", az="us-east-1b")
    fam = unique("run")
    td = tiny_td(ecs, fam)
    out = ecs.run_task(cluster=cluster, taskDefinition=fam, count=2, startedBy="me",
                       tags=[{"key": "team", "value": "a"}], enableExecuteCommand=False)
    assert out["failures"] == [] and len(out["tasks"]) == 2
    t = out["tasks"][0]
    assert re.match(TASK_ARN_RE.format(cluster=cluster), t["taskArn"]), t["taskArn"]
    assert t["clusterArn"] == f"arn:aws:ecs:{ACCOUNT_REGION}:cluster/{cluster}"
    assert t["taskDefinitionArn"] == td["taskDefinitionArn"]
    assert t["containerInstanceArn"] == inst
    assert t["lastStatus"] == "PENDING" and t["desiredStatus"] == "RUNNING"
    assert t["launchType"] == "EC2" and t["startedBy"] == "me"
    assert t["group"] == f"family:{fam}"
    assert t["availabilityZone"] == "us-east-1b"
    assert (t["cpu"], t["memory"]) == ("10", "32")
    assert t["tags"] == [{"key": "team", "value": "a"}]
    assert [c["name"] for c in t["containers"]] == ["app"]
    assert t["containers"][0]["lastStatus"] == "PENDING"
    assert t["containers"][0]["taskArn"] == t["taskArn"]
    assert t["overrides"]["containerOverrides"] == []
    assert "_berth" not in t  # internal bookkeeping never leaks
    assert out["tasks"][0]["taskArn"] != out["tasks"][1]["taskArn"]
    c = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
    assert c["pendingTasksCount"] == 2 and c["runningTasksCount"] == 0
    # A revision, a full ARN and a group.
    out = ecs.run_task(cluster=cluster, taskDefinition=td["taskDefinitionArn"], group="batch")
    assert out["tasks"][0]["group"] == "batch"


def test_run_task_awsvpc_starts_provisioning(ecs, unique):
    cluster, _ = cluster_with_instances(ecs, unique, "vpc",
                                        attributes=[("ecs.capability.task-eni", None)])
    fam = unique("vpc")
    ecs.register_task_definition(family=fam, networkMode="awsvpc", containerDefinitions=[
        {"name": "app", "image": "busybox", "memory": 32, "portMappings": [{"containerPort": 80}]}])
    out = ecs.run_task(cluster=cluster, taskDefinition=fam, networkConfiguration={
        "awsvpcConfiguration": {"subnets": ["subnet-1"]}})
    assert out["tasks"][0]["lastStatus"] == "PROVISIONING"


def test_run_task_bad_requests(ecs, unique):
    cluster, _ = cluster_with_instances(ecs, unique, "bad")
    fam = unique("bad")
    tiny_td(ecs, fam)
    for count in (0, 11):
        with pytest.raises(ecs.exceptions.InvalidParameterException):
            ecs.run_task(cluster=cluster, taskDefinition=fam, count=count)
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.run_task(cluster=cluster, taskDefinition=unique("nosuch"))
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.run_task(cluster=unique("nocluster"), taskDefinition=fam)
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.run_task(cluster=cluster, taskDefinition=fam, launchType="FARGATE")
    ecs.deregister_task_definition(taskDefinition=f"{fam}:1")
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.run_task(cluster=cluster, taskDefinition=f"{fam}:1")
    # Nothing was placed by any of these.
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == []


# ---- StartTask

def test_start_task_on_named_instances(ecs, unique):
    cluster, (a, b, c) = cluster_with_instances(ecs, unique, "start", n=3, memory=100)
    fam = unique("start")
    tiny_td(ecs, fam, memory=60)
    out = ecs.start_task(cluster=cluster, taskDefinition=fam, containerInstances=[a, c],
                         startedBy="ops", tags=[{"key": "k", "value": "v"}])
    assert out["failures"] == []
    assert sorted(t["containerInstanceArn"] for t in out["tasks"]) == sorted([a, c])
    assert all(t["startedBy"] == "ops" and t["lastStatus"] == "PENDING" for t in out["tasks"])
    # By id; twice the same instance with room for one; an unknown one.
    unknown = "0" * 32
    out = ecs.start_task(cluster=cluster, taskDefinition=fam,
                         containerInstances=[b.rsplit("/", 1)[1], b, unknown])
    assert [t["containerInstanceArn"] for t in out["tasks"]] == [b]
    assert sorted((f["arn"], f["reason"]) for f in out["failures"]) == sorted([
        (b, "RESOURCE:MEMORY"),
        (f"arn:aws:ecs:{ACCOUNT_REGION}:container-instance/{cluster}/{unknown}", "MISSING")])
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.start_task(cluster=cluster, taskDefinition=fam, containerInstances=[a] * 11)
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.start_task(cluster=cluster, taskDefinition=fam, containerInstances=[])


# ---- DescribeTasks / ListTasks

def test_describe_tasks(ecs, unique):
    cluster, _ = cluster_with_instances(ecs, unique, "desc")
    fam = unique("desc")
    tiny_td(ecs, fam)
    t = ecs.run_task(cluster=cluster, taskDefinition=fam,
                     tags=[{"key": "a", "value": "1"}])["tasks"][0]
    tid = t["taskArn"].rsplit("/", 1)[1]
    missing = "f" * 32
    out = ecs.describe_tasks(cluster=cluster, tasks=[t["taskArn"], tid, missing])
    assert [x["taskArn"] for x in out["tasks"]] == [t["taskArn"]] * 2
    assert "tags" not in out["tasks"][0]
    assert out["failures"] == [{"arn": f"arn:aws:ecs:{ACCOUNT_REGION}:task/{cluster}/{missing}",
                                "reason": "MISSING"}]
    out = ecs.describe_tasks(cluster=cluster, tasks=[tid], include=["TAGS"])
    assert out["tasks"][0]["tags"] == [{"key": "a", "value": "1"}]
    # What RunTask answered is what DescribeTasks shows.
    got = out["tasks"][0]
    for k in ("taskArn", "containerInstanceArn", "lastStatus", "desiredStatus", "group", "cpu",
              "memory", "createdAt", "version", "taskDefinitionArn"):
        assert got[k] == t[k], k
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.describe_tasks(cluster=cluster, tasks=[])
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.describe_tasks(cluster=unique("nocluster"), tasks=[tid])


def test_list_tasks_filters_and_paging(ecs, unique):
    cluster, (a, b) = cluster_with_instances(ecs, unique, "list", n=2)
    web, job = unique("web"), unique("job")
    tiny_td(ecs, web)
    tiny_td(ecs, job)
    on_a = ecs.start_task(cluster=cluster, taskDefinition=web, containerInstances=[a, a, a],
                          startedBy="deployer")["tasks"]
    on_b = ecs.start_task(cluster=cluster, taskDefinition=job, containerInstances=[b, b],
                          startedBy="cron")["tasks"]
    svc = ecs.start_task(cluster=cluster, taskDefinition=web, containerInstances=[b],
                         group="service:api")["tasks"]
    every = {t["taskArn"] for t in on_a + on_b + svc}
    assert len(every) == 6

    arns, pages = list_all(ecs, cluster=cluster, maxResults=4)
    assert len(arns) == 6 and set(arns) == every and pages == 2
    arns, pages = list_all(ecs, cluster=cluster, maxResults=1)
    assert set(arns) == every and len(arns) == 6 and pages == 6

    def listed(**kw):
        return set(list_all(ecs, cluster=cluster, **kw)[0])

    assert listed(containerInstance=a) == {t["taskArn"] for t in on_a}
    assert listed(containerInstance=b.rsplit("/", 1)[1]) == {t["taskArn"] for t in on_b + svc}
    assert listed(family=web) == {t["taskArn"] for t in on_a + svc}
    assert listed(family=job) == {t["taskArn"] for t in on_b}
    assert listed(startedBy="cron") == {t["taskArn"] for t in on_b}
    assert listed(serviceName="api") == {t["taskArn"] for t in svc}
    assert listed(family=unique("none")) == set()
    assert listed(desiredStatus="STOPPED") == set()
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.list_tasks(cluster=cluster, family=web, serviceName="api")

    stopped = ecs.stop_task(cluster=cluster, task=on_a[0]["taskArn"])["task"]
    assert listed(desiredStatus="STOPPED") == {stopped["taskArn"]}
    assert listed() == every - {stopped["taskArn"]}
    assert listed(containerInstance=a, desiredStatus="STOPPED") == {stopped["taskArn"]}


# ---- StopTask

def test_stop_task(ecs, unique):
    cluster, (inst,) = cluster_with_instances(ecs, unique, "stop")
    fam = unique("stop")
    tiny_td(ecs, fam)
    t = ecs.run_task(cluster=cluster, taskDefinition=fam)["tasks"][0]
    before = time.time()
    s = ecs.stop_task(cluster=cluster, task=t["taskArn"].rsplit("/", 1)[1],
                      reason="maintenance")["task"]
    assert s["taskArn"] == t["taskArn"]
    assert s["lastStatus"] == "STOPPED" and s["desiredStatus"] == "STOPPED"
    assert s["stopCode"] == "UserInitiated" and s["stoppedReason"] == "maintenance"
    assert s["stoppedAt"].timestamp() >= before - 5
    assert all(c["lastStatus"] == "STOPPED" for c in s["containers"])
    assert s["version"] > t["version"]
    d = ecs.describe_tasks(cluster=cluster, tasks=[t["taskArn"]])["tasks"][0]
    assert d["lastStatus"] == "STOPPED" and d["stoppedReason"] == "maintenance"
    c = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
    assert c["pendingTasksCount"] == 0 and c["runningTasksCount"] == 0
    # Stopping again answers the stopped task and changes nothing.
    again = ecs.stop_task(cluster=cluster, task=t["taskArn"])["task"]
    assert again["stoppedAt"] == s["stoppedAt"] and again["stoppedReason"] == "maintenance"
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.stop_task(cluster=cluster, task="0" * 32)
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.stop_task(cluster=cluster, task=t["taskArn"], reason="x" * 256)


def test_stopped_tasks_disappear_after_retention(make_server):
    srv = make_server(extra_args=["--task-retention-seconds", "2"])
    ecs = srv.client()
    ecs.create_cluster(clusterName="ret")
    add_instance(ecs, "ret")
    tiny_td(ecs, "ret")
    keep, gone = ecs.run_task(cluster="ret", taskDefinition="ret", count=2)["tasks"]
    ecs.stop_task(cluster="ret", task=gone["taskArn"])
    # Still visible right after stopping.
    out = ecs.describe_tasks(cluster="ret", tasks=[gone["taskArn"]])
    assert out["tasks"][0]["lastStatus"] == "STOPPED"
    deadline = time.monotonic() + 15  # retention 2 s + sweeps every 0.2 s + a loaded box
    while time.monotonic() < deadline:
        out = ecs.describe_tasks(cluster="ret", tasks=[gone["taskArn"], keep["taskArn"]])
        if out["failures"]:
            break
        time.sleep(0.25)
    assert [f["reason"] for f in out["failures"]] == ["MISSING"], out
    assert out["failures"][0]["arn"] == gone["taskArn"]
    # The task that is not stopped stays, however old.
    assert [t["taskArn"] for t in out["tasks"]] == [keep["taskArn"]]
    assert ecs.list_tasks(cluster="ret", desiredStatus="STOPPED")["taskArns"] == []
    assert ecs.list_tasks(cluster="ret")["taskArns"] == [keep["taskArn"]]


def test_delete_cluster_refused_while_tasks_are_not_stopped(ecs, unique):
    cluster, (inst,) = cluster_with_instances(ecs, unique, "del")
    fam = unique("del")
    tiny_td(ecs, fam)
    t = ecs.run_task(cluster=cluster, taskDefinition=fam)["tasks"][0]
    with pytest.raises(ecs.exceptions.ClusterContainsContainerInstancesException):
        ecs.delete_cluster(cluster=cluster)
    # Not without force while a task is on it.
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.deregister_container_instance(cluster=cluster, containerInstance=inst)
    ecs.deregister_container_instance(cluster=cluster, containerInstance=inst, force=True)
    with pytest.raises(ecs.exceptions.ClusterContainsTasksException):
        ecs.delete_cluster(cluster=cluster)
    ecs.stop_task(cluster=cluster, task=t["taskArn"])
    assert ecs.delete_cluster(cluster=cluster)["cluster"]["status"] == "INACTIVE"


# ---- the AWS CLI

def test_cli_task_round_trip(shared_server, ecs, unique):
    cluster, (inst,) = cluster_with_instances(ecs, unique, "clitasks")
    fam = unique("clitasks")
    tiny_td(ecs, fam)
    rc, out = shared_server.aws("ecs", "run-task", "--cluster", cluster, "--task-definition", fam,
                                "--count", "2", "--started-by", "cli",
                                "--tags", "key=env,value=test")
    assert rc == 0, out
    arns = [t["taskArn"] for t in out["tasks"]]
    assert len(arns) == 2 and all(t["containerInstanceArn"] == inst for t in out["tasks"])
    rc, out = shared_server.aws("ecs", "list-tasks", "--cluster", cluster, "--started-by", "cli")
    assert rc == 0 and sorted(out["taskArns"]) == sorted(arns), out
    # The CLI pages by itself with --page-size.
    rc, out = shared_server.aws("ecs", "list-tasks", "--cluster", cluster, "--page-size", "1")
    assert rc == 0 and sorted(out["taskArns"]) == sorted(arns), out
    rc, out = shared_server.aws("ecs", "describe-tasks", "--cluster", cluster, "--tasks", *arns,
                                "--include", "TAGS")
    assert rc == 0 and [t["tags"] for t in out["tasks"]] == [[{"key": "env", "value": "test"}]] * 2
    for arn in arns:
        rc, out = shared_server.aws("ecs", "stop-task", "--cluster", cluster, "--task", arn,
                                    "--reason", "cli stop")
        assert rc == 0 and out["task"]["lastStatus"] == "STOPPED", out
    rc, out = shared_server.aws("ecs", "wait", "tasks-stopped", "--cluster", cluster,
                                "--tasks", *arns)
    assert rc == 0, out
    rc, out = shared_server.aws("ecs", "start-task", "--cluster", cluster, "--task-definition",
                                fam, "--container-instances", inst)
    assert rc == 0 and out["tasks"][0]["containerInstanceArn"] == inst, out
