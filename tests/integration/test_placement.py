"""Task placement through boto3 and the AWS CLI: strategies, constraints, failure reasons, host ports,
resource accounting, concurrent RunTask without double booking, and placements across kill -9.

Instances are registered through the API (they count as agent-connected), so every task stays
PENDING: what is checked is where tasks go and what the instances have left, as a user sees it in
RunTask, DescribeTasks and DescribeContainerInstances.
"""

import collections
import http.client
import itertools
import json
import random
import threading
import time

import pytest

from berth_harness import VERSION_INFO, identity_document, sign, total_resources

REASON_MEMBER_OF = "MemberOf placement constraint unsatisfied."
REASON_DISTINCT = "DistinctInstance placement constraint unsatisfied."
_EC2_IDS = itertools.count(0x0a000000)


# ---- helpers (local to this module)

class Fleet:
    """A cluster plus named instances: label -> containerInstanceArn and back."""

    def __init__(self, ecs, cluster):
        self.ecs = ecs
        self.cluster = cluster
        self.arn = {}
        self.label = {}
        self.registered = {}

    def add(self, label, *, cpu=4096, memory=4096, az="us-east-1a", itype="t3.medium",
            ports=("22",), udp_ports=(), attributes=()):
        ec2 = "i-%017x" % next(_EC2_IDS)
        ci = self.ecs.register_container_instance(
            cluster=self.cluster,
            instanceIdentityDocument=identity_document(ec2, az=az, instance_type=itype),
            totalResources=total_resources(cpu=cpu, memory=memory, ports=ports,
                                           udp_ports=udp_ports),
            versionInfo=VERSION_INFO,
            attributes=[dict(name=n, **({"value": v} if v is not None else {}))
                        for n, v in attributes])["containerInstance"]
        arn = ci["containerInstanceArn"]
        self.arn[label] = arn
        self.label[arn] = label
        self.registered[label] = {"cpu": cpu, "memory": memory, "ports": set(ports),
                                  "udp": set(udp_ports), "ec2": ec2}
        return arn

    def where(self, tasks):
        """Counter label -> number of tasks placed there."""
        return collections.Counter(self.label[t["containerInstanceArn"]] for t in tasks)

    def failures(self, out):
        """{label: reason} of a RunTask/StartTask answer."""
        got = {}
        for f in out["failures"]:
            assert f["arn"] in self.label, f"failure for an unknown instance: {f}"
            got[self.label[f["arn"]]] = f["reason"]
        return got

    def remaining(self, label):
        ci = self.describe(label)
        r = {x["name"]: x for x in ci["remainingResources"]}
        return {"cpu": r["CPU"]["integerValue"], "memory": r["MEMORY"]["integerValue"],
                "ports": set(r["PORTS"].get("stringSetValue", [])),
                "udp": set(r["PORTS_UDP"].get("stringSetValue", [])),
                "pending": ci["pendingTasksCount"], "running": ci["runningTasksCount"]}

    def describe(self, label):
        out = self.ecs.describe_container_instances(cluster=self.cluster,
                                                    containerInstances=[self.arn[label]])
        assert out["failures"] == []
        return out["containerInstances"][0]


def make_fleet(ecs, unique, prefix):
    cluster = unique(prefix)
    ecs.create_cluster(clusterName=cluster)
    return Fleet(ecs, cluster)


def register_td(ecs, family, *, cpu=10, memory=64, host_ports=(), udp_ports=(),
                dynamic_ports=0, **kw):
    mappings = [{"containerPort": 1000 + i, "hostPort": p, "protocol": "tcp"}
                for i, p in enumerate(host_ports)]
    mappings += [{"containerPort": 2000 + i, "hostPort": p, "protocol": "udp"}
                 for i, p in enumerate(udp_ports)]
    mappings += [{"containerPort": 3000 + i, "hostPort": 0} for i in range(dynamic_ports)]
    container = {"name": "app", "image": "busybox:latest", "cpu": cpu, "memory": memory,
                 "portMappings": mappings}
    container.update(kw.pop("container", {}))
    return ecs.register_task_definition(family=family, containerDefinitions=[container],
                                        **kw)["taskDefinition"]


def all_live_tasks(ecs, cluster):
    """Every task of the cluster whose desiredStatus is RUNNING, described."""
    arns, token = [], None
    while True:
        kw = {"nextToken": token} if token else {}
        page = ecs.list_tasks(cluster=cluster, maxResults=100, **kw)
        arns += page["taskArns"]
        token = page.get("nextToken")
        if not token:
            break
    assert len(arns) == len(set(arns)), "ListTasks returned a task twice"
    tasks = []
    for i in range(0, len(arns), 100):
        out = ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100])
        assert out["failures"] == []
        tasks += out["tasks"]
    return tasks


# ---- strategies

def test_binpack_memory_fills_the_fullest_fitting_instance_first(ecs, unique):
    f = make_fleet(ecs, unique, "binpack")
    f.add("big", memory=1000)
    f.add("mid", memory=600)
    f.add("small", memory=300)
    fam = unique("bp")
    register_td(ecs, fam, memory=256)
    strategy = [{"type": "binpack", "field": "memory"}]
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=3, placementStrategy=strategy)
    # small (300) first, then mid (600 -> 344 -> 88): always the least memory that still fits.
    assert [f.label[t["containerInstanceArn"]] for t in out["tasks"]] == ["small", "mid", "mid"]
    assert out["failures"] == []
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=1, placementStrategy=strategy)
    assert f.where(out["tasks"]) == {"big": 1}
    # Partial placement: big has 744 left, room for 2 more; count 5 gives 2 tasks and a reason
    # for every instance.
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=5, placementStrategy=strategy)
    assert f.where(out["tasks"]) == {"big": 2}
    assert f.failures(out) == {"big": "RESOURCE:MEMORY", "mid": "RESOURCE:MEMORY",
                               "small": "RESOURCE:MEMORY"}
    assert f.remaining("big")["memory"] == 1000 - 3 * 256
    assert f.remaining("mid")["memory"] == 600 - 2 * 256
    assert f.remaining("small")["memory"] == 300 - 256


