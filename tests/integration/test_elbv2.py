"""The ELBv2 API (query protocol) end to end: the AWS CLI v2 and boto3 against `berth server`.

The server runs with `--haproxy none`: these tests check the API and the recorded state, so no
proxy binds the listeners' ports and target health stays what the configuration alone decides
(unused / initial / draining). Traffic through a real proxy is test_lb_services.py's job.
"""

import botocore.exceptions
import pytest

from berth_harness import ACCOUNT, REGION, BerthServer, send, sign

ARN_PREFIX = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:"
INSTANCE = "i-0123456789abcdef0"
OTHER_INSTANCE = "i-0123456789abcdef1"


@pytest.fixture(scope="module")
def elb_server(tmp_path_factory):
    s = BerthServer(tmp_path_factory.mktemp("berth-elbv2"),
                    extra_args=["--haproxy", "none"]).start()
    yield s
    if s.proc is not None:
        rc = s.stop()
        assert rc == 0, f"berth server exited {rc} on SIGTERM; stderr: {s.stderr()}"


@pytest.fixture(scope="module")
def elbv2(elb_server):
    return elb_server.client("elbv2")


def code_of(call, *args, **kw):
    """The error code a boto3 call fails with."""
    return error_of(call, *args, **kw)["Code"]


def error_of(call, *args, **kw):
    """The error (Code, Message) a boto3 call fails with."""
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call(*args, **kw)
    return e.value.response["Error"]


def cli(server, *args):
    rc, out = server.aws("elbv2", *args)
    assert rc == 0, out
    return out


def cli_error(server, *args):
    rc, out = server.aws("elbv2", *args)
    assert rc != 0, f"expected a failure, got {out}"
    return out


def make_lb(elbv2, name, address=None):
    kw = {"Name": name}
    if address:
        kw["SubnetMappings"] = [{"SubnetId": "local", "PrivateIPv4Address": address}]
    return elbv2.create_load_balancer(**kw)["LoadBalancers"][0]["LoadBalancerArn"]


def make_tg(elbv2, name, **kw):
    args = {"Name": name, "Protocol": "HTTP", "Port": 80}
    args.update(kw)
    return elbv2.create_target_group(**args)["TargetGroups"][0]["TargetGroupArn"]


def forward(tg):
    return [{"Type": "forward", "TargetGroupArn": tg}]


def states(elbv2, tg, **kw):
    descs = elbv2.describe_target_health(TargetGroupArn=tg, **kw)["TargetHealthDescriptions"]
    return {(d["Target"]["Id"], d["Target"]["Port"]): d["TargetHealth"] for d in descs}


