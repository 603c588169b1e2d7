"""Task definitions through boto3: register, validate, describe, deregister, list."""

import copy
import threading

import pytest

from berth_harness import is_subset, simple_task_definition, task_definition_arn


def rich_task_definition(family):
    """A definition using most ContainerDefinition members, as people write them."""
    return {
        "family": family,
        "taskRoleArn": "arn:aws:iam::123456789012:role/app-task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "networkMode": "bridge",
        "volumes": [
            {"name": "data", "host": {"sourcePath": "/var/lib/app"}},
            {"name": "scratch", "dockerVolumeConfiguration": {
                "scope": "task", "driver": "local", "labels": {"purpose": "tmp"}}},
        ],
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:stack == prod"}],
        "pidMode": "task",
        "ipcMode": "task",
        "containerDefinitions": [
            {
                "name": "web",
                "image": "nginx:1.25",
                "cpu": 256,
                "memory": 512,
                "memoryReservation": 256,
                "essential": True,
                "portMappings": [
                    {"containerPort": 80, "hostPort": 8080, "protocol": "tcp"},
                    {"containerPort": 53, "hostPort": 5353, "protocol": "udp"},
                ],
                "environment": [{"name": "MODE", "value": "prod"}, {"name": "EMPTY", "value": ""}],
                "environmentFiles": [{"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}],
                "secrets": [{"name": "DB_PASSWORD",
                             "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/db"}],
                "mountPoints": [
                    {"sourceVolume": "data", "containerPath": "/data", "readOnly": False},
                    {"sourceVolume": "scratch", "containerPath": "/tmp/scratch", "readOnly": True},
                ],
                "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                                "interval": 10, "timeout": 3, "retries": 4, "startPeriod": 15},
                "dependsOn": [{"containerName": "init", "condition": "SUCCESS"},
                              {"containerName": "sidecar", "condition": "HEALTHY"}],
                "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
                "logConfiguration": {"logDriver": "json-file",
                                     "options": {"max-size": "10m", "max-file": "3"}},
                "dockerLabels": {"com.example.team": "web", "version": "7"},
                "linuxParameters": {
                    "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
                    "initProcessEnabled": True,
                    "sharedMemorySize": 64,
                    "tmpfs": [{"containerPath": "/run", "size": 16, "mountOptions": ["noexec"]}],
                },
                "command": ["nginx", "-g", "daemon off;"],
                "entryPoint": ["/docker-entrypoint.sh"],
                "workingDirectory": "/usr/share/nginx",
                "user": "101",
                "hostname": "web",
                "extraHosts": [{"hostname": "db.local", "ipAddress": "10.0.0.5"}],
                "dnsServers": ["10.0.0.2"],
                "dnsSearchDomains": ["example.internal"],
                "links": ["sidecar:side"],
                "readonlyRootFilesystem": False,
                "privileged": False,
                "interactive": False,
                "pseudoTerminal": False,
                "startTimeout": 30,
                "stopTimeout": 20,
                "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
            },
            {
                "name": "sidecar",
                "image": "busybox:latest",
                "memoryReservation": 32,
                "essential": True,
                "healthCheck": {"command": ["CMD", "true"]},
                "volumesFrom": [{"sourceContainer": "web", "readOnly": True}],
            },
            {
                "name": "init",
                "image": "busybox:latest",
                "memory": 16,
                "essential": False,
                "command": ["sh", "-c", "echo ready"],
            },
        ],
    }


def test_register_revisions_and_round_trip(ecs, unique):
    family = unique("rich")
    sent = rich_task_definition(family)
    tags = [{"key": "app", "value": "web"}]
    out = ecs.register_task_definition(**copy.deepcopy(sent), tags=tags)
    td = out["taskDefinition"]
    assert out["tags"] == tags
    assert td["taskDefinitionArn"] == task_definition_arn(family, 1)
    assert td["revision"] == 1
    assert td["status"] == "ACTIVE"
    assert "EC2" in td["compatibilities"]
    assert td["registeredAt"] is not None
    for member in ("family", "taskRoleArn", "executionRoleArn", "networkMode", "volumes",
                   "placementConstraints", "pidMode", "ipcMode", "containerDefinitions"):
        is_subset(sent[member], td[member], member)

    # The server's ECS defaults: healthCheck timings, cpu 0, empty lists, tcp protocol.
    side = td["containerDefinitions"][1]
    assert side["healthCheck"] == {"command": ["CMD", "true"], "interval": 30, "timeout": 5,
                                   "retries": 3}
    assert side["cpu"] == 0 and side["environment"] == [] and side["mountPoints"] == []
    required = {a["name"] for a in td["requiresAttributes"]}
    assert "ecs.capability.container-health-check" in required
    assert "com.amazonaws.ecs.capability.logging-driver.json-file" in required
    assert "ecs.capability.container-ordering" in required

    # Describing returns the same document.
    described = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
    assert described == td

    r2 = ecs.register_task_definition(**simple_task_definition(family))["taskDefinition"]
    r3 = ecs.register_task_definition(**simple_task_definition(family))["taskDefinition"]
    assert (r2["revision"], r3["revision"]) == (2, 3)
    assert r3["taskDefinitionArn"] == task_definition_arn(family, 3)


def test_describe_by_family_revision_and_arn_with_tags(ecs, unique):
    family = unique("desc")
    ecs.register_task_definition(**simple_task_definition(family),
                                 tags=[{"key": "env", "value": "dev"}])
    ecs.register_task_definition(**simple_task_definition(family))
    latest = ecs.describe_task_definition(taskDefinition=family)
    assert latest["taskDefinition"]["revision"] == 2
    by_rev = ecs.describe_task_definition(taskDefinition=f"{family}:1", include=["TAGS"])
    assert by_rev["taskDefinition"]["revision"] == 1
    assert by_rev["tags"] == [{"key": "env", "value": "dev"}]
    by_arn = ecs.describe_task_definition(taskDefinition=task_definition_arn(family, 1))
    assert by_arn["taskDefinition"] == by_rev["taskDefinition"]
    assert by_arn.get("tags", []) == []  # not included unless asked

    for missing in (f"{family}:9", unique("nofamily")):
        with pytest.raises(ecs.exceptions.ClientException) as e:
            ecs.describe_task_definition(taskDefinition=missing)
        assert "Unable to describe task definition" in e.value.response["Error"]["Message"]


def test_deregister_makes_inactive_but_describable(ecs, unique):
    family = unique("dereg")
    ecs.register_task_definition(**simple_task_definition(family))
    ecs.register_task_definition(**simple_task_definition(family))
    out = ecs.deregister_task_definition(taskDefinition=f"{family}:2")["taskDefinition"]
    assert out["status"] == "INACTIVE" and out["deregisteredAt"] is not None
    assert ecs.describe_task_definition(taskDefinition=f"{family}:2")["taskDefinition"]["status"] \
        == "INACTIVE"
    # The latest ACTIVE revision is what a bare family names now.
    assert ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["revision"] == 1
    # Revision numbers never repeat.
    assert ecs.register_task_definition(**simple_task_definition(family))["taskDefinition"][
        "revision"] == 3
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.deregister_task_definition(taskDefinition=f"{family}:99")


def _container(name="app", **kw):
    c = {"name": name, "image": "busybox:latest", "memory": 64}
    c.update(kw)
    return c


INVALID = {
    "no-essential": (dict(containerDefinitions=[_container(essential=False)]), "essential"),
    "no-memory": (dict(containerDefinitions=[{"name": "app", "image": "busybox"}]),
                  "'memory' or 'memoryReservation'"),
    "memory-below-reservation": (dict(containerDefinitions=[_container(memory=64,
                                                                       memoryReservation=128)]),
                                 "memoryReservation"),
    "bad-family": (dict(family="bad family!"), "Family"),
    "eleven-containers": (dict(containerDefinitions=[_container(f"c{i}") for i in range(11)]),
                          "at most 10"),
    "depends-on-unknown": (dict(containerDefinitions=[
        _container(dependsOn=[{"containerName": "ghost", "condition": "START"}])]), "ghost"),
    "healthy-without-healthcheck": (dict(containerDefinitions=[
        _container("a", dependsOn=[{"containerName": "b", "condition": "HEALTHY"}]),
        _container("b")]), "healthCheck"),
    "healthcheck-interval-4": (dict(containerDefinitions=[
        _container(healthCheck={"command": ["CMD", "true"], "interval": 4})]), "interval"),
    "awsvpc-host-port": (dict(networkMode="awsvpc", containerDefinitions=[
        _container(portMappings=[{"containerPort": 80, "hostPort": 8080}])]), "host ports"),
    "fargate-bad-size": (dict(networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                              cpu="256", memory="4096"), "Fargate"),
    "fargate-bad-cpu": (dict(networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
                             cpu="300", memory="1024"), "Fargate"),
    "mount-unknown-volume": (dict(containerDefinitions=[
        _container(mountPoints=[{"sourceVolume": "nope", "containerPath": "/x"}])]), "nope"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_definitions_are_client_exceptions(ecs, unique, case):
    overrides, needle = INVALID[case]
    req = simple_task_definition(unique("inv"))
    req.update(copy.deepcopy(overrides))
    with pytest.raises(ecs.exceptions.ClientException) as e:
        ecs.register_task_definition(**req)
    err = e.value.response["Error"]
    assert err["Code"] == "ClientException"
    assert needle in err["Message"], err["Message"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_valid_fargate_definition(ecs, unique):
    family = unique("fg")
    td = ecs.register_task_definition(
        family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="512",
        memory="2048", containerDefinitions=[
            {"name": "app", "image": "busybox", "portMappings": [{"containerPort": 8080}]}],
    )["taskDefinition"]
    assert "FARGATE" in td["compatibilities"]
    assert td["cpu"] == "512" and td["memory"] == "2048"
    assert td["containerDefinitions"][0]["portMappings"] == [
        {"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}]


def test_list_task_definitions_filters_sort_and_paging(server):
    ecs = server.client()
    for family, n in (("web", 3), ("web-api", 2), ("worker", 1)):
        for _ in range(n):
            ecs.register_task_definition(**simple_task_definition(family))
    ecs.deregister_task_definition(taskDefinition="web:2")

    arns = ecs.list_task_definitions()["taskDefinitionArns"]
    assert arns == [task_definition_arn("web", 1), task_definition_arn("web", 3),
                    task_definition_arn("web-api", 1), task_definition_arn("web-api", 2),
                    task_definition_arn("worker", 1)]
    assert ecs.list_task_definitions(familyPrefix="web")["taskDefinitionArns"] == [
        task_definition_arn("web", 1), task_definition_arn("web", 3)]
    assert ecs.list_task_definitions(familyPrefix="web", sort="DESC")["taskDefinitionArns"] == [
        task_definition_arn("web", 3), task_definition_arn("web", 1)]
    assert ecs.list_task_definitions(status="INACTIVE")["taskDefinitionArns"] == [
        task_definition_arn("web", 2)]

    for sort in ("ASC", "DESC"):
        pages = list(ecs.get_paginator("list_task_definitions").paginate(
            sort=sort, PaginationConfig={"PageSize": 2}))
        assert [len(p["taskDefinitionArns"]) for p in pages] == [2, 2, 1]
        got = [a for p in pages for a in p["taskDefinitionArns"]]
        assert got == (arns if sort == "ASC" else arns[::-1])


def test_list_task_definition_families(server):
    ecs = server.client()
    for family in ("alpha", "alpine", "beta"):
        ecs.register_task_definition(**simple_task_definition(family))
    ecs.deregister_task_definition(taskDefinition="beta:1")

    fams = lambda **kw: ecs.list_task_definition_families(**kw)["families"]  # noqa: E731
    assert fams() == ["alpha", "alpine"]
    assert fams(status="ACTIVE") == ["alpha", "alpine"]
    assert fams(status="INACTIVE") == ["beta"]
    assert fams(status="ALL") == ["alpha", "alpine", "beta"]
    assert fams(familyPrefix="alp") == ["alpha", "alpine"]
    assert fams(familyPrefix="b", status="ALL") == ["beta"]
    pages = list(ecs.get_paginator("list_task_definition_families").paginate(
        status="ALL", PaginationConfig={"PageSize": 1}))
    assert [p["families"] for p in pages] == [["alpha"], ["alpine"], ["beta"]]


def test_task_cpu_and_memory_strings_are_converted_to_units(ecs, unique):
    # The ECS API reference: "String values are converted to an integer indicating the CPU units
    # [MiB] when the task definition is registered." ("1 vCPU" -> "1024", "2 GB" -> "2048").
    td = ecs.register_task_definition(
        family=unique("units"), cpu="1 vCPU", memory="2 GB",
        containerDefinitions=[{"name": "app", "image": "busybox"}])["taskDefinition"]
    assert (td["cpu"], td["memory"]) == ("1024", "2048")


def test_concurrent_registrations_of_one_family_get_distinct_revisions(shared_server, unique):
    family = unique("race")
    revisions, errors, lock = [], [], threading.Lock()

    def register(n):
        client = shared_server.client()
        for _ in range(n):
            try:
                rev = client.register_task_definition(**simple_task_definition(family))[
                    "taskDefinition"]["revision"]
                with lock:
                    revisions.append(rev)
            except Exception as e:  # collected and asserted below
                with lock:
                    errors.append(repr(e))

    threads = [threading.Thread(target=register, args=(10,)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sorted(revisions) == list(range(1, 41))