def test_binpack_cpu(ecs, unique):
    f = make_fleet(ecs, unique, "binpackcpu")
    f.add("a", cpu=2048, memory=8000)
    f.add("b", cpu=700, memory=8000)
    f.add("c", cpu=300, memory=8000)
    fam = unique("bpc")
    register_td(ecs, fam, cpu=256, memory=32)
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=3,
                       placementStrategy=[{"type": "binpack", "field": "cpu"}])
    # c (300 -> 44), then b (700 -> 444 -> 188); a is never needed.
    assert [f.label[t["containerInstanceArn"]] for t in out["tasks"]] == ["c", "b", "b"]


def test_spread_availability_zone_balances_within_one_call(ecs, unique):
    f = make_fleet(ecs, unique, "spreadaz")
    f.add("a1", az="us-east-1a")
    f.add("b1", az="us-east-1b")
    f.add("b2", az="us-east-1b")
    f.add("c1", az="us-east-1c")
    f.add("c2", az="us-east-1c")
    f.add("c3", az="us-east-1c")
    fam = unique("saz")
    register_td(ecs, fam)
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=6,
                       placementStrategy=[{"type": "spread",
                                           "field": "attribute:ecs.availability-zone"}])
    assert out["failures"] == []
    per_az = collections.Counter(t["availabilityZone"] for t in out["tasks"])
    assert per_az == {"us-east-1a": 2, "us-east-1b": 2, "us-east-1c": 2}
    # Every task's availabilityZone is that of the instance it runs on.
    for t in out["tasks"]:
        assert f.label[t["containerInstanceArn"]][0] == t["availabilityZone"][-1]


def test_default_strategy_spreads_zones_then_instances(ecs, unique):
    f = make_fleet(ecs, unique, "spreaddefault")
    f.add("a1", az="us-east-1a")
    f.add("b1", az="us-east-1b")
    f.add("b2", az="us-east-1b")
    f.add("c1", az="us-east-1c")
    f.add("c2", az="us-east-1c")
    f.add("c3", az="us-east-1c")
    fam = unique("sdef")
    register_td(ecs, fam)
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=6)
    where = f.where(out["tasks"])
    per_az = collections.Counter(t["availabilityZone"] for t in out["tasks"])
    assert per_az == {"us-east-1a": 2, "us-east-1b": 2, "us-east-1c": 2}
    assert where["a1"] == 2 and where["b1"] == 1 and where["b2"] == 1
    assert sorted(where[x] for x in ("c1", "c2", "c3")) == [0, 1, 1]


def test_spread_instance_id(ecs, unique):
    f = make_fleet(ecs, unique, "spreadid")
    for i in range(4):
        f.add(f"n{i}")
    fam = unique("sid")
    register_td(ecs, fam)
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=8,
                       placementStrategy=[{"type": "spread", "field": "instanceId"}])
    assert f.where(out["tasks"]) == {"n0": 2, "n1": 2, "n2": 2, "n3": 2}
    # spread counts the group's existing tasks: 4 more land one per instance.
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=4,
                       placementStrategy=[{"type": "spread", "field": "host"}])
    assert f.where(out["tasks"]) == {"n0": 1, "n1": 1, "n2": 1, "n3": 1}


def test_spread_zone_then_binpack_memory(ecs, unique):
    f = make_fleet(ecs, unique, "chain")
    f.add("a-roomy", az="us-east-1a", memory=2000)
    f.add("a-tight", az="us-east-1a", memory=500)
    f.add("b-roomy", az="us-east-1b", memory=3000)
    f.add("b-tight", az="us-east-1b", memory=700)
    fam = unique("chain")
    register_td(ecs, fam, memory=200)
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=4, placementStrategy=[
        {"type": "spread", "field": "attribute:ecs.availability-zone"},
        {"type": "binpack", "field": "memory"}])
    # Zones alternate; inside the chosen zone(s) the tightest fitting instance wins.
    assert [f.label[t["containerInstanceArn"]] for t in out["tasks"]] == [
        "a-tight", "b-tight", "a-tight", "b-tight"]


def test_random_gives_a_valid_placement(ecs, unique):
    f = make_fleet(ecs, unique, "random")
    f.add("x", memory=1000, attributes=[("pool", "blue")])
    f.add("y", memory=1000, attributes=[("pool", "blue")])
    f.add("z", memory=5000, attributes=[("pool", "green")])
    fam = unique("rnd")
    register_td(ecs, fam, memory=300)
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=6,
                       placementStrategy=[{"type": "random"}],
                       placementConstraints=[{"type": "memberOf",
                                              "expression": "attribute:pool == blue"}])
    where = f.where(out["tasks"])
    # 3 fit on each blue instance; green is excluded.
    assert sum(where.values()) == 6 and set(where) <= {"x", "y"}
    assert where["x"] <= 3 and where["y"] <= 3
    assert out["failures"] == []


@pytest.mark.parametrize("strategy, message", [
    ({"type": "binpack", "field": "disk"}, "Placement strategy 1"),
    ({"type": "spread"}, "Placement strategy 1"),
    ({"type": "scatter", "field": "cpu"}, "scatter"),  # the model validator names it
])
def test_invalid_strategy(ecs, unique, strategy, message):
    f = make_fleet(ecs, unique, "badstrategy")
    f.add("only")
    fam = unique("bs")
    register_td(ecs, fam)
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.run_task(cluster=f.cluster, taskDefinition=fam, placementStrategy=[strategy])
    assert message in str(e.value)


