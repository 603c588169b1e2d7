"""Container instances through boto3: register, re-register, describe, list, drain, deregister."""

import re

import pytest

from berth_harness import VERSION_INFO, identity_document, register_instance, total_resources

ARN_RE = r"arn:aws:ecs:us-east-1:123456789012:container-instance/{cluster}/([0-9a-f]{{32}}|[A-Za-z0-9-]+)$"


def resources_by_name(resources):
    return {r["name"]: r for r in resources}


def test_register_and_describe(ecs, unique):
    cluster = unique("ci")
    ecs.create_cluster(clusterName=cluster)
    ci = register_instance(
        ecs, cluster, "i-0aaaaaaaaaaaaaaa1",
        totalResources=total_resources(cpu=4096, memory=7680, ports=["22", "80"],
                                       udp_ports=["53"]),
        attributes=[{"name": "stack", "value": "prod"}, {"name": "gpu"}],
        tags=[{"key": "owner", "value": "ops"}])
    arn = ci["containerInstanceArn"]
    assert re.match(ARN_RE.format(cluster=cluster), arn), arn
    assert ci["ec2InstanceId"] == "i-0aaaaaaaaaaaaaaa1"
    assert ci["status"] == "ACTIVE"
    assert ci["agentConnected"] is True
    assert ci["versionInfo"] == VERSION_INFO
    reg = resources_by_name(ci["registeredResources"])
    assert reg["CPU"]["integerValue"] == 4096 and reg["CPU"]["type"] == "INTEGER"
    assert reg["MEMORY"]["integerValue"] == 7680
    assert sorted(reg["PORTS"]["stringSetValue"]) == ["22", "80"]
    assert reg["PORTS_UDP"]["stringSetValue"] == ["53"]
    rem = resources_by_name(ci["remainingResources"])
    assert rem["CPU"]["integerValue"] == 4096 and rem["MEMORY"]["integerValue"] == 7680
    attrs = {a["name"]: a.get("value") for a in ci["attributes"]}
    assert attrs["stack"] == "prod" and "gpu" in attrs
    assert attrs["ecs.availability-zone"] == "us-east-1a"
    assert attrs["ecs.instance-type"] == "t3.medium"
    assert attrs["ecs.ami-id"] == "ami-0abc"

    ident = arn.rsplit("/", 1)[1]
    out = ecs.describe_container_instances(cluster=cluster,
                                           containerInstances=[arn, ident, "0" * 32],
                                           include=["TAGS"])
    assert [c["containerInstanceArn"] for c in out["containerInstances"]] == [arn, arn]
    assert out["containerInstances"][0]["tags"] == [{"key": "owner", "value": "ops"}]
    assert out["containerInstances"][0]["runningTasksCount"] == 0
    assert out["failures"] == [{
        "arn": f"arn:aws:ecs:us-east-1:123456789012:container-instance/{cluster}/{'0' * 32}",
        "reason": "MISSING"}]


def test_reregistration_keeps_arn(ecs, unique):
    cluster = unique("rereg")
    ecs.create_cluster(clusterName=cluster)
    first = register_instance(ecs, cluster, "i-0bbbbbbbbbbbbbbb1")
    again = register_instance(ecs, cluster, "i-0bbbbbbbbbbbbbbb1",
                              containerInstanceArn=first["containerInstanceArn"],
                              totalResources=total_resources(cpu=1024, memory=2000))
    assert again["containerInstanceArn"] == first["containerInstanceArn"]
    assert resources_by_name(again["registeredResources"])["CPU"]["integerValue"] == 1024
    # Without the ARN, the same EC2 instance id finds its record too (an agent that lost state).
    third = register_instance(ecs, cluster, "i-0bbbbbbbbbbbbbbb1")
    assert third["containerInstanceArn"] == first["containerInstanceArn"]
    assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == [
        first["containerInstanceArn"]]


def test_register_into_unknown_cluster(ecs, unique):
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        register_instance(ecs, unique("nocluster"))


def test_register_requires_cpu_and_memory(ecs, unique):
    cluster = unique("nores")
    ecs.create_cluster(clusterName=cluster)
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.register_container_instance(
            cluster=cluster, instanceIdentityDocument=identity_document("i-0ccccccccccccccc1"),
            totalResources=[{"name": "CPU", "type": "INTEGER", "integerValue": 1024}])
    assert "MEMORY" in e.value.response["Error"]["Message"]


def test_list_status_filter_and_state_changes(ecs, unique):
    cluster = unique("drain")
    ecs.create_cluster(clusterName=cluster)
    a = register_instance(ecs, cluster, "i-0ddddddddddddddd1")["containerInstanceArn"]
    b = register_instance(ecs, cluster, "i-0ddddddddddddddd2")["containerInstanceArn"]
    lst = lambda **kw: sorted(ecs.list_container_instances(cluster=cluster, **kw)[  # noqa: E731
        "containerInstanceArns"])
    assert lst() == sorted([a, b])

    out = ecs.update_container_instances_state(cluster=cluster, containerInstances=[a, "f" * 32],
                                               status="DRAINING")
    assert [c["status"] for c in out["containerInstances"]] == ["DRAINING"]
    assert [f["reason"] for f in out["failures"]] == ["MISSING"]
    assert lst(status="DRAINING") == [a]
    assert lst(status="ACTIVE") == [b]
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0][
        "registeredContainerInstancesCount"] == 2

    ecs.update_container_instances_state(cluster=cluster, containerInstances=[a], status="ACTIVE")
    assert lst(status="ACTIVE") == sorted([a, b])

    pages = list(ecs.get_paginator("list_container_instances").paginate(
        cluster=cluster, PaginationConfig={"PageSize": 1}))
    assert sorted(x for p in pages for x in p["containerInstanceArns"]) == sorted([a, b])
    assert len(pages) == 2

    # The filter is the cluster query language; a syntax error names the position.
    assert ecs.list_container_instances(cluster=cluster, filter="attribute:stack == prod")[
        "containerInstanceArns"] == []
    assert sorted(ecs.list_container_instances(cluster=cluster, filter="agentConnected == true")[
        "containerInstanceArns"]) == sorted([a, b])
    with pytest.raises(ecs.exceptions.InvalidParameterException, match="position"):
        ecs.list_container_instances(cluster=cluster, filter="attribute:stack ==")


def test_deregister(ecs, unique):
    cluster = unique("dereg")
    ecs.create_cluster(clusterName=cluster)
    arn = register_instance(ecs, cluster, "i-0eeeeeeeeeeeeeee1")["containerInstanceArn"]
    out = ecs.deregister_container_instance(cluster=cluster, containerInstance=arn)
    assert out["containerInstance"]["status"] == "INACTIVE"
    described = ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])
    assert described["containerInstances"][0]["status"] == "INACTIVE"
    assert described["containerInstances"][0]["agentConnected"] is False
    assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == []
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0][
        "registeredContainerInstancesCount"] == 0