def test_cli_full_flow(elb_server, unique):
    lb_name, tg_name = unique("web"), unique("app")
    lb = cli(elb_server, "create-load-balancer", "--name", lb_name,
             "--subnet-mappings", "SubnetId=local,PrivateIPv4Address=127.0.0.1")["LoadBalancers"][0]
    assert lb["LoadBalancerArn"].startswith(f"{ARN_PREFIX}loadbalancer/app/{lb_name}/")
    assert lb["DNSName"] == "127.0.0.1"
    assert lb["State"] == {"Code": "active"}
    assert lb["Scheme"] == "internet-facing"
    assert lb["Type"] == "application"
    assert lb["AvailabilityZones"][0]["SubnetId"] == "local"
    lb_arn = lb["LoadBalancerArn"]

    tg = cli(elb_server, "create-target-group", "--name", tg_name, "--protocol", "HTTP",
             "--port", "8080", "--target-type", "instance",
             "--health-check-path", "/healthz", "--health-check-interval-seconds", "10",
             "--health-check-timeout-seconds", "3", "--healthy-threshold-count", "2",
             "--unhealthy-threshold-count", "3", "--matcher", "HttpCode=200-299")["TargetGroups"][0]
    assert tg["HealthCheckPath"] == "/healthz"
    assert tg["HealthCheckIntervalSeconds"] == 10
    assert tg["HealthCheckTimeoutSeconds"] == 3
    assert tg["HealthyThresholdCount"] == 2
    assert tg["UnhealthyThresholdCount"] == 3
    assert tg["Matcher"] == {"HttpCode": "200-299"}
    assert tg["HealthCheckPort"] == "traffic-port"
    tg_arn = tg["TargetGroupArn"]

    # Registered before any listener: the group receives no traffic yet.
    cli(elb_server, "register-targets", "--target-group-arn", tg_arn,
        "--targets", f"Id={INSTANCE}", f"Id={OTHER_INSTANCE},Port=32768")
    health = cli(elb_server, "describe-target-health", "--target-group-arn", tg_arn)
    got = {(d["Target"]["Id"], d["Target"]["Port"]): d for d in health["TargetHealthDescriptions"]}
    assert set(got) == {(INSTANCE, 8080), (OTHER_INSTANCE, 32768)}
    assert got[(INSTANCE, 8080)]["TargetHealth"]["State"] == "unused"
    assert got[(INSTANCE, 8080)]["TargetHealth"]["Reason"] == "Target.NotInUse"
    assert got[(OTHER_INSTANCE, 32768)]["HealthCheckPort"] == "32768"

    listener = cli(elb_server, "create-listener", "--load-balancer-arn", lb_arn,
                   "--protocol", "HTTP", "--port", "18080",
                   "--default-actions", f"Type=forward,TargetGroupArn={tg_arn}")["Listeners"][0]
    assert listener["Port"] == 18080
    assert listener["DefaultActions"][0]["TargetGroupArn"] == tg_arn
    assert listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"] == [
        {"TargetGroupArn": tg_arn, "Weight": 1}]
    listener_arn = listener["ListenerArn"]

    health = cli(elb_server, "describe-target-health", "--target-group-arn", tg_arn)
    for d in health["TargetHealthDescriptions"]:
        assert d["TargetHealth"] == {"State": "initial", "Reason": "Elb.RegistrationInProgress",
                                     "Description": "Target registration is in progress"}

    cli(elb_server, "create-rule", "--listener-arn", listener_arn, "--priority", "10",
        "--conditions", "Field=path-pattern,Values=/api/*",
        "--actions", f"Type=forward,TargetGroupArn={tg_arn}")
    cli(elb_server, "create-rule", "--listener-arn", listener_arn, "--priority", "5",
        "--conditions",
        '[{"Field":"host-header","HostHeaderConfig":{"Values":["api.example.com"]}}]',
        "--actions", f"Type=forward,TargetGroupArn={tg_arn}")
    rules = cli(elb_server, "describe-rules", "--listener-arn", listener_arn)["Rules"]
    assert [r["Priority"] for r in rules] == ["5", "10", "default"]
    assert rules[0]["Conditions"][0]["HostHeaderConfig"]["Values"] == ["api.example.com"]
    assert rules[1]["Conditions"][0]["PathPatternConfig"]["Values"] == ["/api/*"]
    assert rules[1]["Conditions"][0]["Values"] == ["/api/*"]
    assert rules[2]["IsDefault"] is True

    lbs = cli(elb_server, "describe-load-balancers", "--names", lb_name)["LoadBalancers"]
    assert [x["LoadBalancerArn"] for x in lbs] == [lb_arn]
    assert isinstance(lbs[0]["CreatedTime"], str) and lbs[0]["CreatedTime"].startswith("20")
    listeners = cli(elb_server, "describe-listeners", "--load-balancer-arn", lb_arn)["Listeners"]
    assert [x["ListenerArn"] for x in listeners] == [listener_arn]
    groups = cli(elb_server, "describe-target-groups",
                 "--load-balancer-arn", lb_arn)["TargetGroups"]
    assert [g["TargetGroupArn"] for g in groups] == [tg_arn]
    assert groups[0]["LoadBalancerArns"] == [lb_arn]

    attrs = cli(elb_server, "modify-target-group-attributes", "--target-group-arn", tg_arn,
                "--attributes", "Key=deregistration_delay.timeout_seconds,Value=30")["Attributes"]
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "30"} in attrs
    attrs = cli(elb_server, "describe-target-group-attributes",
                "--target-group-arn", tg_arn)["Attributes"]
    assert {"Key": "deregistration_delay.timeout_seconds", "Value": "30"} in attrs
    assert {"Key": "stickiness.enabled", "Value": "false"} in attrs

    cli(elb_server, "deregister-targets", "--target-group-arn", tg_arn,
        "--targets", f"Id={INSTANCE}")
    health = cli(elb_server, "describe-target-health", "--target-group-arn", tg_arn,
                 "--targets", f"Id={INSTANCE},Port=8080")["TargetHealthDescriptions"]
    assert health[0]["TargetHealth"] == {"State": "draining",
                                         "Reason": "Target.DeregistrationInProgress",
                                         "Description": "Target deregistration is in progress"}

    # Clean up in dependency order, as a user would.
    cli(elb_server, "delete-listener", "--listener-arn", listener_arn)
    cli(elb_server, "delete-load-balancer", "--load-balancer-arn", lb_arn)
    cli(elb_server, "delete-target-group", "--target-group-arn", tg_arn)
    assert "LoadBalancerNotFound" in cli_error(elb_server, "describe-load-balancers",
                                               "--names", lb_name)