def test_limits_on_strategies_and_constraints(ecs, unique):
    f = make_fleet(ecs, unique, "limits")
    f.add("only")
    fam = unique("lim")
    register_td(ecs, fam)
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.run_task(cluster=f.cluster, taskDefinition=fam,
                     placementStrategy=[{"type": "spread", "field": "instanceId"}] * 6)
    assert "5" in str(e.value)
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.run_task(cluster=f.cluster, taskDefinition=fam,
                     placementConstraints=[{"type": "memberOf",
                                            "expression": "attribute:a !exists"}] * 11)
    assert "10" in str(e.value)
    # Exactly at the limits is fine.
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam,
                       placementStrategy=[{"type": "spread", "field": "instanceId"}] * 5,
                       placementConstraints=[{"type": "memberOf",
                                              "expression": "attribute:a !exists"}] * 10)
    assert len(out["tasks"]) == 1


# ---- constraints

@pytest.fixture(scope="module")
def zoo(shared_server):
    """Six instances with varied attributes, room for many tiny tasks; and an anchor task on D."""
    ecs = shared_server.client()
    f = Fleet(ecs, "zoo")
    ecs.create_cluster(clusterName="zoo")
    f.add("A", az="us-east-1a", itype="t2.micro", attributes=[("stack", "prod"), ("gpu", None)])
    f.add("B", az="us-east-1a", itype="t2.large", attributes=[("stack", "dev")])
    f.add("C", az="us-east-1b", itype="m5.large", attributes=[("stack", "prod")])
    f.add("D", az="us-east-1b", itype="m5.xlarge")
    f.add("E", az="us-east-1c", itype="c5.large", attributes=[("stack", "dev"), ("gpu", None)])
    f.add("F", az="us-east-1c", itype="t3.small",
          attributes=[("stack", "prod"), ("os", "amazon linux 2")])
    register_td(ecs, "zoo-tiny", cpu=1, memory=8)
    out = ecs.start_task(cluster="zoo", taskDefinition="zoo-tiny", group="anchor",
                         containerInstances=[f.arn["D"]])
    assert f.where(out["tasks"]) == {"D": 1}
    return f


ALL = set("ABCDEF")
MEMBER_OF_CASES = [
    ("attribute:ecs.instance-type == t2.micro", {"A"}),
    ("attribute:stack != prod", {"B", "D", "E"}),  # no attribute: != holds
    ("attribute:ecs.instance-type in [t2.micro, m5.large]", {"A", "C"}),
    ("attribute:ecs.instance-type =~ t2.*", {"A", "B"}),
    ("attribute:ecs.instance-type == t2.*", {"A", "B"}),  # wildcard
    ("attribute:ecs.instance-type !~ t.*", {"C", "D", "E"}),
    ("attribute:gpu exists", {"A", "E"}),
    ("attribute:gpu !exists", {"B", "C", "D", "F"}),
    ("attribute:stack == prod && attribute:ecs.availability-zone == us-east-1b", {"C"}),
    ("attribute:stack == dev || attribute:ecs.instance-type == m5.xlarge", {"B", "D", "E"}),
    ("(attribute:stack == prod || attribute:stack == dev) && "
     "attribute:ecs.availability-zone != us-east-1a", {"C", "E", "F"}),
    ("attribute:stack == prod && (attribute:ecs.availability-zone == us-east-1a || "
     "attribute:ecs.availability-zone == us-east-1c)", {"A", "F"}),
    ("!(attribute:stack == prod)", {"B", "D", "E"}),
    ("attribute:os == \"amazon linux 2\"", {"F"}),
    ("attribute:os in ['amazon linux 2', bottlerocket]", {"F"}),
    ("task:group == anchor", {"D"}),
    ("task:group != anchor", ALL - {"D"}),
    ("attribute:nonexistent == x", set()),
]


@pytest.mark.parametrize("expression, expected", MEMBER_OF_CASES,
                         ids=[c[0] for c in MEMBER_OF_CASES])
def test_member_of(zoo, unique, expression, expected):
    """memberOf + distinctInstance with count 10: exactly the matching instances get one task;
    the rest are reported with the first constraint they fail."""
    ecs = zoo.ecs
    out = ecs.run_task(cluster=zoo.cluster, taskDefinition="zoo-tiny", count=10,
                       group=unique("g"),
                       placementConstraints=[{"type": "memberOf", "expression": expression},
                                             {"type": "distinctInstance"}])
    assert zoo.where(out["tasks"]) == {x: 1 for x in expected}
    assert zoo.failures(out) == {x: (REASON_DISTINCT if x in expected else REASON_MEMBER_OF)
                                 for x in ALL}


def test_running_tasks_count_treats_new_tasks_the_same_within_and_across_calls(ecs, unique):
    """memberOf(runningTasksCount == 0), count 4, twice, on 2 empty instances.

    Whatever runningTasksCount means for a task that is placed but not yet RUNNING, it should mean
    the same inside one RunTask as between two: either such tasks count (the first call places 2,
    one per instance, and the second places none: 2 in all) or they do not (4 + 4 = 8).
    """
    f = make_fleet(ecs, unique, "rtc")
    f.add("p")
    f.add("q")
    fam = unique("rtc")
    register_td(ecs, fam)
    rule = [{"type": "memberOf", "expression": "runningTasksCount == 0"}]
    first = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=4, placementConstraints=rule)
    second = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=4,
                          placementConstraints=rule)
    placed = (len(first["tasks"]), len(second["tasks"]))
    assert sum(placed) in (2, 8), (
        f"placed {placed}: tasks placed earlier in the same call count as running, tasks placed "
        f"by an earlier call do not; instances report runningTasksCount="
        f"{[f.describe(x)['runningTasksCount'] for x in 'pq']}, pendingTasksCount="
        f"{[f.describe(x)['pendingTasksCount'] for x in 'pq']}")


def test_member_of_ec2_instance_id(zoo, unique):
    ids = [zoo.registered["A"]["ec2"], zoo.registered["C"]["ec2"]]
    out = zoo.ecs.run_task(cluster=zoo.cluster, taskDefinition="zoo-tiny", count=2,
                           group=unique("g"), placementConstraints=[
                               {"type": "memberOf",
                                "expression": f"ec2InstanceId in [{ids[0]}, {ids[1]}]"},
                               {"type": "distinctInstance"}])
    assert zoo.where(out["tasks"]) == {"A": 1, "C": 1}


