"""Clusters through boto3: create, describe, list with paging, update, delete."""

import pytest

from berth_harness import cluster_arn, register_instance, send, sign


def test_create_without_name_is_default_and_idempotent(server):
    ecs = server.client()
    first = ecs.create_cluster()["cluster"]
    assert first["clusterName"] == "default"
    assert first["clusterArn"] == "arn:aws:ecs:us-east-1:123456789012:cluster/default"
    assert first["status"] == "ACTIVE"
    again = ecs.create_cluster(clusterName="default")["cluster"]
    assert again["clusterArn"] == first["clusterArn"]
    assert ecs.list_clusters()["clusterArns"] == [first["clusterArn"]]


def test_create_returns_counts_tags_and_settings(ecs, unique):
    name = unique("c")
    c = ecs.create_cluster(clusterName=name, tags=[{"key": "team", "value": "infra"}],
                           settings=[{"name": "containerInsights", "value": "enabled"}])["cluster"]
    assert c["clusterArn"] == cluster_arn(name)
    assert c["clusterName"] == name
    for count in ("registeredContainerInstancesCount", "runningTasksCount", "pendingTasksCount",
                  "activeServicesCount"):
        assert c[count] == 0
    assert c["tags"] == [{"key": "team", "value": "infra"}]
    assert c["settings"] == [{"name": "containerInsights", "value": "enabled"}]


def test_describe_includes_and_missing(ecs, unique):
    name = unique("d")
    ecs.create_cluster(clusterName=name, tags=[{"key": "k", "value": "v"}])
    out = ecs.describe_clusters(clusters=[name, cluster_arn(name), "nope-" + name])
    assert [c["clusterName"] for c in out["clusters"]] == [name, name]
    assert out["failures"] == [{"arn": cluster_arn("nope-" + name), "reason": "MISSING"}]
    plain = out["clusters"][0]
    assert plain.get("tags", []) == [] and plain.get("statistics", []) == []
    assert "settings" not in plain

    full = ecs.describe_clusters(clusters=[name], include=["STATISTICS", "TAGS", "SETTINGS"])
    c = full["clusters"][0]
    stats = {s["name"]: s["value"] for s in c["statistics"]}
    assert stats["runningEC2TasksCount"] == "0"
    assert stats["pendingEC2TasksCount"] == "0"
    assert stats["activeEC2ServiceCount"] == "0"
    assert c["tags"] == [{"key": "k", "value": "v"}]
    assert c["settings"] == [{"name": "containerInsights", "value": "disabled"}]
    assert full["failures"] == []


def test_describe_counts_registered_instances(ecs, unique):
    name = unique("cnt")
    ecs.create_cluster(clusterName=name)
    register_instance(ecs, name, "i-00000000000000001")
    register_instance(ecs, name, "i-00000000000000002")
    c = ecs.describe_clusters(clusters=[name])["clusters"][0]
    assert c["registeredContainerInstancesCount"] == 2


def test_list_clusters_paginates_25_with_page_size_10(server):
    ecs = server.client()
    names = [f"page-{i:02d}" for i in range(25)]
    for n in names:
        ecs.create_cluster(clusterName=n)
    pages = list(ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 10}))
    assert [len(p["clusterArns"]) for p in pages] == [10, 10, 5]
    arns = [a for p in pages for a in p["clusterArns"]]
    assert sorted(arns) == sorted(cluster_arn(n) for n in names)
    assert len(set(arns)) == 25
    assert "nextToken" not in pages[-1]

    # Hand-driven paging with maxResults gives the same, and a bad token is refused.
    first = ecs.list_clusters(maxResults=10)
    assert len(first["clusterArns"]) == 10 and first["nextToken"]
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.list_clusters(nextToken="bm90LWEtdG9rZW4=")


def test_list_clusters_omits_deleted(server):
    ecs = server.client()
    ecs.create_cluster(clusterName="keep")
    ecs.create_cluster(clusterName="gone")
    ecs.delete_cluster(cluster="gone")
    assert ecs.list_clusters()["clusterArns"] == [cluster_arn("keep")]