def test_load_balancer_idempotency_and_errors(elbv2, unique):
    name = unique("lb")
    arn = make_lb(elbv2, name, "127.0.0.1")
    assert make_lb(elbv2, name, "127.0.0.1") == arn  # same settings: the same load balancer
    assert code_of(elbv2.create_load_balancer, Name=name, Scheme="internal") == \
        "DuplicateLoadBalancerName"
    assert code_of(elbv2.create_load_balancer, Name="internal-x") == "ValidationError"
    assert code_of(elbv2.create_load_balancer, Name="bad_name") == "ValidationError"
    assert code_of(elbv2.create_load_balancer, Name=unique("nlb"), Type="network") == \
        "ValidationError"
    assert code_of(elbv2.describe_load_balancers, Names=[unique("missing")]) == \
        "LoadBalancerNotFound"
    wildcard = elbv2.create_load_balancer(Name=unique("any"))["LoadBalancers"][0]
    assert wildcard["DNSName"].endswith(f".{REGION}.elb.localhost")
    elbv2.delete_load_balancer(LoadBalancerArn=arn)
    elbv2.delete_load_balancer(LoadBalancerArn=arn)  # already gone: not an error, as in AWS


def test_describe_load_balancers_pages(elbv2, unique):
    names = [unique("page") for _ in range(3)]
    for n in names:
        make_lb(elbv2, n)
    seen = []
    for page in elbv2.get_paginator("describe_load_balancers").paginate(
            PaginationConfig={"PageSize": 2}):
        assert len(page["LoadBalancers"]) <= 2
        seen += [lb["LoadBalancerName"] for lb in page["LoadBalancers"]]
    assert set(names) <= set(seen)
    assert len(seen) == len(set(seen))


def test_target_group_errors(elbv2, unique):
    name = unique("tg")
    arn = make_tg(elbv2, name)
    assert make_tg(elbv2, name) == arn
    assert code_of(make_tg, elbv2, name, Port=81) == "DuplicateTargetGroupName"
    assert code_of(make_tg, elbv2, unique("tg"), Protocol="HTTPS") == "ValidationError"
    assert code_of(make_tg, elbv2, unique("tg"), HealthCheckIntervalSeconds=5,
                   HealthCheckTimeoutSeconds=5) == "ValidationError"
    assert code_of(make_tg, elbv2, unique("tg"), HealthyThresholdCount=11) == "ValidationError"
    assert code_of(elbv2.describe_target_groups, Names=[unique("nope")]) == "TargetGroupNotFound"
    missing = arn.rsplit("/", 1)[0] + "/0123456789abcdef"
    assert code_of(elbv2.modify_target_group, TargetGroupArn=missing,
                   HealthCheckPath="/x") == "TargetGroupNotFound"
    modified = elbv2.modify_target_group(TargetGroupArn=arn, HealthCheckPath="/ready")
    assert modified["TargetGroups"][0]["HealthCheckPath"] == "/ready"
    for key, value in [("deregistration_delay.timeout_seconds", "3601"), ("no.such.key", "1")]:
        assert code_of(elbv2.modify_target_group_attributes, TargetGroupArn=arn,
                       Attributes=[{"Key": key, "Value": value}]) == "ValidationError"