def test_distinct_instance_counts_existing_tasks_of_the_group(zoo, unique):
    group = unique("g")
    first = zoo.ecs.run_task(cluster=zoo.cluster, taskDefinition="zoo-tiny", count=4, group=group,
                             placementConstraints=[{"type": "distinctInstance"}])
    assert len(first["tasks"]) == 4 and set(zoo.where(first["tasks"]).values()) == {1}
    second = zoo.ecs.run_task(cluster=zoo.cluster, taskDefinition="zoo-tiny", count=4,
                              group=group, placementConstraints=[{"type": "distinctInstance"}])
    assert len(second["tasks"]) == 2
    assert not set(zoo.where(first["tasks"])) & set(zoo.where(second["tasks"]))
    assert set(zoo.failures(second).values()) == {REASON_DISTINCT}


def test_task_definition_constraints_apply(zoo, unique):
    fam = unique("tdc")
    td = register_td(zoo.ecs, fam, cpu=1, memory=8, placementConstraints=[
        {"type": "memberOf", "expression": "attribute:stack == dev"}])
    assert td["placementConstraints"] == [{"type": "memberOf",
                                           "expression": "attribute:stack == dev"}]
    out = zoo.ecs.run_task(cluster=zoo.cluster, taskDefinition=fam, count=6)
    assert set(zoo.where(out["tasks"])) <= {"B", "E"} and len(out["tasks"]) == 6
    # ... combined with the request's own constraints (both must hold).
    out = zoo.ecs.run_task(cluster=zoo.cluster, taskDefinition=fam, count=3,
                           placementConstraints=[{"type": "memberOf",
                                                  "expression": "attribute:gpu exists"}])
    assert zoo.where(out["tasks"]) == {"E": 3}


@pytest.mark.parametrize("expression, position", [
    ("attribute:stack ==", 19),
    ("attribute:stack == prod &&", 27),
    ("(attribute:stack == prod", 25),
    ("bogus == 1", 1),
    ("attribute:ecs.instance-type =~ '['", 32),
])
def test_invalid_expression_names_the_position(zoo, expression, position):
    ecs = zoo.ecs
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.run_task(cluster=zoo.cluster, taskDefinition="zoo-tiny", placementConstraints=[
            {"type": "memberOf", "expression": "attribute:stack exists"},
            {"type": "memberOf", "expression": expression}])
    msg = e.value.response["Error"]["Message"]
    assert "Placement constraint 2" in msg and f"position {position}" in msg, msg


def test_constraint_shape_errors(zoo):
    ecs = zoo.ecs
    for bad in ([{"type": "memberOf"}],
                [{"type": "distinctInstance", "expression": "attribute:a exists"}],
                [{"type": "sameInstance"}]):
        with pytest.raises(ecs.exceptions.InvalidParameterException):
            ecs.run_task(cluster=zoo.cluster, taskDefinition="zoo-tiny", placementConstraints=bad)


def test_list_container_instances_filter_agrees_with_member_of(zoo):
    for expression, expected in MEMBER_OF_CASES:
        arns = zoo.ecs.list_container_instances(cluster=zoo.cluster,
                                                filter=expression)["containerInstanceArns"]
        if expression.startswith("task:group"):
            continue  # other tests add groups; task:group is checked through RunTask
        assert {zoo.label[a] for a in arns} == expected, expression
    # runningTasksCount counts every task an instance holds, pending ones included.
    described = zoo.ecs.describe_container_instances(
        cluster=zoo.cluster, containerInstances=list(zoo.label))["containerInstances"]
    idle = {zoo.label[c["containerInstanceArn"]] for c in described
            if c["runningTasksCount"] + c["pendingTasksCount"] == 0}
    assert "D" not in idle  # holds the pending "anchor" task
    arns = zoo.ecs.list_container_instances(cluster=zoo.cluster,
                                            filter="runningTasksCount == 0")["containerInstanceArns"]
    assert {zoo.label[a] for a in arns} == idle
    arns = zoo.ecs.list_container_instances(cluster=zoo.cluster,
                                            filter="runningTasksCount > 0")["containerInstanceArns"]
    assert {zoo.label[a] for a in arns} == ALL - idle
    with pytest.raises(zoo.ecs.exceptions.InvalidParameterException) as e:
        zoo.ecs.list_container_instances(cluster=zoo.cluster, filter="attribute:x ==")
    assert "position" in str(e.value)


# ---- failure reasons

def test_failure_reasons_for_each_resource_and_attribute(ecs, unique):
    f = make_fleet(ecs, unique, "reasons")
    f.add("cpu", cpu=100, memory=4096)
    f.add("mem", cpu=4096, memory=100)
    f.add("tcp", ports=("22", "8080"))
    f.add("udp", udp_ports=("53",))
    f.add("fits", attributes=[("ecs.capability.container-health-check", None),
                              ("com.amazonaws.ecs.capability.docker-remote-api.1.24", None)])
    fam = unique("need")
    register_td(ecs, fam, cpu=200, memory=200, host_ports=(8080,), udp_ports=(53,),
                container={"healthCheck": {"command": ["CMD-SHELL", "true"]}})
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=2)
    assert f.where(out["tasks"]) == {"fits": 1}
    # Checked in this order: ATTRIBUTE, RESOURCE:CPU, RESOURCE:MEMORY, RESOURCE:PORTS, _UDP.
    assert f.failures(out) == {"cpu": "ATTRIBUTE", "mem": "ATTRIBUTE", "tcp": "ATTRIBUTE",
                               "udp": "ATTRIBUTE", "fits": "RESOURCE:PORTS"}

    # Without the health check, the resource reasons show.
    fam2 = unique("need2")
    register_td(ecs, fam2, cpu=200, memory=200, host_ports=(8080,), udp_ports=(53,))
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam2, count=1)
    assert out["tasks"] == []
    assert f.failures(out) == {"cpu": "RESOURCE:CPU", "mem": "RESOURCE:MEMORY",
                               "tcp": "RESOURCE:PORTS", "udp": "RESOURCE:PORTS_UDP",
                               "fits": "RESOURCE:PORTS"}


