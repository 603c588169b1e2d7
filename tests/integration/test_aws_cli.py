"""The unmodified AWS CLI v2 (/usr/bin/aws ecs ...) against a real server."""

import json
import subprocess

import pytest

from berth_harness import cluster_arn, identity_document, task_definition_arn, total_resources


@pytest.fixture(scope="module")
def cli_server(shared_server):
    return shared_server


def test_cluster_create_describe_and_failure(cli_server, unique):
    name = unique("cli")
    rc, out = cli_server.aws("ecs", "create-cluster", "--cluster-name", name,
                             "--tags", "key=team,value=cli",
                             "--settings", "name=containerInsights,value=enabled")
    assert rc == 0, out
    assert out["cluster"]["clusterArn"] == cluster_arn(name)
    assert out["cluster"]["status"] == "ACTIVE"

    rc, out = cli_server.aws("ecs", "describe-clusters", "--clusters", name, "missing-" + name,
                             "--include", "TAGS", "SETTINGS", "STATISTICS")
    assert rc == 0, out
    (c,) = out["clusters"]
    assert c["tags"] == [{"key": "team", "value": "cli"}]
    assert c["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    assert out["failures"] == [{"arn": cluster_arn("missing-" + name), "reason": "MISSING"}]

    rc, err = cli_server.aws("ecs", "delete-cluster", "--cluster", "missing-" + name)
    assert rc == 254
    assert ("An error occurred (ClusterNotFoundException) when calling the DeleteCluster "
            "operation: Cluster not found.") in err

    rc, err = cli_server.aws("ecs", "register-task-definition", "--family", "bad family",
                             "--container-definitions", "name=a,image=b,memory=8")
    assert rc == 254
    assert "(ClientException)" in err and "Family" in err


def test_list_clusters_paging(server):
    for i in range(7):
        rc, out = server.aws("ecs", "create-cluster", "--cluster-name", f"p{i}")
        assert rc == 0, out
    expected = [cluster_arn(f"p{i}") for i in range(7)]

    # --page-size: the CLI follows nextToken itself and returns everything.
    rc, out = server.aws("ecs", "list-clusters", "--page-size", "2")
    assert rc == 0, out
    assert sorted(out["clusterArns"]) == expected

    # --max-items: CLI-level pages resumed with --starting-token.
    seen, token = [], None
    for _ in range(10):
        args = ["ecs", "list-clusters", "--max-items", "3", "--page-size", "2"]
        if token:
            args += ["--starting-token", token]
        rc, out = server.aws(*args)
        assert rc == 0, out
        assert len(out["clusterArns"]) <= 3
        seen += out["clusterArns"]
        token = out.get("NextToken")
        if not token:
            break
    assert sorted(seen) == expected and len(seen) == 7


def test_register_task_definition_from_files(cli_server, unique, tmp_path):
    family = unique("clitd")
    doc = {
        "family": family,
        "networkMode": "bridge",
        "containerDefinitions": [{
            "name": "web", "image": "nginx:1.25", "memory": 128, "cpu": 128,
            "portMappings": [{"containerPort": 80, "hostPort": 0, "protocol": "tcp"}],
            "environment": [{"name": "A", "value": "1"}],
            "healthCheck": {"command": ["CMD", "true"], "interval": 10, "timeout": 2,
                            "retries": 2},
            "dockerLabels": {"x": "y"},
        }],
        "tags": [{"key": "via", "value": "cli"}],
    }
    path = tmp_path / "td.json"
    path.write_text(json.dumps(doc))
    rc, out = cli_server.aws("ecs", "register-task-definition", "--cli-input-json",
                             f"file://{path}")
    assert rc == 0, out
    td = out["taskDefinition"]
    assert td["taskDefinitionArn"] == task_definition_arn(family, 1)
    c = td["containerDefinitions"][0]
    for k, v in doc["containerDefinitions"][0].items():
        assert c[k] == v, k
    assert out["tags"] == [{"key": "via", "value": "cli"}]

    containers = tmp_path / "containers.json"
    containers.write_text(json.dumps([{"name": "app", "image": "busybox", "memory": 32}]))
    rc, out = cli_server.aws("ecs", "register-task-definition", "--family", family,
                             "--container-definitions", f"file://{containers}")
    assert rc == 0, out
    assert out["taskDefinition"]["revision"] == 2

    rc, out = cli_server.aws("ecs", "describe-task-definition", "--task-definition",
                             f"{family}:1", "--include", "TAGS")
    assert rc == 0, out
    assert out["taskDefinition"]["containerDefinitions"][0]["dockerLabels"] == {"x": "y"}
    assert out["tags"] == [{"key": "via", "value": "cli"}]

    rc, out = cli_server.aws("ecs", "list-task-definitions", "--family-prefix", family,
                             "--sort", "DESC", "--page-size", "1")
    assert rc == 0, out
    assert out["taskDefinitionArns"] == [task_definition_arn(family, 2),
                                         task_definition_arn(family, 1)]


def test_container_instance_and_tags(cli_server, unique, tmp_path):
    cluster = unique("clici")
    assert cli_server.aws("ecs", "create-cluster", "--cluster-name", cluster)[0] == 0
    res = tmp_path / "resources.json"
    res.write_text(json.dumps(total_resources(cpu=1024, memory=2048, ports=["22"])))
    rc, out = cli_server.aws(
        "ecs", "register-container-instance", "--cluster", cluster,
        "--instance-identity-document", identity_document("i-0c11c11c11c11c111"),
        "--total-resources", f"file://{res}",
        "--attributes", "name=stack,value=prod",
        "--version-info", "agentVersion=1.70.2,agentHash=abc,dockerVersion=20.10")
    assert rc == 0, out
    ci = out["containerInstance"]
    arn = ci["containerInstanceArn"]
    assert arn.startswith(f"arn:aws:ecs:us-east-1:123456789012:container-instance/{cluster}/")
    assert ci["status"] == "ACTIVE"

    rc, out = cli_server.aws("ecs", "list-container-instances", "--cluster", cluster)
    assert rc == 0 and out["containerInstanceArns"] == [arn], out

    rc, out = cli_server.aws("ecs", "tag-resource", "--resource-arn", arn,
                             "--tags", "key=rack,value=r1", "key=row,value=7")
    assert rc == 0, out
    rc, out = cli_server.aws("ecs", "list-tags-for-resource", "--resource-arn", arn)
    assert rc == 0, out
    assert sorted((t["key"], t["value"]) for t in out["tags"]) == [("rack", "r1"), ("row", "7")]
    rc, out = cli_server.aws("ecs", "untag-resource", "--resource-arn", arn, "--tag-keys", "row")
    assert rc == 0, out
    rc, out = cli_server.aws("ecs", "list-tags-for-resource", "--resource-arn", arn)
    assert out["tags"] == [{"key": "rack", "value": "r1"}]

    rc, err = cli_server.aws("ecs", "delete-cluster", "--cluster", cluster)
    assert rc == 254 and "ClusterContainsContainerInstancesException" in err


def test_cli_with_wrong_secret_is_rejected(cli_server, tmp_path):
    akid, _ = cli_server.keys()
    creds = tmp_path / "bad-credentials"
    creds.write_text(f"[berth]\naws_access_key_id = {akid}\n"
                     "aws_secret_access_key = 0000000000000000000000000000000000000000\n")
    env = cli_server.aws_env()
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(creds)
    p = subprocess.run(["/usr/bin/aws", "ecs", "list-clusters", "--endpoint-url",
                        cli_server.endpoint, "--output", "json"], env=env, capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 254
    assert "InvalidSignatureException" in p.stderr