def test_listener_and_rule_errors(elbv2, unique):
    lb = make_lb(elbv2, unique("lb"), "127.0.0.2")
    tg = make_tg(elbv2, unique("tg"))
    listener = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=18081,
                                     DefaultActions=forward(tg))["Listeners"][0]["ListenerArn"]
    fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}]
    assert code_of(elbv2.create_listener, LoadBalancerArn=lb, Protocol="HTTP", Port=18081,
                   DefaultActions=fixed) == "DuplicateListener"
    assert code_of(elbv2.create_listener, LoadBalancerArn=lb, Protocol="HTTPS", Port=18443,
                   DefaultActions=fixed) == "UnsupportedProtocol"
    # A target group serves one load balancer.
    other = make_lb(elbv2, unique("lb"), "127.0.0.3")
    assert code_of(elbv2.create_listener, LoadBalancerArn=other, Protocol="HTTP", Port=18082,
                   DefaultActions=forward(tg)) == "TargetGroupAssociationLimit"
    assert code_of(elbv2.delete_target_group, TargetGroupArn=tg) == "ResourceInUse"

    def rule(priority, values):
        return elbv2.create_rule(ListenerArn=listener, Priority=priority,
                                 Conditions=[{"Field": "path-pattern", "Values": values}],
                                 Actions=forward(tg))

    rule(1, ["/a"])
    assert code_of(rule, 1, ["/b"]) == "PriorityInUse"
    assert code_of(rule, 2, [f"/{i}" for i in range(6)]) == "ValidationError"
    default = [r for r in elbv2.describe_rules(ListenerArn=listener)["Rules"] if r["IsDefault"]][0]
    assert code_of(elbv2.delete_rule, RuleArn=default["RuleArn"]) == "OperationNotPermitted"

    # One group per forward: weighted forwards to several groups are refused clearly.
    assert code_of(elbv2.create_listener,
                   LoadBalancerArn=lb, Protocol="HTTP", Port=18083,
                   DefaultActions=[{"Type": "forward", "ForwardConfig": {"TargetGroups": [
                       {"TargetGroupArn": tg, "Weight": 3},
                       {"TargetGroupArn": make_tg(elbv2, unique("tg")), "Weight": 1}]}}]) \
        == "ValidationError"

    elbv2.delete_listener(ListenerArn=listener)
    assert code_of(elbv2.describe_listeners, ListenerArns=[listener]) == "ListenerNotFound"
    assert code_of(elbv2.describe_rules, ListenerArn=listener) == "ListenerNotFound"


def test_port_claims_across_load_balancers(elbv2, unique):
    # Every load balancer listens on this one host: a port is held by one load balancer per
    # address, 0.0.0.0 overlapping every address. Releasing a listener frees its port.
    one = make_lb(elbv2, unique("lb"), "127.0.0.5")
    two = make_lb(elbv2, unique("lb"), "127.0.0.6")
    anywhere = make_lb(elbv2, unique("any"))
    fixed = [{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}]

    def listen(lb, port):
        return elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=port,
                                     DefaultActions=fixed)["Listeners"][0]["ListenerArn"]

    first = listen(one, 18090)
    listen(two, 18090)  # another address: no overlap
    err = error_of(listen, anywhere, 18090)
    assert err["Code"] == "InvalidConfigurationRequest"
    assert "18090" in err["Message"]

    # DeleteListener releases the claim (both of them, here), and the port can be reused.
    elbv2.delete_listener(ListenerArn=first)
    assert code_of(listen, anywhere, 18090) == "InvalidConfigurationRequest"  # "two" holds it
    two_listener = elbv2.describe_listeners(LoadBalancerArn=two)["Listeners"][0]["ListenerArn"]
    elbv2.delete_listener(ListenerArn=two_listener)
    wildcard = listen(anywhere, 18090)
    assert code_of(listen, one, 18090) == "InvalidConfigurationRequest"

    # ModifyListener moves the claim: the old port is free, the new one taken.
    elbv2.modify_listener(ListenerArn=wildcard, Port=18091)
    listen(one, 18090)
    assert code_of(listen, two, 18091) == "InvalidConfigurationRequest"

    # DeleteLoadBalancer releases the claims of all its listeners.
    elbv2.delete_load_balancer(LoadBalancerArn=anywhere)
    listen(two, 18091)
    elbv2.delete_load_balancer(LoadBalancerArn=one)
    elbv2.delete_load_balancer(LoadBalancerArn=two)
    again = make_lb(elbv2, unique("any"))
    listen(again, 18090)
    listen(again, 18091)
    elbv2.delete_load_balancer(LoadBalancerArn=again)