def test_memory_reservation_requires_its_capability(ecs, unique):
    f = make_fleet(ecs, unique, "memres")
    f.add("old")
    f.add("new", attributes=[("com.amazonaws.ecs.capability.docker-remote-api.1.21", None)])
    fam = unique("res")
    ecs.register_task_definition(family=fam, containerDefinitions=[
        {"name": "app", "image": "busybox", "memoryReservation": 128}])
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=2)
    assert f.where(out["tasks"]) == {"new": 2}
    assert f.remaining("new")["memory"] == 4096 - 256  # the soft limit is what is reserved


def test_no_instances_and_only_draining_instances(ecs, unique):
    f = make_fleet(ecs, unique, "empty")
    fam = unique("e")
    register_td(ecs, fam)
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.run_task(cluster=f.cluster, taskDefinition=fam)
    assert "No Container Instances were found in your cluster." in str(e.value)
    f.add("d")
    ecs.update_container_instances_state(cluster=f.cluster, containerInstances=[f.arn["d"]],
                                         status="DRAINING")
    with pytest.raises(ecs.exceptions.InvalidParameterException) as e:
        ecs.run_task(cluster=f.cluster, taskDefinition=fam)
    assert "No Container Instances were found in your cluster." in str(e.value)


# ---- host ports

def test_static_host_port_is_reserved(ecs, unique):
    f = make_fleet(ecs, unique, "ports")
    f.add("p", ports=("22",))
    f.add("q", ports=("22",))
    fam = unique("web")
    register_td(ecs, fam, host_ports=(8080,))
    one = ecs.run_task(cluster=f.cluster, taskDefinition=fam)
    two = ecs.run_task(cluster=f.cluster, taskDefinition=fam)
    assert set(f.where(one["tasks"]) + f.where(two["tasks"])) == {"p", "q"}
    for label in "pq":
        assert f.remaining(label)["ports"] == {"22", "8080"}
    three = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=2)
    assert three["tasks"] == []
    assert f.failures(three) == {"p": "RESOURCE:PORTS", "q": "RESOURCE:PORTS"}
    # A port the instance reserved at registration is not available either.
    fam22 = unique("ssh")
    register_td(ecs, fam22, host_ports=(22,))
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam22)
    assert f.failures(out) == {"p": "RESOURCE:PORTS", "q": "RESOURCE:PORTS"}
    # Stopping a task frees its port for the next one.
    ecs.stop_task(cluster=f.cluster, task=one["tasks"][0]["taskArn"])
    freed = f.label[one["tasks"][0]["containerInstanceArn"]]
    assert f.remaining(freed)["ports"] == {"22"}
    again = ecs.run_task(cluster=f.cluster, taskDefinition=fam)
    assert f.where(again["tasks"]) == {freed: 1}


def test_static_port_spreads_within_one_call(ecs, unique):
    f = make_fleet(ecs, unique, "ports1")
    for x in "abc":
        f.add(x)
    fam = unique("web")
    register_td(ecs, fam, host_ports=(8080,))
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=5,
                       placementStrategy=[{"type": "binpack", "field": "memory"}])
    # binpack would stack them, but the port allows one per instance.
    assert f.where(out["tasks"]) == {"a": 1, "b": 1, "c": 1}
    assert set(f.failures(out).values()) == {"RESOURCE:PORTS"}


def test_dynamic_host_ports_are_not_reserved(ecs, unique):
    f = make_fleet(ecs, unique, "dyn")
    f.add("only")
    fam = unique("dyn")
    register_td(ecs, fam, dynamic_ports=2)
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=5)
    assert len(out["tasks"]) == 5 and out["failures"] == []
    rem = f.remaining("only")
    assert rem["ports"] == {"22"} and rem["udp"] == set()


def test_udp_ports_are_separate_from_tcp(ecs, unique):
    f = make_fleet(ecs, unique, "udp")
    f.add("only")
    tcp, udp = unique("tcp"), unique("udp")
    register_td(ecs, tcp, host_ports=(5000,))
    register_td(ecs, udp, udp_ports=(5000,))
    assert len(ecs.run_task(cluster=f.cluster, taskDefinition=tcp)["tasks"]) == 1
    assert len(ecs.run_task(cluster=f.cluster, taskDefinition=udp)["tasks"]) == 1
    rem = f.remaining("only")
    assert rem["ports"] == {"22", "5000"} and rem["udp"] == {"5000"}
    out = ecs.run_task(cluster=f.cluster, taskDefinition=udp)
    assert f.failures(out) == {"only": "RESOURCE:PORTS_UDP"}
    out = ecs.run_task(cluster=f.cluster, taskDefinition=tcp)
    assert f.failures(out) == {"only": "RESOURCE:PORTS"}


def test_host_network_mode_reserves_the_container_port(ecs, unique):
    f = make_fleet(ecs, unique, "hostnet")
    f.add("only")
    fam = unique("hostnet")
    ecs.register_task_definition(family=fam, networkMode="host", containerDefinitions=[
        {"name": "app", "image": "busybox", "memory": 32,
         "portMappings": [{"containerPort": 7070}]}])
    assert len(ecs.run_task(cluster=f.cluster, taskDefinition=fam)["tasks"]) == 1
    assert f.remaining("only")["ports"] == {"22", "7070"}
    assert f.failures(ecs.run_task(cluster=f.cluster, taskDefinition=fam)) == {
        "only": "RESOURCE:PORTS"}


# ---- accounting

