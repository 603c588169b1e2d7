"""Attributes, tags and account settings through boto3."""

import pytest

from berth_harness import register_instance, simple_task_definition, task_definition_arn


def _attrs(ecs, cluster, **kw):
    out = ecs.list_attributes(cluster=cluster, targetType="container-instance", **kw)["attributes"]
    return {(a["name"], a.get("value"), a["targetId"]) for a in out}


def test_put_list_delete_attributes(ecs, unique):
    cluster = unique("attr")
    ecs.create_cluster(clusterName=cluster)
    arn = register_instance(ecs, cluster, "i-0a77a77a77a77a771")["containerInstanceArn"]
    ident = arn.rsplit("/", 1)[1]

    ecs.put_attributes(cluster=cluster, attributes=[
        {"name": "stack", "value": "prod", "targetId": ident},
        {"name": "team", "value": "blue", "targetType": "container-instance", "targetId": arn}])
    assert {("stack", "prod", arn), ("team", "blue", arn)} <= _attrs(ecs, cluster)
    assert _attrs(ecs, cluster, attributeName="stack") == {("stack", "prod", arn)}
    assert _attrs(ecs, cluster, attributeName="stack", attributeValue="dev") == set()

    # Putting again replaces the value.
    ecs.put_attributes(cluster=cluster,
                       attributes=[{"name": "stack", "value": "dev", "targetId": arn}])
    assert _attrs(ecs, cluster, attributeName="stack") == {("stack", "dev", arn)}

    ecs.delete_attributes(cluster=cluster, attributes=[{"name": "stack", "targetId": ident}])
    assert _attrs(ecs, cluster, attributeName="stack") == set()
    described = ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])
    names = {a["name"] for a in described["containerInstances"][0]["attributes"]}
    assert "team" in names and "stack" not in names


def test_attribute_target_not_found(ecs, unique):
    cluster = unique("attr404")
    ecs.create_cluster(clusterName=cluster)
    with pytest.raises(ecs.exceptions.TargetNotFoundException):
        ecs.put_attributes(cluster=cluster,
                           attributes=[{"name": "x", "value": "y", "targetId": "1" * 32}])
    with pytest.raises(ecs.exceptions.TargetNotFoundException):
        ecs.put_attributes(cluster=cluster, attributes=[{
            "name": "x", "value": "y",
            "targetId": "arn:aws:ecs:us-east-1:123456789012:container-instance/other/abc"}])


def test_attribute_limit(ecs, unique):
    cluster = unique("attrlim")
    ecs.create_cluster(clusterName=cluster)
    arn = register_instance(ecs, cluster, "i-0a77a77a77a77a772")["containerInstanceArn"]
    ten = [{"name": f"custom{i}", "value": "v", "targetId": arn} for i in range(10)]
    ecs.put_attributes(cluster=cluster, attributes=ten)
    with pytest.raises(ecs.exceptions.AttributeLimitExceededException):
        ecs.put_attributes(cluster=cluster,
                           attributes=[{"name": "custom10", "value": "v", "targetId": arn}])
    # Nothing of the refused call was applied; ecs.* attributes do not count.
    assert len(_attrs(ecs, cluster, attributeName="custom10")) == 0
    ecs.put_attributes(cluster=cluster,
                       attributes=[{"name": "ecs.capability.extra", "targetId": arn}])


def test_tags_on_cluster_task_definition_and_instance(ecs, unique):
    cluster = unique("tags")
    c_arn = ecs.create_cluster(clusterName=cluster, tags=[{"key": "a", "value": "1"}])[
        "cluster"]["clusterArn"]
    family = unique("tagfam")
    ecs.register_task_definition(**simple_task_definition(family))
    td_arn = task_definition_arn(family, 1)
    ci_arn = register_instance(ecs, cluster, "i-0a77a77a77a77a773")["containerInstanceArn"]

    for arn, initial in ((c_arn, [{"key": "a", "value": "1"}]), (td_arn, []), (ci_arn, [])):
        assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == initial
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "2"},
                                                {"key": "c", "value": "3"}])
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "b", "value": "two"}])
        tags = {t["key"]: t["value"] for t in ecs.list_tags_for_resource(resourceArn=arn)["tags"]}
        assert tags == {**{t["key"]: t["value"] for t in initial}, "b": "two", "c": "3"}
        ecs.untag_resource(resourceArn=arn, tagKeys=["c", "not-there"])
        tags = {t["key"]: t["value"] for t in ecs.list_tags_for_resource(resourceArn=arn)["tags"]}
        assert tags == {**{t["key"]: t["value"] for t in initial}, "b": "two"}

    assert {"key": "b", "value": "two"} in ecs.describe_clusters(
        clusters=[cluster], include=["TAGS"])["clusters"][0]["tags"]
    assert {"key": "b", "value": "two"} in ecs.describe_task_definition(
        taskDefinition=td_arn, include=["TAGS"])["tags"]