def test_settings_the_data_plane_cannot_honour_are_refused(elbv2, unique):
    tg = make_tg(elbv2, unique("tg"))

    def attributes(**kv):
        return elbv2.modify_target_group_attributes(
            TargetGroupArn=tg, Attributes=[{"Key": k, "Value": v} for k, v in kv.items()])

    # The defaults, given explicitly, are accepted and echoed.
    defaults = {"stickiness.enabled": "false", "load_balancing.algorithm.type": "round_robin",
                "slow_start.duration_seconds": "0"}
    got = elbv2.modify_target_group_attributes(
        TargetGroupArn=tg, Attributes=[{"Key": k, "Value": v} for k, v in defaults.items()])
    for k, v in defaults.items():
        assert {"Key": k, "Value": v} in got["Attributes"]
    for key, value in [("stickiness.enabled", "true"),
                       ("load_balancing.algorithm.type", "least_outstanding_requests"),
                       ("slow_start.duration_seconds", "30")]:
        err = error_of(elbv2.modify_target_group_attributes, TargetGroupArn=tg,
                       Attributes=[{"Key": key, "Value": value}])
        assert err["Code"] == "ValidationError", key
        assert "is not supported by Berth's data plane yet" in err["Message"], err
    attrs = elbv2.describe_target_group_attributes(TargetGroupArn=tg)["Attributes"]
    for k, v in defaults.items():
        assert {"Key": k, "Value": v} in attrs

    # Sticky forward actions likewise; disabled stickiness is the default and is echoed.
    lb = make_lb(elbv2, unique("lb"), "127.0.0.7")

    def sticky_forward(enabled):
        return [{"Type": "forward", "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": tg, "Weight": 1}],
            "TargetGroupStickinessConfig": {"Enabled": enabled, "DurationSeconds": 60}}}]

    err = error_of(elbv2.create_listener, LoadBalancerArn=lb, Protocol="HTTP", Port=18092,
                   DefaultActions=sticky_forward(True))
    assert err["Code"] == "ValidationError"
    assert "is not supported by Berth's data plane yet" in err["Message"], err
    listener = elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=18092,
                                     DefaultActions=sticky_forward(False))["Listeners"][0]
    stickiness = listener["DefaultActions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"]
    assert stickiness["Enabled"] is False
    elbv2.delete_load_balancer(LoadBalancerArn=lb)


def test_health_checks_cannot_be_disabled_for_instance_and_ip_groups(elbv2, unique):
    for target_type in ["instance", "ip"]:
        assert code_of(make_tg, elbv2, unique("tg"), TargetType=target_type,
                       HealthCheckEnabled=False) == "ValidationError"
    tg = make_tg(elbv2, unique("tg"), HealthCheckEnabled=True)
    assert code_of(elbv2.modify_target_group, TargetGroupArn=tg,
                   HealthCheckEnabled=False) == "ValidationError"
    modified = elbv2.modify_target_group(TargetGroupArn=tg, HealthCheckEnabled=True)
    assert modified["TargetGroups"][0]["HealthCheckEnabled"] is True
    group = elbv2.describe_target_groups(TargetGroupArns=[tg])["TargetGroups"][0]
    assert group["HealthCheckEnabled"] is True