def test_remaining_resources_and_pending_count_follow_placements(ecs, unique):
    f = make_fleet(ecs, unique, "acct")
    f.add("only", cpu=1024, memory=2048)
    fam = unique("acct")
    register_td(ecs, fam, cpu=100, memory=300, host_ports=(9000,), udp_ports=(9001,))
    dyn = unique("acctdyn")
    register_td(ecs, dyn, cpu=50, memory=100)
    a = ecs.run_task(cluster=f.cluster, taskDefinition=fam)["tasks"]
    b = ecs.run_task(cluster=f.cluster, taskDefinition=dyn, count=3)["tasks"]
    assert len(a) == 1 and len(b) == 3
    rem = f.remaining("only")
    assert rem == {"cpu": 1024 - 100 - 150, "memory": 2048 - 300 - 300,
                   "ports": {"22", "9000"}, "udp": {"9001"}, "pending": 4, "running": 0}
    reg = {x["name"]: x for x in f.describe("only")["registeredResources"]}
    assert reg["CPU"]["integerValue"] == 1024 and reg["MEMORY"]["integerValue"] == 2048
    stopped = ecs.stop_task(cluster=f.cluster, task=a[0]["taskArn"], reason="done")["task"]
    assert stopped["lastStatus"] == "STOPPED" and stopped["desiredStatus"] == "STOPPED"
    assert stopped["stopCode"] == "UserInitiated" and stopped["stoppedReason"] == "done"
    assert f.remaining("only") == {"cpu": 1024 - 150, "memory": 2048 - 300, "ports": {"22"},
                                   "udp": set(), "pending": 3, "running": 0}
    # Stopping twice gives nothing back twice.
    ecs.stop_task(cluster=f.cluster, task=a[0]["taskArn"])
    assert f.remaining("only")["memory"] == 2048 - 300
    for t in b:
        ecs.stop_task(cluster=f.cluster, task=t["taskArn"])
    assert f.remaining("only") == {"cpu": 1024, "memory": 2048, "ports": {"22"}, "udp": set(),
                                   "pending": 0, "running": 0}


def test_overrides_change_what_is_reserved(ecs, unique):
    f = make_fleet(ecs, unique, "ovr")
    f.add("only", cpu=4096, memory=4096)
    fam = unique("ovr")
    register_td(ecs, fam, cpu=100, memory=100)
    t = ecs.run_task(cluster=f.cluster, taskDefinition=fam, overrides={
        "containerOverrides": [{"name": "app", "cpu": 300, "memory": 700}]})["tasks"][0]
    assert (t["cpu"], t["memory"]) == ("300", "700")
    assert f.remaining("only")["cpu"] == 4096 - 300
    assert f.remaining("only")["memory"] == 4096 - 700
    t = ecs.run_task(cluster=f.cluster, taskDefinition=fam,
                     overrides={"cpu": "1024", "memory": "2048"})["tasks"][0]
    assert (t["cpu"], t["memory"]) == ("1024", "2048")
    assert f.remaining("only")["cpu"] == 4096 - 300 - 1024
    assert f.remaining("only")["memory"] == 4096 - 700 - 2048
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam,
                       overrides={"containerOverrides": [{"name": "app", "memory": 2000}]})
    assert f.failures(out) == {"only": "RESOURCE:MEMORY"}
    with pytest.raises(ecs.exceptions.InvalidParameterException):
        ecs.run_task(cluster=f.cluster, taskDefinition=fam,
                     overrides={"containerOverrides": [{"name": "nope", "cpu": 1}]})


def test_draining_and_deregistered_instances_get_nothing(ecs, unique):
    f = make_fleet(ecs, unique, "drain")
    for x in ("keep", "drain", "gone"):
        f.add(x)
    ecs.update_container_instances_state(cluster=f.cluster, containerInstances=[f.arn["drain"]],
                                         status="DRAINING")
    ecs.deregister_container_instance(cluster=f.cluster, containerInstance=f.arn["gone"])
    fam = unique("dr")
    register_td(ecs, fam, host_ports=(8080,))
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, count=3,
                       placementStrategy=[{"type": "spread", "field": "instanceId"}])
    assert f.where(out["tasks"]) == {"keep": 1}
    # Only ACTIVE instances are listed in failures.
    assert f.failures(out) == {"keep": "RESOURCE:PORTS"}
    assert f.remaining("drain")["pending"] == 0 and f.remaining("gone")["pending"] == 0
    # StartTask on them: MISSING for the deregistered, and nothing on the draining one either.
    out = ecs.start_task(cluster=f.cluster, taskDefinition=fam,
                         containerInstances=[f.arn["drain"], f.arn["gone"]])
    assert out["tasks"] == []
    assert f.failures(out)["gone"] == "MISSING"
    # Back to ACTIVE: it takes tasks again.
    ecs.update_container_instances_state(cluster=f.cluster, containerInstances=[f.arn["drain"]],
                                         status="ACTIVE")
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam)
    assert f.where(out["tasks"]) == {"drain": 1}


def test_reregistration_keeps_ports_held_by_tasks(ecs, unique):
    """An agent re-registers its instance (restart, new agent version) while tasks hold ports."""
    f = make_fleet(ecs, unique, "rereg")
    arn = f.add("only", cpu=1024, memory=1000)
    fam = unique("rr")
    register_td(ecs, fam, cpu=100, memory=100, host_ports=(8080,), udp_ports=(5353,))
    assert len(ecs.run_task(cluster=f.cluster, taskDefinition=fam)["tasks"]) == 1
    held = f.remaining("only")
    assert held["ports"] == {"22", "8080"} and held["udp"] == {"5353"}
    ecs.register_container_instance(
        cluster=f.cluster, containerInstanceArn=arn,
        instanceIdentityDocument=identity_document(f.registered["only"]["ec2"]),
        totalResources=total_resources(cpu=1024, memory=1000, ports=("22",)),
        versionInfo=VERSION_INFO)
    # CPU and memory held by the task are kept across re-registration; its ports must be too.
    assert f.remaining("only") == held
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam)
    assert out["tasks"] == [], "port 8080 was booked twice on the same instance"
    assert f.failures(out) == {"only": "RESOURCE:PORTS"}