def test_tag_errors(ecs, unique):
    with pytest.raises(ecs.exceptions.ResourceNotFoundException):
        ecs.list_tags_for_resource(
            resourceArn=f"arn:aws:ecs:us-east-1:123456789012:cluster/{unique('none')}")
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.tag_resource(resourceArn="arn:aws:ecs:eu-west-1:123456789012:cluster/x",
                         tags=[{"key": "a", "value": "b"}])
    cluster = unique("tagerr")
    arn = ecs.create_cluster(clusterName=cluster)["cluster"]["clusterArn"]
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.tag_resource(resourceArn=arn, tags=[{"key": "aws:reserved", "value": "x"}])
    assert "aws:" in e.value.response["Error"]["Message"]


def _settings(ecs, **kw):
    return {s["name"]: (s["value"], s["principalArn"])
            for s in ecs.list_account_settings(**kw)["settings"]}


def test_account_settings(server):
    ecs = server.client()
    root = "arn:aws:iam::123456789012:root"
    alice = "arn:aws:iam::123456789012:user/alice"
    assert _settings(ecs) == {}
    eff = _settings(ecs, effectiveSettings=True)
    assert eff["serviceLongArnFormat"] == ("enabled", root)
    assert eff["containerInsights"] == ("disabled", root)

    out = ecs.put_account_setting(name="containerInsights", value="enabled", principalArn=alice)
    assert out["setting"] == {"name": "containerInsights", "value": "enabled",
                              "principalArn": alice}
    assert _settings(ecs, principalArn=alice) == {"containerInsights": ("enabled", alice)}
    assert _settings(ecs, principalArn=alice, effectiveSettings=True)["containerInsights"] == (
        "enabled", alice)
    assert _settings(ecs, effectiveSettings=True)["containerInsights"] == ("disabled", root)

    ecs.put_account_setting_default(name="awsvpcTrunking", value="enabled")
    assert _settings(ecs, principalArn=alice, effectiveSettings=True)["awsvpcTrunking"] == (
        "enabled", root)
    assert _settings(ecs, name="awsvpcTrunking") == {"awsvpcTrunking": ("enabled", root)}

    deleted = ecs.delete_account_setting(name="containerInsights", principalArn=alice)
    assert deleted["setting"]["value"] == "enabled"
    assert _settings(ecs, principalArn=alice) == {}
    assert _settings(ecs, principalArn=alice, effectiveSettings=True)["containerInsights"] == (
        "disabled", root)
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.delete_account_setting(name="containerInsights", principalArn=alice)
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.put_account_setting(name="containerInsights", value="maybe")


def test_tag_lengths_count_characters_not_bytes(ecs, unique):
    # TagKey is 1..128 and TagValue 0..256 *characters* (the model's min/max); "é" is 2 bytes.
    name = unique("unicode")
    tags = [{"key": "ü" * 128, "value": "é" * 256}, {"key": "日本", "value": "値"}]
    c = ecs.create_cluster(clusterName=name, tags=tags)["cluster"]
    assert c["tags"] == tags
    assert ecs.list_tags_for_resource(resourceArn=c["clusterArn"])["tags"] == tags


def test_tag_length_limits(ecs, unique):
    arn = ecs.create_cluster(clusterName=unique("taglen"))["cluster"]["clusterArn"]
    for tag in ({"key": "k" * 129, "value": "v"}, {"key": "k", "value": "v" * 257}):
        with pytest.raises(ecs.exceptions.InvalidParameterException):
            ecs.tag_resource(resourceArn=arn, tags=[tag])
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.tag_resource(resourceArn=arn,
                         tags=[{"key": f"k{i}", "value": "v"} for i in range(51)])