def test_register_deregister_and_health(elbv2, unique):
    tg = make_tg(elbv2, unique("tg"), TargetType="ip", Port=8080)
    assert code_of(elbv2.register_targets, TargetGroupArn=tg,
                   Targets=[{"Id": INSTANCE}]) == "InvalidTarget"
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": "10.0.0.5"}])
    assert states(elbv2, tg)[("10.0.0.5", 8080)]["State"] == "unused"

    lb = make_lb(elbv2, unique("lb"), "127.0.0.4")
    elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=18084,
                          DefaultActions=forward(tg))
    assert states(elbv2, tg)[("10.0.0.5", 8080)]["State"] == "initial"

    not_registered = states(elbv2, tg, Targets=[{"Id": "10.0.0.9", "Port": 8080}])
    assert not_registered[("10.0.0.9", 8080)] == {
        "State": "unused", "Reason": "Target.NotRegistered",
        "Description": "Target is not registered to the target group"}
    assert code_of(elbv2.deregister_targets, TargetGroupArn=tg,
                   Targets=[{"Id": "10.0.0.9"}]) == "InvalidTarget"

    elbv2.deregister_targets(TargetGroupArn=tg, Targets=[{"Id": "10.0.0.5"}])
    assert states(elbv2, tg)[("10.0.0.5", 8080)]["State"] == "draining"
    elbv2.register_targets(TargetGroupArn=tg, Targets=[{"Id": "10.0.0.5"}])
    assert states(elbv2, tg)[("10.0.0.5", 8080)]["State"] == "initial"


def test_tags(elbv2, unique):
    lb = elbv2.create_load_balancer(Name=unique("lb"), Tags=[{"Key": "env", "Value": "dev"}])[
        "LoadBalancers"][0]["LoadBalancerArn"]
    tg = make_tg(elbv2, unique("tg"))
    elbv2.add_tags(ResourceArns=[lb, tg], Tags=[{"Key": "team", "Value": "core"}])
    got = {d["ResourceArn"]: d["Tags"] for d in
           elbv2.describe_tags(ResourceArns=[lb, tg])["TagDescriptions"]}
    assert got[lb] == [{"Key": "env", "Value": "dev"}, {"Key": "team", "Value": "core"}]
    assert got[tg] == [{"Key": "team", "Value": "core"}]
    elbv2.remove_tags(ResourceArns=[lb], TagKeys=["env"])
    assert elbv2.describe_tags(ResourceArns=[lb])["TagDescriptions"][0]["Tags"] == [
        {"Key": "team", "Value": "core"}]


def raw_query(server, body):
    """POSTs a form body signed for elasticloadbalancing, as the CLI does; returns RawResponse."""
    akid, secret = server.keys()
    data = body.encode()
    form = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    path, headers = sign(server.host, akid, secret, data, service="elasticloadbalancing",
                         headers=form)
    return send("127.0.0.1", server.port, "POST", path, headers, data)


def test_bad_requests_leave_the_server_running(elb_server, elbv2, unique):
    # Malformed ARNs, bad types, unknown actions: each is a 400 with a query-protocol error and
    # the next call still works.
    assert code_of(elbv2.describe_target_health, TargetGroupArn="not-an-arn") == "ValidationError"
    assert code_of(elbv2.delete_load_balancer, LoadBalancerArn="arn:aws:x") == "ValidationError"
    r = raw_query(elb_server, "Action=CreateTargetGroup&Version=2015-12-01&Name=x&Port=eighty")
    assert r.status == 400 and b"<Code>ValidationError</Code>" in r.body, r
    r = raw_query(elb_server, "Action=NoSuchAction&Version=2015-12-01")
    assert r.status == 400 and b"<Code>InvalidAction</Code>" in r.body, r
    r = raw_query(elb_server, "Action=CreateRule&Version=2015-12-01&ListenerArn=%ff%00&Priority=1")
    assert r.status == 400, r
    assert elb_server.alive()
    make_tg(elbv2, unique("after"))