def test_drain_is_respected_by_run_task_in_flight(make_server):
    """RunTask calls racing UpdateContainerInstancesState(DRAINING): no call that starts after the
    drain was acknowledged places a task on the drained instance."""
    srv = make_server()
    ecs = srv.client()
    ecs.create_cluster(clusterName="drainrace")
    f = Fleet(ecs, "drainrace")
    for x in "abcd":
        f.add(x, cpu=100000, memory=100000)
    register_td(ecs, "drainrace", cpu=1, memory=8)
    drained = threading.Event()
    late_on_a, late_calls, errors = [], [], []

    def runner():
        # Run until well past the drain (RunTask is fast enough that a fixed number of calls can
        # all finish before it), bounded in count.
        client = srv.client()
        after = 0
        for _ in range(5000):
            if after >= 15:
                break
            after_drain = drained.is_set()
            after += after_drain
            try:
                out = client.run_task(cluster="drainrace", taskDefinition="drainrace", count=10,
                                      placementStrategy=[{"type": "spread",
                                                          "field": "instanceId"}])
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))
                continue
            if after_drain:
                late_calls.append(len(out["tasks"]))
                late_on_a.extend(t["taskArn"] for t in out["tasks"]
                                 if t["containerInstanceArn"] == f.arn["a"])

    threads = [threading.Thread(target=runner) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    ecs.update_container_instances_state(cluster="drainrace", containerInstances=[f.arn["a"]],
                                         status="DRAINING")
    drained.set()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == [] and late_on_a == []
    assert len(late_calls) > 0 and sum(late_calls) == 10 * len(late_calls)  # b, c, d had room
    assert f.describe("a")["status"] == "DRAINING"


def test_distinct_instance_ignores_stopped_tasks(ecs, unique):
    f = make_fleet(ecs, unique, "diststop")
    f.add("only")
    fam = unique("ds")
    register_td(ecs, fam)
    rule = [{"type": "distinctInstance"}]
    t = ecs.run_task(cluster=f.cluster, taskDefinition=fam, placementConstraints=rule)["tasks"]
    assert len(t) == 1
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, placementConstraints=rule)
    assert f.failures(out) == {"only": REASON_DISTINCT}
    ecs.stop_task(cluster=f.cluster, task=t[0]["taskArn"])
    out = ecs.run_task(cluster=f.cluster, taskDefinition=fam, placementConstraints=rule)
    assert len(out["tasks"]) == 1


# ---- the AWS CLI

def test_cli_run_task_with_strategy_and_constraint(shared_server, ecs, unique):
    f = make_fleet(ecs, unique, "cli")
    f.add("micro", itype="t2.micro", memory=1000)
    f.add("large", itype="t2.large", memory=3000)
    f.add("m5", itype="m5.large", memory=500)
    fam = unique("cli")
    register_td(ecs, fam, memory=200)
    rc, out = shared_server.aws(
        "ecs", "run-task", "--cluster", f.cluster, "--task-definition", fam, "--count", "3",
        "--placement-strategy", "type=binpack,field=memory",
        "--placement-constraints",
        "type=memberOf,expression=attribute:ecs.instance-type =~ t2.*",
        "--started-by", "cli-test")
    assert rc == 0, out
    assert [f.label[t["containerInstanceArn"]] for t in out["tasks"]] == [
        "micro", "micro", "micro"]
    assert all(t["startedBy"] == "cli-test" for t in out["tasks"])
    rc, out = shared_server.aws(
        "ecs", "run-task", "--cluster", f.cluster, "--task-definition", fam, "--count", "4",
        "--placement-strategy", "type=spread,field=attribute:ecs.instance-type",
        "type=binpack,field=memory",
        "--placement-constraints", "type=distinctInstance", "--group", unique("cligroup"))
    assert rc == 0, out
    assert f.where(out["tasks"]) == {"micro": 1, "large": 1, "m5": 1}
    assert {fl["reason"] for fl in out["failures"]} == {REASON_DISTINCT}
    rc, err = shared_server.aws(
        "ecs", "run-task", "--cluster", f.cluster, "--task-definition", fam,
        "--placement-constraints", "type=memberOf,expression=attribute:ecs.instance-type ==")
    assert rc != 0 and "InvalidParameterException" in err and "position" in err, err


# ---- concurrency: no double booking