def test_update_cluster_settings_are_stored(ecs, unique):
    name = unique("u")
    ecs.create_cluster(clusterName=name)
    out = ecs.update_cluster_settings(
        cluster=name, settings=[{"name": "containerInsights", "value": "enabled"}])["cluster"]
    assert out["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    c = ecs.describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0]
    assert c["settings"] == [{"name": "containerInsights", "value": "enabled"}]

    out = ecs.update_cluster(cluster=cluster_arn(name),
                             settings=[{"name": "containerInsights", "value": "disabled"}],
                             configuration={"executeCommandConfiguration": {"logging": "DEFAULT"}})
    assert out["cluster"]["settings"] == [{"name": "containerInsights", "value": "disabled"}]
    c = ecs.describe_clusters(clusters=[name], include=["SETTINGS", "CONFIGURATIONS"])["clusters"][0]
    assert c["settings"] == [{"name": "containerInsights", "value": "disabled"}]
    assert c["configuration"] == {"executeCommandConfiguration": {"logging": "DEFAULT"}}


def test_update_unknown_cluster_not_found(ecs, unique):
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.update_cluster_settings(cluster=unique("ghost"),
                                    settings=[{"name": "containerInsights", "value": "enabled"}])


def test_delete_cluster_lifecycle(ecs, unique):
    name = unique("del")
    ecs.create_cluster(clusterName=name)
    ci = register_instance(ecs, name, "i-0de1e7e000000000a")
    with pytest.raises(ecs.exceptions.ClusterContainsContainerInstancesException) as e:
        ecs.delete_cluster(cluster=name)
    assert "Container Instances" in e.value.response["Error"]["Message"]
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    ecs.deregister_container_instance(cluster=name, containerInstance=ci["containerInstanceArn"])
    out = ecs.delete_cluster(cluster=name)["cluster"]
    assert out["status"] == "INACTIVE"
    described = ecs.describe_clusters(clusters=[name])
    assert described["clusters"][0]["status"] == "INACTIVE"
    assert described["failures"] == []
    assert cluster_arn(name) not in ecs.list_clusters(maxResults=100)["clusterArns"]

    with pytest.raises(ecs.exceptions.ClusterNotFoundException) as e:
        ecs.delete_cluster(cluster=name)
    assert e.value.response["Error"]["Code"] == "ClusterNotFoundException"
    assert e.value.response["Error"]["Message"] == "Cluster not found."

    # Creating it again brings it back as ACTIVE.
    assert ecs.create_cluster(clusterName=name)["cluster"]["status"] == "ACTIVE"


def test_delete_unknown_cluster_not_found(ecs, unique):
    with pytest.raises(ecs.exceptions.ClusterNotFoundException):
        ecs.delete_cluster(cluster=unique("never"))


def test_invalid_cluster_name(ecs):
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.create_cluster(clusterName="bad name!")
    assert "bad name!" in e.value.response["Error"]["Message"]


def test_region_and_account_flags_shape_arns_and_signing(make_server):
    s = make_server(region="eu-west-1", account_id="210987654321")
    ecs = s.client()
    assert ecs.meta.region_name == "eu-west-1"
    c = ecs.create_cluster(clusterName="eu")["cluster"]
    assert c["clusterArn"] == "arn:aws:ecs:eu-west-1:210987654321:cluster/eu"
    rc, out = s.aws("ecs", "describe-clusters", "--clusters", c["clusterArn"])
    assert rc == 0 and out["clusters"][0]["clusterName"] == "eu", out
    # A request signed for the default region is refused by this server.
    akid, secret = s.keys()
    path, headers = sign(s.host, akid, secret, b"{}", action="ListClusters", region="us-east-1")
    r = send("127.0.0.1", s.port, "POST", path, headers, b"{}")
    assert r.status == 400 and r.type == "InvalidSignatureException", r