def test_concurrent_run_task_never_double_books(make_server):
    srv = make_server()
    ecs = srv.client()
    ecs.create_cluster(clusterName="race")
    f = Fleet(ecs, "race")
    # Each task takes 50 CPU / 100 MiB: capacity per instance is min(cpu/50, memory/100).
    sizes = {"w": (500, 4000), "x": (2000, 700), "y": (300, 300), "z": (1000, 1000)}
    capacity = {k: min(c // 50, m // 100) for k, (c, m) in sizes.items()}  # 10, 7, 3, 10
    for label, (cpu, mem) in sizes.items():
        f.add(label, cpu=cpu, memory=mem, ports=("22",))
    register_td(ecs, "race-dyn", cpu=50, memory=100, dynamic_ports=1)
    register_td(ecs, "race-port", cpu=50, memory=100, host_ports=(9000,), udp_ports=(9000,))
    strategies = [[{"type": "binpack", "field": "memory"}],
                  [{"type": "spread", "field": "instanceId"}],
                  [{"type": "random"}], []]

    placed, errors = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def worker(seed):
        rng = random.Random(seed)
        client = srv.client()
        mine = []
        barrier.wait()
        for _ in range(25):
            try:
                out = client.run_task(cluster="race", count=rng.randint(2, 10),
                                      taskDefinition=rng.choice(["race-dyn", "race-port"]),
                                      placementStrategy=rng.choice(strategies))
                mine += [t["taskArn"] for t in out["tasks"]]
                with lock:
                    placed.extend(out["tasks"])
                # Churn: stop some of our own tasks so capacity keeps coming back.
                if mine and rng.random() < 0.5:
                    client.stop_task(cluster="race", task=mine.pop(rng.randrange(len(mine))))
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == []
    assert len({t["taskArn"] for t in placed}) == len(placed)

    def check():
        live = all_live_tasks(ecs, "race")
        by_inst = collections.defaultdict(list)
        for t in live:
            assert t["desiredStatus"] == "RUNNING" and t["lastStatus"] == "PENDING"
            by_inst[f.label[t["containerInstanceArn"]]].append(t)
        for label, (cpu, mem) in sizes.items():
            tasks = by_inst[label]
            used_cpu = sum(int(t["cpu"]) for t in tasks)
            used_mem = sum(int(t["memory"]) for t in tasks)
            assert used_cpu <= cpu and used_mem <= mem, (label, used_cpu, used_mem)
            port_tasks = [t for t in tasks if "race-port" in t["taskDefinitionArn"]]
            assert len(port_tasks) <= 1, f"port 9000 booked {len(port_tasks)} times on {label}"
            rem = f.remaining(label)
            assert rem["cpu"] == cpu - used_cpu and rem["memory"] == mem - used_mem, (label, rem)
            assert rem["ports"] == {"22"} | ({"9000"} if port_tasks else set()), (label, rem)
            assert rem["udp"] == ({"9000"} if port_tasks else set()), (label, rem)
            assert rem["pending"] == len(tasks), (label, rem)
        return live, by_inst

    live, _ = check()
    # Fill what is left: the number of live tasks is then exactly the capacity.
    while ecs.run_task(cluster="race", taskDefinition="race-dyn", count=10)["tasks"]:
        pass
    live, by_inst = check()
    assert {k: len(v) for k, v in by_inst.items()} == capacity
    assert len(live) == sum(capacity.values())


# ---- a fleet registering at once

AGENTS, WRITERS = 1000, 6

def test_concurrent_registrations_into_one_cluster_all_succeed(make_server):
    """AGENTS agents (WRITERS at a time) register into one cluster, as an autoscaling group coming up
    would. Each registration writes its own instance record; none may fail."""
    srv = make_server()
    ecs = srv.client()
    ecs.create_cluster(clusterName="fleet")
    errors, done = [], []

    akid, secret = srv.keys()
    # Signed up front, sent on raw keep-alive connections: the server's threads then always have
    # a registration waiting, as with a fleet of real agents (boto3's overhead would space the
    # calls out and hide the failure).
    batches = [[] for _ in range(WRITERS)]
    for i in range(AGENTS):
        body = json.dumps({
            "cluster": "fleet",
            "instanceIdentityDocument": identity_document("i-%017x" % (0x0c000000 + i)),
            "totalResources": total_resources(), "versionInfo": VERSION_INFO}).encode()
        path, headers = sign(srv.host, akid, secret, body, action="RegisterContainerInstance")
        batches[i % WRITERS].append((i, path, headers, body))

    def agent(k):
        conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
        try:
            for i, path, headers, body in batches[k]:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                answer = resp.read()
                if resp.status == 200:
                    done.append(i)
                else:
                    errors.append((i, resp.status, answer[:200]))
        finally:
            conn.close()

    threads = [threading.Thread(target=agent, args=(k,)) for k in range(WRITERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == [], f"{len(errors)} of {AGENTS} registrations failed, first: {errors[:2]}"
    assert len(done) == AGENTS


# ---- durability of placements

def test_placements_survive_kill9(make_server):
    srv = make_server()
    ecs = srv.client()
    ecs.create_cluster(clusterName="dur")
    f = Fleet(ecs, "dur")
    f.add("a", cpu=1000, memory=1000)
    f.add("b", cpu=1000, memory=1000)
    register_td(ecs, "dur-web", cpu=100, memory=250, host_ports=(8080,))
    register_td(ecs, "dur-dyn", cpu=100, memory=250)
    web = ecs.run_task(cluster="dur", taskDefinition="dur-web", count=2)["tasks"]
    dyn = ecs.run_task(cluster="dur", taskDefinition="dur-dyn", count=3,
                       placementStrategy=[{"type": "binpack", "field": "memory"}])["tasks"]
    assert len(web) == 2 and len(dyn) == 3
    before = {x: f.remaining(x) for x in "ab"}
    arns = [t["taskArn"] for t in web + dyn]

    srv.restart(kill9=True)
    ecs = srv.client()
    f.ecs = ecs
    assert {x: f.remaining(x) for x in "ab"} == before
    out = ecs.describe_tasks(cluster="dur", tasks=arns)
    assert out["failures"] == [] and len(out["tasks"]) == 5
    assert {t["taskArn"]: t["containerInstanceArn"] for t in out["tasks"]} == {
        t["taskArn"]: t["containerInstanceArn"] for t in web + dyn}
    # The port is still taken on both; memory fills to exactly what is left (4 per instance).
    out = ecs.run_task(cluster="dur", taskDefinition="dur-web")
    assert out["tasks"] == []
    assert f.failures(out) == {x: "RESOURCE:MEMORY" if before[x]["memory"] < 250 else
                               "RESOURCE:PORTS" for x in "ab"}
    more = ecs.run_task(cluster="dur", taskDefinition="dur-dyn", count=10)
    assert len(more["tasks"]) == 8 - 5
    for x in "ab":
        rem = f.remaining(x)
        assert rem["memory"] >= 0 and rem["cpu"] >= 0
        assert rem["pending"] == 4 - (rem["memory"] // 250)
    # And a stop after the restart gives back what a task took before it.
    ecs.stop_task(cluster="dur", task=web[0]["taskArn"])
    label = f.label[web[0]["containerInstanceArn"]]
    assert f.remaining(label)["ports"] == {"22"}
    assert len(ecs.run_task(cluster="dur", taskDefinition="dur-dyn")["tasks"]) == 1
