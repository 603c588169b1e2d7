// The ELBv2 actions against the in-memory store on a manual clock and a fixed seed, driven through
// QueryService::handle() with form bodies as the SDKs send them, so the form typing and the XML
// rendering (which rejects replies that do not fit the output shape) are exercised too.
// End-to-end behaviour with boto3 and the AWS CLI lives in tests/integration/test_elbv2.py.

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <initializer_list>
#include <utility>
#include <vector>

#include "model/elbv2_errors.h"
#include "server/elbv2/elbv2_service.h"
#include "server/elbv2/records.h"
#include "server/elbv2/tests/elbv2_fixture.h"

namespace berth::server::elbv2 {
namespace {

using namespace elbtest;  // NOLINT: the fixture and its XML probes

// ---- load balancers

TEST_F(ElbTest, CreateLoadBalancerAtAnAddressAndDescribeIt) {
  auto body = ok("CreateLoadBalancer", {{"Name", "web"},
                                        {"SubnetMappings.member.1.SubnetId", "local"},
                                        {"SubnetMappings.member.1.PrivateIPv4Address", "127.0.0.1"},
                                        {"Tags.member.1.Key", "team"},
                                        {"Tags.member.1.Value", "a"}});
  std::string arn = first(body, "LoadBalancerArn");
  EXPECT_TRUE(
      arn.starts_with("arn:aws:elasticloadbalancing:us-east-1:123456789012:"
                      "loadbalancer/app/web/"))
      << arn;
  EXPECT_EQ(arn.size() - arn.rfind('/') - 1, 16u);  // a 16-hex-digit id
  EXPECT_EQ(first(body, "DNSName"), "127.0.0.1");
  EXPECT_EQ(first(body, "Code"), "active");
  EXPECT_EQ(first(body, "Scheme"), "internet-facing");
  EXPECT_EQ(first(body, "Type"), "application");
  EXPECT_EQ(first(body, "SubnetId"), "local");
  EXPECT_EQ(first(body, "ZoneName"), "us-east-1a");
  EXPECT_EQ(first(body, "CreatedTime"), "2023-11-14T22:13:20.000Z");

  auto described = ok("DescribeLoadBalancers", {{"Names.member.1", "web"}});
  EXPECT_EQ(first(described, "LoadBalancerArn"), arn);
  EXPECT_FALSE(has(described, "team"));  // tags only through DescribeTags
  described = ok("DescribeLoadBalancers", {{"LoadBalancerArns.member.1", arn}});
  EXPECT_EQ(first(described, "LoadBalancerName"), "web");
  EXPECT_EQ(all(ok("DescribeLoadBalancers"), "LoadBalancerArn").size(), 1u);
}

TEST_F(ElbTest, WildcardAddressGetsALocalhostName) {
  auto body = ok("CreateLoadBalancer", {{"Name", "api"}, {"Subnets.member.1", "subnet-1"}});
  std::string arn = first(body, "LoadBalancerArn");
  std::string id = arn.substr(arn.rfind('/') + 1);
  EXPECT_EQ(first(body, "DNSName"), "api-" + id + ".us-east-1.elb.localhost");
  body = ok("CreateLoadBalancer", {{"Name", "inner"}, {"Scheme", "internal"}});
  EXPECT_TRUE(first(body, "DNSName").starts_with("internal-inner-"));
}

TEST_F(ElbTest, CreateLoadBalancerIsIdempotentForTheSameSettings) {
  std::string arn = create_lb("web", {{"Subnets.member.1", "a"}});
  EXPECT_EQ(create_lb("web", {{"Subnets.member.1", "a"}}), arn);
  EXPECT_EQ(err("CreateLoadBalancer", {{"Name", "web"}, {"Scheme", "internal"}}),
            "DuplicateLoadBalancerName");
  EXPECT_EQ(err("CreateLoadBalancer", {{"Name", "web"}, {"Subnets.member.1", "b"}}),
            "DuplicateLoadBalancerName");
}

TEST_F(ElbTest, CreateLoadBalancerValidatesItsInput) {
  for (const char* name :
       {"-web", "web-", "internal-web", "web_1", "a-name-that-is-much-longer-than-32-chars"}) {
    EXPECT_EQ(err("CreateLoadBalancer", {{"Name", name}}), "ValidationError") << name;
  }
  EXPECT_EQ(err("CreateLoadBalancer", {{"Name", "n"}, {"Type", "network"}}), "ValidationError");
  EXPECT_EQ(err("CreateLoadBalancer", {{"Name", "n"}, {"Scheme", "public"}}), "ValidationError");
  EXPECT_EQ(err("CreateLoadBalancer", {{"Name", "n"},
                                       {"SubnetMappings.member.1.SubnetId", "s"},
                                       {"SubnetMappings.member.1.PrivateIPv4Address", "10.0.0"}}),
            "ValidationError");
  EXPECT_EQ(err("CreateLoadBalancer", {{"Name", "n"},
                                       {"SubnetMappings.member.1.SubnetId", "s1"},
                                       {"SubnetMappings.member.1.PrivateIPv4Address", "10.0.0.1"},
                                       {"SubnetMappings.member.2.SubnetId", "s2"},
                                       {"SubnetMappings.member.2.PrivateIPv4Address", "10.0.0.2"}}),
            "ValidationError");
  EXPECT_EQ(
      err("CreateLoadBalancer",
          {{"Name", "n"}, {"Subnets.member.1", "a"}, {"SubnetMappings.member.1.SubnetId", "b"}}),
      "ValidationError");
  EXPECT_EQ(all(ok("DescribeLoadBalancers"), "LoadBalancerArn").size(), 0u);
}

TEST_F(ElbTest, DescribeLoadBalancersErrorsAndPaging) {
  for (const char* n : {"c", "a", "b"}) create_lb(n);
  EXPECT_EQ(err("DescribeLoadBalancers", {{"Names.member.1", "a"}, {"Names.member.2", "zz"}}),
            "LoadBalancerNotFound");
  EXPECT_EQ(err("DescribeLoadBalancers",
                {{"LoadBalancerArns.member.1",
                  "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/a/"
                  "0000000000000000"}}),
            "LoadBalancerNotFound");
  EXPECT_EQ(err("DescribeLoadBalancers", {{"LoadBalancerArns.member.1", "not-an-arn"}}),
            "ValidationError");
  EXPECT_EQ(err("DescribeLoadBalancers",
                {{"Names.member.1", "a"}, {"LoadBalancerArns.member.1", create_lb("a")}}),
            "ValidationError");

  auto page1 = ok("DescribeLoadBalancers", {{"PageSize", "2"}});
  EXPECT_EQ(all(page1, "LoadBalancerName"), (std::vector<std::string>{"a", "b"}));
  std::string marker = first(page1, "NextMarker");
  ASSERT_FALSE(marker.empty());
  auto page2 = ok("DescribeLoadBalancers", {{"PageSize", "2"}, {"Marker", marker}});
  EXPECT_EQ(all(page2, "LoadBalancerName"), (std::vector<std::string>{"c"}));
  EXPECT_FALSE(has(page2, "NextMarker"));
  EXPECT_EQ(err("DescribeLoadBalancers", {{"Marker", "!!!"}}), "ValidationError");
  EXPECT_EQ(err("DescribeLoadBalancers", {{"PageSize", "0"}}), "ValidationError");
}

TEST_F(ElbTest, DeleteLoadBalancerRemovesItsListenersAndRules) {
  std::string lb = create_lb("web");
  std::string tg = create_tg("app");
  std::string listener = create_listener(lb, tg);
  ok("CreateRule", {{"ListenerArn", listener},
                    {"Priority", "10"},
                    {"Conditions.member.1.Field", "path-pattern"},
                    {"Conditions.member.1.Values.member.1", "/api/*"},
                    {"Actions.member.1.Type", "forward"},
                    {"Actions.member.1.TargetGroupArn", tg}});
  EXPECT_EQ(err("DeleteTargetGroup", {{"TargetGroupArn", tg}}), "ResourceInUse");
  ok("DeleteLoadBalancer", {{"LoadBalancerArn", lb}});
  EXPECT_EQ(err("DescribeLoadBalancers", {{"LoadBalancerArns.member.1", lb}}),
            "LoadBalancerNotFound");
  EXPECT_EQ(err("DescribeListeners", {{"ListenerArns.member.1", listener}}), "ListenerNotFound");
  auto r = store_->range({"elb/rule/", "", 0});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->kvs.empty());
  auto groups = ok("DescribeTargetGroups", {{"TargetGroupArns.member.1", tg}});
  EXPECT_FALSE(has(groups, lb));
  // Deleting again, or an unknown load balancer, is not an error (as in AWS).
  ok("DeleteLoadBalancer", {{"LoadBalancerArn", lb}});
  EXPECT_EQ(err("DeleteLoadBalancer", {{"LoadBalancerArn", "arn:nope"}}), "ValidationError");
  ok("DeleteTargetGroup", {{"TargetGroupArn", tg}});
}

// ---- target groups

TEST_F(ElbTest, CreateTargetGroupFillsAwsDefaults) {
  auto body = ok("CreateTargetGroup",
                 {{"Name", "app"}, {"Protocol", "HTTP"}, {"Port", "8080"}, {"VpcId", "vpc-1"}});
  std::string arn = first(body, "TargetGroupArn");
  EXPECT_TRUE(
      arn.starts_with("arn:aws:elasticloadbalancing:us-east-1:123456789012:"
                      "targetgroup/app/"));
  EXPECT_EQ(first(body, "Port"), "8080");
  EXPECT_EQ(first(body, "VpcId"), "vpc-1");
  EXPECT_EQ(first(body, "HealthCheckProtocol"), "HTTP");
  EXPECT_EQ(first(body, "HealthCheckPort"), "traffic-port");
  EXPECT_EQ(first(body, "HealthCheckEnabled"), "true");
  EXPECT_EQ(first(body, "HealthCheckIntervalSeconds"), "30");
  EXPECT_EQ(first(body, "HealthCheckTimeoutSeconds"), "5");
  EXPECT_EQ(first(body, "HealthyThresholdCount"), "5");
  EXPECT_EQ(first(body, "UnhealthyThresholdCount"), "2");
  EXPECT_EQ(first(body, "HealthCheckPath"), "/");
  EXPECT_EQ(first(body, "HttpCode"), "200");
  EXPECT_EQ(first(body, "TargetType"), "instance");
  EXPECT_TRUE(has(body, "<LoadBalancerArns/>") ||
              has(body, "<LoadBalancerArns></LoadBalancerArns>"))
      << body;

  // Same settings: the same group; different: DuplicateTargetGroupName.
  EXPECT_EQ(first(ok("CreateTargetGroup",
                     {{"Name", "app"}, {"Protocol", "HTTP"}, {"Port", "8080"}, {"VpcId", "vpc-1"}}),
                  "TargetGroupArn"),
            arn);
  EXPECT_EQ(err("CreateTargetGroup", {{"Name", "app"}, {"Protocol", "HTTP"}, {"Port", "81"}}),
            "DuplicateTargetGroupName");
}

TEST_F(ElbTest, CreateTargetGroupWithHealthCheckOptions) {
  auto body = ok("CreateTargetGroup", {{"Name", "hc"},
                                       {"Protocol", "HTTP"},
                                       {"Port", "80"},
                                       {"TargetType", "ip"},
                                       {"HealthCheckPath", "/healthz"},
                                       {"HealthCheckPort", "8081"},
                                       {"HealthCheckIntervalSeconds", "10"},
                                       {"HealthCheckTimeoutSeconds", "3"},
                                       {"HealthyThresholdCount", "2"},
                                       {"UnhealthyThresholdCount", "3"},
                                       {"Matcher.HttpCode", "200-299"}});
  EXPECT_EQ(first(body, "TargetType"), "ip");
  EXPECT_EQ(first(body, "HealthCheckPath"), "/healthz");
  EXPECT_EQ(first(body, "HealthCheckPort"), "8081");
  EXPECT_EQ(first(body, "HealthCheckIntervalSeconds"), "10");
  EXPECT_EQ(first(body, "HealthCheckTimeoutSeconds"), "3");
  EXPECT_EQ(first(body, "HttpCode"), "200-299");
}

TEST_F(ElbTest, CreateTargetGroupValidatesItsInput) {
  Params base{{"Name", "t"}, {"Protocol", "HTTP"}, {"Port", "80"}};
  auto with = [&](Params extra) {
    Params p = base;
    for (auto& e : extra) {
      bool replaced = false;
      for (auto& b : p) {
        if (b.first == e.first) {
          b.second = e.second;
          replaced = true;
        }
      }
      if (!replaced) p.push_back(e);
    }
    return p;
  };
  EXPECT_EQ(err("CreateTargetGroup", with({{"Protocol", "HTTPS"}})), "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup", {{"Name", "t"}, {"Protocol", "HTTP"}}), "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup", {{"Name", "t"}, {"Port", "80"}}), "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup", with({{"Name", "bad_name"}})), "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup", with({{"TargetType", "lambda"}})), "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup", with({{"HealthCheckIntervalSeconds", "4"}})),
            "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup", with({{"HealthCheckTimeoutSeconds", "121"}})),
            "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup",
                with({{"HealthCheckIntervalSeconds", "10"}, {"HealthCheckTimeoutSeconds", "10"}})),
            "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup", with({{"HealthyThresholdCount", "11"}})), "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup", with({{"UnhealthyThresholdCount", "1"}})), "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup", with({{"Matcher.HttpCode", "600"}})), "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup", with({{"HealthCheckPath", "healthz"}})), "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup", with({{"HealthCheckPort", "http"}})), "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup", with({{"HealthCheckProtocol", "HTTPS"}})), "ValidationError");
  // Only lambda target groups can disable health checks (AWS's rule).
  EXPECT_EQ(err("CreateTargetGroup", with({{"HealthCheckEnabled", "false"}})), "ValidationError");
  EXPECT_EQ(err("CreateTargetGroup", with({{"TargetType", "ip"}, {"HealthCheckEnabled", "false"}})),
            "ValidationError");
  EXPECT_EQ(all(ok("DescribeTargetGroups"), "TargetGroupArn").size(), 0u);
  // Enabled is the default, and may be said explicitly.
  EXPECT_EQ(
      first(ok("CreateTargetGroup", with({{"HealthCheckEnabled", "true"}})), "HealthCheckEnabled"),
      "true");
}

TEST_F(ElbTest, ModifyTargetGroupChangesHealthChecks) {
  std::string tg = create_tg("app");
  auto body = ok("ModifyTargetGroup", {{"TargetGroupArn", tg},
                                       {"HealthCheckPath", "/ready"},
                                       {"HealthCheckIntervalSeconds", "15"}});
  EXPECT_EQ(first(body, "HealthCheckPath"), "/ready");
  EXPECT_EQ(first(body, "HealthCheckIntervalSeconds"), "15");
  EXPECT_EQ(first(ok("DescribeTargetGroups", {{"Names.member.1", "app"}}), "HealthCheckPath"),
            "/ready");
  // The timeout (5) must stay below the interval.
  EXPECT_EQ(err("ModifyTargetGroup", {{"TargetGroupArn", tg}, {"HealthCheckIntervalSeconds", "5"}}),
            "ValidationError");
  auto [status, reply] =
      call("ModifyTargetGroup", {{"TargetGroupArn", tg}, {"HealthCheckEnabled", "false"}});
  EXPECT_EQ(status, 400);
  EXPECT_EQ(first(reply, "Code"), "ValidationError");
  EXPECT_TRUE(has(first(reply, "Message"), "target type &apos;instance&apos;") ||
              has(first(reply, "Message"), "target type 'instance'"))
      << reply;
  EXPECT_EQ(first(ok("ModifyTargetGroup", {{"TargetGroupArn", tg}, {"HealthCheckEnabled", "true"}}),
                  "HealthCheckEnabled"),
            "true");
  EXPECT_EQ(first(ok("DescribeTargetGroups", {{"Names.member.1", "app"}}), "HealthCheckEnabled"),
            "true");
  std::string gone = tg.substr(0, tg.rfind('/') + 1) + "0123456789abcdef";
  EXPECT_EQ(err("ModifyTargetGroup", {{"TargetGroupArn", gone}, {"HealthCheckPath", "/x"}}),
            "TargetGroupNotFound");
  EXPECT_EQ(err("ModifyTargetGroup", {{"TargetGroupArn", "arn:aws:nope"}}), "ValidationError");
}

TEST_F(ElbTest, DescribeTargetGroupsByNameArnAndLoadBalancer) {
  std::string a = create_tg("a");
  std::string b = create_tg("b");
  std::string lb = create_lb("web");
  create_listener(lb, b);
  EXPECT_EQ(all(ok("DescribeTargetGroups"), "TargetGroupName"),
            (std::vector<std::string>{"a", "b"}));
  auto by_lb = ok("DescribeTargetGroups", {{"LoadBalancerArn", lb}});
  EXPECT_EQ(all(by_lb, "TargetGroupName"), (std::vector<std::string>{"b"}));
  EXPECT_TRUE(has(by_lb, "<LoadBalancerArns><member>" + lb + "</member></LoadBalancerArns>"));
  EXPECT_EQ(first(ok("DescribeTargetGroups", {{"TargetGroupArns.member.1", a}}), "TargetGroupName"),
            "a");
  EXPECT_EQ(err("DescribeTargetGroups", {{"Names.member.1", "missing"}}), "TargetGroupNotFound");
  EXPECT_EQ(err("DescribeTargetGroups",
                {{"LoadBalancerArn", lb.substr(0, lb.rfind('/') + 1) + "0000000000000001"}}),
            "LoadBalancerNotFound");
  EXPECT_EQ(err("DescribeTargetGroups", {{"LoadBalancerArn", lb}, {"Names.member.1", "a"}}),
            "ValidationError");
  auto page1 = ok("DescribeTargetGroups", {{"PageSize", "1"}});
  EXPECT_EQ(all(page1, "TargetGroupName"), (std::vector<std::string>{"a"}));
  auto page2 =
      ok("DescribeTargetGroups", {{"PageSize", "1"}, {"Marker", first(page1, "NextMarker")}});
  EXPECT_EQ(all(page2, "TargetGroupName"), (std::vector<std::string>{"b"}));
}

TEST_F(ElbTest, TargetGroupAttributes) {
  std::string tg = create_tg("app");
  auto body = ok("DescribeTargetGroupAttributes", {{"TargetGroupArn", tg}});
  EXPECT_TRUE(has(body, "<Key>deregistration_delay.timeout_seconds</Key><Value>300</Value>"))
      << body;
  EXPECT_TRUE(has(body, "<Key>stickiness.enabled</Key><Value>false</Value>"));
  EXPECT_TRUE(has(body, "<Key>stickiness.type</Key><Value>lb_cookie</Value>"));
  EXPECT_TRUE(has(body, "<Key>load_balancing.algorithm.type</Key><Value>round_robin</Value>"));
  EXPECT_TRUE(has(body, "<Key>slow_start.duration_seconds</Key><Value>0</Value>"));

  // The defaults may be given explicitly.
  body = ok("ModifyTargetGroupAttributes",
            {{"TargetGroupArn", tg},
             {"Attributes.member.1.Key", "deregistration_delay.timeout_seconds"},
             {"Attributes.member.1.Value", "30"},
             {"Attributes.member.2.Key", "stickiness.enabled"},
             {"Attributes.member.2.Value", "false"},
             {"Attributes.member.3.Key", "load_balancing.algorithm.type"},
             {"Attributes.member.3.Value", "round_robin"},
             {"Attributes.member.4.Key", "slow_start.duration_seconds"},
             {"Attributes.member.4.Value", "0"},
             {"Attributes.member.5.Key", "stickiness.lb_cookie.duration_seconds"},
             {"Attributes.member.5.Value", "3600"}});
  EXPECT_TRUE(has(body, "<Key>deregistration_delay.timeout_seconds</Key><Value>30</Value>"));
  body = ok("DescribeTargetGroupAttributes", {{"TargetGroupArn", tg}});
  EXPECT_TRUE(has(body, "<Key>deregistration_delay.timeout_seconds</Key><Value>30</Value>"));
  EXPECT_TRUE(has(body, "<Key>stickiness.enabled</Key><Value>false</Value>"));
  EXPECT_TRUE(has(body, "<Key>load_balancing.algorithm.type</Key><Value>round_robin</Value>"));
  EXPECT_TRUE(has(body, "<Key>slow_start.duration_seconds</Key><Value>0</Value>"));
  EXPECT_TRUE(has(body, "<Key>stickiness.lb_cookie.duration_seconds</Key><Value>3600</Value>"));

  // What the data plane cannot do (sticky sessions, other algorithms, slow start) is refused
  // with a clear message, and nothing is changed.
  for (auto [key, value] : {std::pair{"stickiness.enabled", "true"},
                            {"load_balancing.algorithm.type", "least_outstanding_requests"},
                            {"load_balancing.algorithm.type", "weighted_random"},
                            {"slow_start.duration_seconds", "30"},
                            {"stickiness.type", "app_cookie"}}) {
    auto [status, reply] =
        call("ModifyTargetGroupAttributes",
             {{"TargetGroupArn", tg},
              {"Attributes.member.1.Key", "deregistration_delay.timeout_seconds"},
              {"Attributes.member.1.Value", "60"},
              {"Attributes.member.2.Key", key},
              {"Attributes.member.2.Value", value}});
    EXPECT_EQ(status, 400) << key;
    EXPECT_EQ(first(reply, "Code"), "ValidationError") << key;
    EXPECT_TRUE(has(first(reply, "Message"), "is not supported by Berth")) << reply;
  }
  body = ok("DescribeTargetGroupAttributes", {{"TargetGroupArn", tg}});
  EXPECT_TRUE(has(body, "<Key>deregistration_delay.timeout_seconds</Key><Value>30</Value>"));
  EXPECT_TRUE(has(body, "<Key>stickiness.enabled</Key><Value>false</Value>"));

  auto modify = [&](const char* key, const char* value) {
    return err("ModifyTargetGroupAttributes", {{"TargetGroupArn", tg},
                                               {"Attributes.member.1.Key", key},
                                               {"Attributes.member.1.Value", value}});
  };
  EXPECT_EQ(modify("deregistration_delay.timeout_seconds", "3601"), "ValidationError");
  EXPECT_EQ(modify("deregistration_delay.timeout_seconds", "soon"), "ValidationError");
  EXPECT_EQ(modify("stickiness.enabled", "yes"), "ValidationError");
  EXPECT_EQ(modify("no.such.key", "1"), "ValidationError");
  EXPECT_EQ(modify("slow_start.duration_seconds", "10"), "ValidationError");
  EXPECT_EQ(modify("load_balancing.algorithm.type", "random"), "ValidationError");
  std::string gone = tg.substr(0, tg.rfind('/') + 1) + "0123456789abcdef";
  EXPECT_EQ(err("DescribeTargetGroupAttributes", {{"TargetGroupArn", gone}}),
            "TargetGroupNotFound");
}

// ---- listeners

TEST_F(ElbTest, ListenerForwardsToATargetGroup) {
  std::string lb = create_lb("web");
  std::string tg = create_tg("app");
  auto body = ok("CreateListener", {{"LoadBalancerArn", lb},
                                    {"Protocol", "HTTP"},
                                    {"Port", "8080"},
                                    {"DefaultActions.member.1.Type", "forward"},
                                    {"DefaultActions.member.1.TargetGroupArn", tg}});
  std::string listener = first(body, "ListenerArn");
  std::string lb_path = lb.substr(lb.find("loadbalancer/") + 13);
  EXPECT_TRUE(listener.find(":listener/" + lb_path + "/") != std::string::npos) << listener;
  EXPECT_EQ(first(body, "Port"), "8080");
  EXPECT_EQ(first(body, "Weight"), "1");

  auto described = ok("DescribeListeners", {{"LoadBalancerArn", lb}});
  EXPECT_EQ(all(described, "ListenerArn"), (std::vector<std::string>{listener}));
  EXPECT_EQ(first(described, "TargetGroupArn"), tg);
  EXPECT_EQ(first(ok("DescribeListeners", {{"ListenerArns.member.1", listener}}), "Port"), "8080");
  // The target group now reports the load balancer.
  EXPECT_TRUE(has(ok("DescribeTargetGroups", {{"TargetGroupArns.member.1", tg}}),
                  "<LoadBalancerArns><member>" + lb + "</member></LoadBalancerArns>"));
  // Its default rule.
  auto rules = ok("DescribeRules", {{"ListenerArn", listener}});
  EXPECT_EQ(all(rules, "Priority"), (std::vector<std::string>{"default"}));
  EXPECT_EQ(first(rules, "IsDefault"), "true");
  EXPECT_TRUE(first(rules, "RuleArn").find(":listener-rule/" + lb_path + "/") != std::string::npos);

  // The same listener again is the same listener; another action on the port is a duplicate.
  EXPECT_EQ(create_listener(lb, tg, 8080), listener);
  EXPECT_EQ(
      err("CreateListener", {{"LoadBalancerArn", lb},
                             {"Protocol", "HTTP"},
                             {"Port", "8080"},
                             {"DefaultActions.member.1.Type", "fixed-response"},
                             {"DefaultActions.member.1.FixedResponseConfig.StatusCode", "404"}}),
      "DuplicateListener");
}

TEST_F(ElbTest, CreateListenerErrors) {
  std::string lb = create_lb("web");
  std::string tg = create_tg("app");
  Params base{{"LoadBalancerArn", lb},
              {"Protocol", "HTTP"},
              {"Port", "80"},
              {"DefaultActions.member.1.Type", "forward"},
              {"DefaultActions.member.1.TargetGroupArn", tg}};
  auto with = [&](std::string key, std::string value) {
    Params p = base;
    for (auto& [k, v] : p) {
      if (k == key) v = value;
    }
    return p;
  };
  EXPECT_EQ(err("CreateListener", with("Protocol", "HTTPS")), "UnsupportedProtocol");
  EXPECT_EQ(err("CreateListener", with("Port", "0")), "ValidationError");
  EXPECT_EQ(err("CreateListener", with("DefaultActions.member.1.Type", "redirect")),
            "ValidationError");
  std::string gone_tg = tg.substr(0, tg.rfind('/') + 1) + "0123456789abcdef";
  EXPECT_EQ(err("CreateListener", with("DefaultActions.member.1.TargetGroupArn", gone_tg)),
            "TargetGroupNotFound");
  std::string gone_lb = lb.substr(0, lb.rfind('/') + 1) + "0123456789abcdef";
  EXPECT_EQ(err("CreateListener", with("LoadBalancerArn", gone_lb)), "LoadBalancerNotFound");
  EXPECT_EQ(err("DescribeListeners"), "ValidationError");
  EXPECT_EQ(err("DescribeListeners", {{"LoadBalancerArn", gone_lb}}), "LoadBalancerNotFound");

  // A group serves one load balancer.
  create_listener(lb, tg, 80);
  std::string other =
      create_lb("other", {{"SubnetMappings.member.1.SubnetId", "s"},
                          {"SubnetMappings.member.1.PrivateIPv4Address", "127.0.0.9"}});
  EXPECT_EQ(err("CreateListener", {{"LoadBalancerArn", other},
                                   {"Protocol", "HTTP"},
                                   {"Port", "81"},
                                   {"DefaultActions.member.1.Type", "forward"},
                                   {"DefaultActions.member.1.TargetGroupArn", tg}}),
            "TargetGroupAssociationLimit");
}

TEST_F(ElbTest, PortsConflictAcrossLoadBalancersOnOverlappingAddresses) {
  auto at = [&](const std::string& name, const std::string& ip) {
    return create_lb(name, {{"SubnetMappings.member.1.SubnetId", "s"},
                            {"SubnetMappings.member.1.PrivateIPv4Address", ip}});
  };
  std::string any = create_lb("any");  // 0.0.0.0
  std::string one = at("one", "127.0.0.1");
  std::string two = at("two", "127.0.0.2");
  auto fixed = [&](const std::string& lb, int port) {
    return call("CreateListener",
                {{"LoadBalancerArn", lb},
                 {"Protocol", "HTTP"},
                 {"Port", std::to_string(port)},
                 {"DefaultActions.member.1.Type", "fixed-response"},
                 {"DefaultActions.member.1.FixedResponseConfig.StatusCode", "200"}});
  };
  EXPECT_EQ(fixed(one, 9000).first, 200);
  EXPECT_EQ(fixed(two, 9000).first, 200);  // different addresses
  auto [status, body] = fixed(any, 9000);  // 0.0.0.0 overlaps both
  EXPECT_EQ(status, 400);
  EXPECT_EQ(first(body, "Code"), "InvalidConfigurationRequest");
  EXPECT_EQ(fixed(any, 9001).first, 200);
  EXPECT_EQ(first(fixed(one, 9001).second, "Code"), "InvalidConfigurationRequest");
}

// The listeners claiming `port` (elb/port/<port>), as {listener ARN, address}.
std::vector<std::pair<std::string, std::string>> port_claims(store::Store& store, int port) {
  std::vector<std::pair<std::string, std::string>> out;
  auto kv = store.get(keys::port(port));
  if (!kv.ok() || !kv->has_value()) return out;
  json::value doc = json::parse((*kv)->value);
  for (const auto& c : doc.at("claims").as_array()) {
    out.emplace_back(c.at("listener").as_string(), c.at("address").as_string());
  }
  return out;
}

class PortTest : public ElbTest {
 protected:
  std::string at(const std::string& name, const std::string& ip) {
    return create_lb(name, {{"SubnetMappings.member.1.SubnetId", "s"},
                            {"SubnetMappings.member.1.PrivateIPv4Address", ip}});
  }
  std::pair<int, std::string> fixed(const std::string& lb, int port) {
    return call("CreateListener",
                {{"LoadBalancerArn", lb},
                 {"Protocol", "HTTP"},
                 {"Port", std::to_string(port)},
                 {"DefaultActions.member.1.Type", "fixed-response"},
                 {"DefaultActions.member.1.FixedResponseConfig.StatusCode", "200"}});
  }
  std::string listen(const std::string& lb, int port) {
    auto [status, body] = fixed(lb, port);
    EXPECT_EQ(status, 200) << body;
    return first(body, "ListenerArn");
  }
  std::string refused(const std::string& lb, int port) {
    return first(fixed(lb, port).second, "Code");
  }
  size_t port_records() {
    auto r = store_->range({std::string(keys::kPorts), "", 0});
    return r.ok() ? r->kvs.size() : 999;
  }
};

TEST_F(PortTest, ThePortClaimIsReleasedWithTheListenerAndReusable) {
  std::string any = create_lb("any");  // 0.0.0.0
  std::string one = at("one", "127.0.0.1");
  std::string l1 = listen(one, 9000);
  EXPECT_EQ(port_claims(*store_, 9000),
            (std::vector<std::pair<std::string, std::string>>{{l1, "127.0.0.1"}}));
  EXPECT_EQ(refused(any, 9000), "InvalidConfigurationRequest");

  // DeleteListener releases the port: another load balancer can take it.
  ok("DeleteListener", {{"ListenerArn", l1}});
  EXPECT_TRUE(port_claims(*store_, 9000).empty());
  EXPECT_EQ(port_records(), 0u);
  std::string l2 = listen(any, 9000);
  EXPECT_EQ(port_claims(*store_, 9000),
            (std::vector<std::pair<std::string, std::string>>{{l2, "0.0.0.0"}}));
  EXPECT_EQ(refused(one, 9000), "InvalidConfigurationRequest");

  // So does DeleteLoadBalancer, for every listener it had.
  listen(any, 9001);
  ok("DeleteLoadBalancer", {{"LoadBalancerArn", any}});
  EXPECT_EQ(port_records(), 0u);
  listen(one, 9000);
  listen(one, 9001);
  EXPECT_EQ(port_records(), 2u);
}

TEST_F(PortTest, ModifyListenerMovesTheClaim) {
  std::string any = create_lb("any");
  std::string one = at("one", "127.0.0.1");
  std::string l1 = listen(one, 9000);
  std::string l2 = listen(any, 9002);
  auto body = ok("ModifyListener", {{"ListenerArn", l1}, {"Port", "9001"}});
  EXPECT_EQ(first(body, "Port"), "9001");
  EXPECT_TRUE(port_claims(*store_, 9000).empty());
  EXPECT_EQ(port_claims(*store_, 9001).size(), 1u);
  // The old port is free for others, the new one is not.
  listen(any, 9000);
  EXPECT_EQ(refused(any, 9001), "InvalidConfigurationRequest");
  // Moving onto a port another load balancer holds fails and changes nothing.
  EXPECT_EQ(err("ModifyListener", {{"ListenerArn", l2}, {"Port", "9001"}}),
            "InvalidConfigurationRequest");
  EXPECT_EQ(first(ok("DescribeListeners", {{"ListenerArns.member.1", l2}}), "Port"), "9002");
  EXPECT_EQ(port_claims(*store_, 9002).size(), 1u);
  // Modifying without a port change keeps the claim.
  ok("ModifyListener", {{"ListenerArn", l1}, {"Port", "9001"}});
  EXPECT_EQ(port_claims(*store_, 9001).size(), 1u);
}

TEST_F(PortTest, ConcurrentCreateListenersCannotBothTakeAPort) {
  std::string any = create_lb("any");
  std::string one = at("one", "127.0.0.1");
  // "one" commits its listener on 9000 after "any" has read everything but before it commits:
  // any's commit fails its compare on the port record, the retry sees the claim.
  std::string l1;
  hooked_store().before_next_commit([&] { l1 = listen(one, 9000); });
  EXPECT_EQ(refused(any, 9000), "InvalidConfigurationRequest");
  EXPECT_FALSE(l1.empty());
  EXPECT_TRUE(all(ok("DescribeListeners", {{"LoadBalancerArn", any}}), "ListenerArn").empty());
  EXPECT_EQ(port_claims(*store_, 9000),
            (std::vector<std::pair<std::string, std::string>>{{l1, "127.0.0.1"}}));

  // At addresses that do not overlap both get the port (the loser of the race retries).
  std::string two = at("two", "127.0.0.2");
  std::string l3;
  hooked_store().before_next_commit([&] { l3 = listen(two, 9001); });
  std::string l4 = listen(one, 9001);
  EXPECT_EQ(port_claims(*store_, 9001), (std::vector<std::pair<std::string, std::string>>{
                                            {l3, "127.0.0.2"}, {l4, "127.0.0.1"}}));
  // And a delete racing a create on the port keeps the other's claim.
  hooked_store().before_next_commit([&] { listen(two, 9000); });
  ok("DeleteListener", {{"ListenerArn", l1}});
  EXPECT_EQ(port_claims(*store_, 9000).size(), 1u);
  EXPECT_EQ(port_claims(*store_, 9000)[0].second, "127.0.0.2");
}

TEST_F(ElbTest, ForwardConfigWithWeightsAndFixedResponse) {
  std::string lb = create_lb("web");
  std::string blue = create_tg("blue");
  std::string green = create_tg("green");
  // Weighted forwards to several groups are refused (the data plane routes to one backend).
  auto two =
      call("CreateListener",
           {{"LoadBalancerArn", lb},
            {"Protocol", "HTTP"},
            {"Port", "80"},
            {"DefaultActions.member.1.Type", "forward"},
            {"DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn", blue},
            {"DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight", "3"},
            {"DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.TargetGroupArn", green},
            {"DefaultActions.member.1.ForwardConfig.TargetGroups.member.2.Weight", "1"}});
  EXPECT_EQ(first(two.second, "Code"), "ValidationError");
  // Sticky forwards are refused too (the data plane sets no cookies); disabled is accepted.
  auto sticky = [&](const char* enabled) {
    return call(
        "CreateListener",
        {{"LoadBalancerArn", lb},
         {"Protocol", "HTTP"},
         {"Port", "80"},
         {"DefaultActions.member.1.Type", "forward"},
         {"DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn", blue},
         {"DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.Weight", "3"},
         {"DefaultActions.member.1.ForwardConfig.TargetGroupStickinessConfig.Enabled", enabled},
         {"DefaultActions.member.1.ForwardConfig.TargetGroupStickinessConfig.DurationSeconds",
          "60"}});
  };
  auto refused = sticky("true");
  EXPECT_EQ(refused.first, 400);
  EXPECT_EQ(first(refused.second, "Code"), "ValidationError");
  EXPECT_TRUE(has(first(refused.second, "Message"), "is not supported by Berth")) << refused.second;
  EXPECT_TRUE(all(ok("DescribeListeners", {{"LoadBalancerArn", lb}}), "ListenerArn").empty());
  auto [status, body] = sticky("false");
  ASSERT_EQ(status, 200) << body;
  EXPECT_EQ(all(body, "Weight"), (std::vector<std::string>{"3"}));
  EXPECT_TRUE(has(body, "<TargetGroupStickinessConfig><Enabled>false</Enabled>")) << body;
  EXPECT_EQ(all(ok("DescribeTargetGroups", {{"LoadBalancerArn", lb}}), "TargetGroupName"),
            (std::vector<std::string>{"blue"}));

  body = ok("CreateListener",
            {{"LoadBalancerArn", lb},
             {"Protocol", "HTTP"},
             {"Port", "81"},
             {"DefaultActions.member.1.Type", "fixed-response"},
             {"DefaultActions.member.1.FixedResponseConfig.StatusCode", "503"},
             {"DefaultActions.member.1.FixedResponseConfig.ContentType", "text/plain"},
             {"DefaultActions.member.1.FixedResponseConfig.MessageBody", "down for maintenance"}});
  EXPECT_EQ(first(body, "StatusCode"), "503");
  EXPECT_EQ(first(body, "MessageBody"), "down for maintenance");
  EXPECT_EQ(
      err("CreateListener", {{"LoadBalancerArn", lb},
                             {"Protocol", "HTTP"},
                             {"Port", "82"},
                             {"DefaultActions.member.1.Type", "fixed-response"},
                             {"DefaultActions.member.1.FixedResponseConfig.StatusCode", "302"}}),
      "ValidationError");
  // A TargetGroupArn that disagrees with the ForwardConfig.
  EXPECT_EQ(
      err("CreateListener",
          {{"LoadBalancerArn", lb},
           {"Protocol", "HTTP"},
           {"Port", "83"},
           {"DefaultActions.member.1.Type", "forward"},
           {"DefaultActions.member.1.TargetGroupArn", blue},
           {"DefaultActions.member.1.ForwardConfig.TargetGroups.member.1.TargetGroupArn", green}}),
      "ValidationError");
}

TEST_F(ElbTest, ModifyAndDeleteListener) {
  std::string lb = create_lb("web");
  std::string a = create_tg("a");
  std::string b = create_tg("b");
  std::string listener = create_listener(lb, a, 80);
  create_listener(lb, b, 81);
  EXPECT_EQ(err("ModifyListener", {{"ListenerArn", listener}, {"Port", "81"}}),
            "DuplicateListener");
  auto body =
      ok("ModifyListener", {{"ListenerArn", listener},
                            {"Port", "8080"},
                            {"DefaultActions.member.1.Type", "fixed-response"},
                            {"DefaultActions.member.1.FixedResponseConfig.StatusCode", "204"}});
  EXPECT_EQ(first(body, "Port"), "8080");
  // The default rule follows the listener's default actions.
  auto rules = ok("DescribeRules", {{"ListenerArn", listener}});
  EXPECT_EQ(first(rules, "StatusCode"), "204");
  // "a" is no longer used: deletable.
  ok("DeleteTargetGroup", {{"TargetGroupArn", a}});

  EXPECT_EQ(all(ok("DescribeListeners", {{"LoadBalancerArn", lb}}), "Port"),
            (std::vector<std::string>{"81", "8080"}));
  ok("DeleteListener", {{"ListenerArn", listener}});
  EXPECT_EQ(err("DeleteListener", {{"ListenerArn", listener}}), "ListenerNotFound");
  EXPECT_EQ(err("DescribeRules", {{"ListenerArn", listener}}), "ListenerNotFound");
  EXPECT_EQ(all(ok("DescribeListeners", {{"LoadBalancerArn", lb}}), "Port"),
            (std::vector<std::string>{"81"}));
}

// ---- rules

class RuleTest : public ElbTest {
 protected:
  void SetUp() override {
    lb_ = create_lb("web");
    tg_ = create_tg("app");
    listener_ = create_listener(lb_, tg_);
  }
  Params rule(int priority, const std::string& field, std::vector<std::string> values,
              bool config_form = false) {
    Params p{{"ListenerArn", listener_},
             {"Priority", std::to_string(priority)},
             {"Conditions.member.1.Field", field},
             {"Actions.member.1.Type", "forward"},
             {"Actions.member.1.TargetGroupArn", tg_}};
    std::string prefix = config_form ? (field == "path-pattern"
                                            ? "Conditions.member.1.PathPatternConfig.Values.member."
                                            : "Conditions.member.1.HostHeaderConfig.Values.member.")
                                     : "Conditions.member.1.Values.member.";
    for (size_t i = 0; i < values.size(); ++i)
      p.emplace_back(prefix + std::to_string(i + 1), values[i]);
    return p;
  }
  std::string lb_, tg_, listener_;
};

TEST_F(RuleTest, CreateAndDescribeRules) {
  auto body = ok("CreateRule", rule(10, "path-pattern", {"/api/*"}));
  std::string api = first(body, "RuleArn");
  EXPECT_EQ(first(body, "Priority"), "10");
  EXPECT_EQ(first(body, "IsDefault"), "false");
  // Both the legacy Values and the config form are returned, as AWS does.
  EXPECT_TRUE(has(body, "<PathPatternConfig><Values><member>/api/*</member></Values>"));
  EXPECT_TRUE(has(body, "<Field>path-pattern</Field><Values><member>/api/*</member>")) << body;

  body = ok("CreateRule", rule(5, "host-header", {"example.com", "*.example.org"}, true));
  std::string host = first(body, "RuleArn");
  EXPECT_TRUE(has(body, "<HostHeaderConfig><Values><member>example.com</member>"));

  auto rules = ok("DescribeRules", {{"ListenerArn", listener_}});
  EXPECT_EQ(all(rules, "Priority"), (std::vector<std::string>{"5", "10", "default"}));
  EXPECT_EQ(all(ok("DescribeRules", {{"RuleArns.member.1", api}}), "RuleArn"),
            (std::vector<std::string>{api}));
  auto page = ok("DescribeRules", {{"ListenerArn", listener_}, {"PageSize", "2"}});
  EXPECT_EQ(all(page, "Priority"), (std::vector<std::string>{"5", "10"}));
  page = ok("DescribeRules",
            {{"ListenerArn", listener_}, {"PageSize", "2"}, {"Marker", first(page, "NextMarker")}});
  EXPECT_EQ(all(page, "Priority"), (std::vector<std::string>{"default"}));
  EXPECT_EQ(err("DescribeRules"), "ValidationError");
}

TEST_F(RuleTest, CreateRuleErrors) {
  ok("CreateRule", rule(10, "path-pattern", {"/a"}));
  EXPECT_EQ(err("CreateRule", rule(10, "path-pattern", {"/b"})), "PriorityInUse");
  EXPECT_EQ(err("CreateRule", rule(11, "path-pattern", {"/1", "/2", "/3", "/4", "/5", "/6"})),
            "ValidationError");
  EXPECT_EQ(err("CreateRule", rule(11, "http-request-method", {"GET"})), "ValidationError");
  EXPECT_EQ(err("CreateRule", rule(11, "path-pattern", {})), "ValidationError");
  EXPECT_EQ(err("CreateRule", rule(11, "host-header", {"bad host"})), "ValidationError");
  EXPECT_EQ(err("CreateRule", rule(50001, "path-pattern", {"/x"})), "ValidationError");
  Params p = rule(12, "path-pattern", {"/x"});
  p[0].second = listener_.substr(0, listener_.rfind('/') + 1) + "0123456789abcdef";
  EXPECT_EQ(err("CreateRule", p), "ListenerNotFound");
  // Two path-pattern conditions in one rule.
  p = rule(12, "path-pattern", {"/x"});
  p.push_back({"Conditions.member.2.Field", "path-pattern"});
  p.push_back({"Conditions.member.2.Values.member.1", "/y"});
  EXPECT_EQ(err("CreateRule", p), "ValidationError");
  // Path and host together count toward the 5 values.
  p = rule(12, "path-pattern", {"/1", "/2", "/3"});
  p.push_back({"Conditions.member.2.Field", "host-header"});
  p.push_back({"Conditions.member.2.Values.member.1", "a.com"});
  p.push_back({"Conditions.member.2.Values.member.2", "b.com"});
  EXPECT_EQ(first(ok("CreateRule", p), "Priority"), "12");
  p.push_back({"Conditions.member.2.Values.member.3", "c.com"});
  p[1].second = "13";
  EXPECT_EQ(err("CreateRule", p), "ValidationError");
}

TEST_F(RuleTest, SetRulePrioritiesModifyRuleAndDeleteRule) {
  std::string a = first(ok("CreateRule", rule(1, "path-pattern", {"/a"})), "RuleArn");
  std::string b = first(ok("CreateRule", rule(2, "path-pattern", {"/b"})), "RuleArn");
  // A swap is one change.
  auto body = ok("SetRulePriorities", {{"RulePriorities.member.1.RuleArn", a},
                                       {"RulePriorities.member.1.Priority", "2"},
                                       {"RulePriorities.member.2.RuleArn", b},
                                       {"RulePriorities.member.2.Priority", "1"}});
  EXPECT_EQ(all(body, "RuleArn").size(), 2u);
  auto rules = ok("DescribeRules", {{"ListenerArn", listener_}});
  EXPECT_EQ(all(rules, "RuleArn")[0], b);
  EXPECT_EQ(err("SetRulePriorities", {{"RulePriorities.member.1.RuleArn", a},
                                      {"RulePriorities.member.1.Priority", "1"}}),
            "PriorityInUse");
  std::string default_rule = all(rules, "RuleArn")[2];
  EXPECT_EQ(err("SetRulePriorities", {{"RulePriorities.member.1.RuleArn", default_rule},
                                      {"RulePriorities.member.1.Priority", "9"}}),
            "OperationNotPermitted");

  body = ok("ModifyRule", {{"RuleArn", a},
                           {"Conditions.member.1.Field", "host-header"},
                           {"Conditions.member.1.Values.member.1", "api.example.com"}});
  EXPECT_EQ(first(body, "Field"), "host-header");
  EXPECT_EQ(err("ModifyRule", {{"RuleArn", default_rule},
                               {"Actions.member.1.Type", "fixed-response"},
                               {"Actions.member.1.FixedResponseConfig.StatusCode", "200"}}),
            "OperationNotPermitted");

  EXPECT_EQ(err("DeleteRule", {{"RuleArn", default_rule}}), "OperationNotPermitted");
  ok("DeleteRule", {{"RuleArn", a}});
  EXPECT_EQ(err("DeleteRule", {{"RuleArn", a}}), "RuleNotFound");
  EXPECT_EQ(err("DescribeRules", {{"RuleArns.member.1", a}}), "RuleNotFound");
  EXPECT_EQ(all(ok("DescribeRules", {{"ListenerArn", listener_}}), "Priority"),
            (std::vector<std::string>{"1", "default"}));
}

// ---- targets and health

TEST_F(ElbTest, TargetHealthFollowsRegistrationAndTraffic) {
  std::string tg = create_tg("app");
  ok("RegisterTargets", {{"TargetGroupArn", tg},
                         {"Targets.member.1.Id", "i-0123456789abcdef0"},
                         {"Targets.member.2.Id", "i-0123456789abcdef1"},
                         {"Targets.member.2.Port", "8080"}});
  // No listener forwards to the group yet.
  auto body = health(tg);
  EXPECT_EQ(all(body, "State"), (std::vector<std::string>{"unused", "unused"}));
  EXPECT_EQ(first(body, "Reason"), "Target.NotInUse");
  EXPECT_EQ(first(body, "Description"),
            "Target group is not configured to receive traffic from the load balancer");
  EXPECT_EQ(all(body, "Port"), (std::vector<std::string>{"80", "8080"}));  // group's port default
  EXPECT_EQ(all(body, "HealthCheckPort"), (std::vector<std::string>{"80", "8080"}));

  std::string lb = create_lb("web");
  create_listener(lb, tg);
  body = health(tg);
  EXPECT_EQ(all(body, "State"), (std::vector<std::string>{"initial", "initial"}));
  EXPECT_EQ(first(body, "Reason"), "Elb.RegistrationInProgress");
  EXPECT_EQ(first(body, "Description"), "Target registration is in progress");

  // The LB controller's observation.
  std::string key = keys::target(parse_arn(tg)->id, "i-0123456789abcdef0", 80);
  auto kv = store_->get(key);
  ASSERT_TRUE(kv.ok() && kv->has_value());
  json::object rec = json::parse((*kv)->value).as_object();
  rec["health"] = json::object{{"State", "healthy"}};
  ASSERT_TRUE(store_->commit({{}, {store::Op::put(key, json::serialize(rec))}}).ok());
  body = health(tg, {{"Targets.member.1.Id", "i-0123456789abcdef0"}});
  EXPECT_EQ(all(body, "State"), (std::vector<std::string>{"healthy"}));
  EXPECT_FALSE(has(body, "<Reason>"));

  // Deregistration drains.
  ok("DeregisterTargets", {{"TargetGroupArn", tg}, {"Targets.member.1.Id", "i-0123456789abcdef0"}});
  body =
      health(tg, {{"Targets.member.1.Id", "i-0123456789abcdef0"}, {"Targets.member.1.Port", "80"}});
  EXPECT_EQ(first(body, "State"), "draining");
  EXPECT_EQ(first(body, "Reason"), "Target.DeregistrationInProgress");
  EXPECT_EQ(first(body, "Description"), "Target deregistration is in progress");
  // Registering again ends the drain; health checks start over.
  ok("RegisterTargets", {{"TargetGroupArn", tg}, {"Targets.member.1.Id", "i-0123456789abcdef0"}});
  EXPECT_EQ(first(health(tg, {{"Targets.member.1.Id", "i-0123456789abcdef0"}}), "State"),
            "initial");

  // A target that is not registered.
  body = health(tg, {{"Targets.member.1.Id", "i-00000000000000000"}});
  EXPECT_EQ(first(body, "State"), "unused");
  EXPECT_EQ(first(body, "Reason"), "Target.NotRegistered");
  EXPECT_EQ(first(body, "Description"), "Target is not registered to the target group");
}

TEST_F(ElbTest, TargetValidation) {
  std::string tg = create_tg("inst");
  std::string ip = create_tg("ips", {{"TargetType", "ip"}});
  EXPECT_EQ(err("RegisterTargets", {{"TargetGroupArn", tg}, {"Targets.member.1.Id", "10.0.0.5"}}),
            "InvalidTarget");
  EXPECT_EQ(err("RegisterTargets",
                {{"TargetGroupArn", ip}, {"Targets.member.1.Id", "i-0123456789abcdef0"}}),
            "InvalidTarget");
  EXPECT_EQ(err("RegisterTargets", {{"TargetGroupArn", ip}, {"Targets.member.1.Id", "10.0.0.256"}}),
            "InvalidTarget");
  ok("RegisterTargets", {{"TargetGroupArn", ip},
                         {"Targets.member.1.Id", "10.0.0.5"},
                         {"Targets.member.1.Port", "9000"},
                         {"Targets.member.1.AvailabilityZone", "us-east-1a"}});
  auto body = health(ip);
  EXPECT_EQ(first(body, "Id"), "10.0.0.5");
  EXPECT_EQ(first(body, "AvailabilityZone"), "us-east-1a");
  // Deregistering a target that is not registered (here: another port).
  EXPECT_EQ(err("DeregisterTargets", {{"TargetGroupArn", ip}, {"Targets.member.1.Id", "10.0.0.5"}}),
            "InvalidTarget");
  std::string gone = tg.substr(0, tg.rfind('/') + 1) + "0123456789abcdef";
  EXPECT_EQ(err("RegisterTargets",
                {{"TargetGroupArn", gone}, {"Targets.member.1.Id", "i-0123456789abcdef0"}}),
            "TargetGroupNotFound");
  EXPECT_EQ(err("DescribeTargetHealth", {{"TargetGroupArn", gone}}), "TargetGroupNotFound");
}

TEST_F(ElbTest, DeleteTargetGroupDeletesItsTargets) {
  std::string tg = create_tg("app");
  ok("RegisterTargets", {{"TargetGroupArn", tg}, {"Targets.member.1.Id", "i-0123456789abcdef0"}});
  ok("DeleteTargetGroup", {{"TargetGroupArn", tg}});
  auto r = store_->range({keys::target_prefix(parse_arn(tg)->id), "", 0});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->kvs.empty());
  ok("DeleteTargetGroup", {{"TargetGroupArn", tg}});  // gone already: not an error
  // A new group of the same name is another group: the old ARN stays unknown.
  create_tg("app");
  EXPECT_EQ(err("DescribeTargetHealth", {{"TargetGroupArn", tg}}), "TargetGroupNotFound");
}

// ---- tags

TEST_F(ElbTest, TagsOnLoadBalancersAndTargetGroups) {
  std::string lb = create_lb("web", {{"Tags.member.1.Key", "env"}, {"Tags.member.1.Value", "dev"}});
  std::string tg = create_tg("app");
  ok("AddTags", {{"ResourceArns.member.1", lb},
                 {"ResourceArns.member.2", tg},
                 {"Tags.member.1.Key", "team"},
                 {"Tags.member.1.Value", "core"}});
  auto body = ok("DescribeTags", {{"ResourceArns.member.1", lb}, {"ResourceArns.member.2", tg}});
  EXPECT_EQ(all(body, "ResourceArn"), (std::vector<std::string>{lb, tg}));
  EXPECT_EQ(all(body, "Key"), (std::vector<std::string>{"env", "team", "team"}));
  ok("RemoveTags", {{"ResourceArns.member.1", lb}, {"TagKeys.member.1", "env"}});
  EXPECT_EQ(all(ok("DescribeTags", {{"ResourceArns.member.1", lb}}), "Key"),
            (std::vector<std::string>{"team"}));
  EXPECT_EQ(
      err("AddTags",
          {{"ResourceArns.member.1", lb}, {"Tags.member.1.Key", "a"}, {"Tags.member.2.Key", "a"}}),
      "DuplicateTagKeys");
  EXPECT_EQ(err("AddTags", {{"ResourceArns.member.1", lb}, {"Tags.member.1.Key", "aws:x"}}),
            "ValidationError");
  std::string gone = tg.substr(0, tg.rfind('/') + 1) + "0123456789abcdef";
  EXPECT_EQ(err("DescribeTags", {{"ResourceArns.member.1", gone}}), "TargetGroupNotFound");
}

// ---- records

TEST(ElbRecords, ParseArn) {
  auto p = parse_arn(
      "arn:aws:elasticloadbalancing:us-east-1:1:listener-rule/app/web/0123456789abcdef/"
      "fedcba9876543210/00000000000000aa");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "listener-rule");
  EXPECT_EQ(p->name, "web");
  EXPECT_EQ(p->lb_id, "0123456789abcdef");
  EXPECT_EQ(p->listener_id, "fedcba9876543210");
  EXPECT_EQ(p->id, "00000000000000aa");
  p = parse_arn("arn:aws:elasticloadbalancing:r:1:targetgroup/app/00000000000000bb");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "targetgroup");
  EXPECT_EQ(p->name, "app");
  EXPECT_EQ(p->id, "00000000000000bb");
  EXPECT_FALSE(parse_arn("arn:aws:elasticloadbalancing:r:1:loadbalancer/net/n/00"));
  EXPECT_FALSE(parse_arn("arn:aws:elasticloadbalancing:r:1:targetgroup/a/b/../x"));
  EXPECT_FALSE(parse_arn("arn:aws:ecs:r:1:targetgroup/app/00"));
  EXPECT_FALSE(parse_arn("arn:aws:elasticloadbalancing:r:1:targetgroup/a_b/00"));
}

TEST_F(ElbTest, RegisterTargetRecordsOwnerAndDrainState) {
  std::string tg = create_tg("app");
  ASSERT_TRUE(register_target(*store_, 100, tg, "i-0123456789abcdef0", 32768, "arn:task/1").ok());
  std::string key = keys::target(parse_arn(tg)->id, "i-0123456789abcdef0", 32768);
  auto rec = json::parse((*store_->get(key))->value).as_object();
  EXPECT_EQ(rec.at("state"), "registered");
  EXPECT_EQ(rec.at("owner"), "arn:task/1");
  EXPECT_EQ(rec.at("registeredAt").to_number<double>(), 100);
  // Re-registering a registered target keeps it as it is.
  ASSERT_TRUE(register_target(*store_, 200, tg, "i-0123456789abcdef0", 32768, "arn:task/1").ok());
  rec = json::parse((*store_->get(key))->value).as_object();
  EXPECT_EQ(rec.at("registeredAt").to_number<double>(), 100);

  ASSERT_TRUE(deregister_target(*store_, 300, tg, "i-0123456789abcdef0", 32768).ok());
  rec = json::parse((*store_->get(key))->value).as_object();
  EXPECT_EQ(rec.at("state"), "draining");
  EXPECT_EQ(rec.at("drainingSince").to_number<double>(), 300);
  // A second deregistration does not restart the drain; an unknown target is a no-op.
  ASSERT_TRUE(deregister_target(*store_, 400, tg, "i-0123456789abcdef0", 32768).ok());
  rec = json::parse((*store_->get(key))->value).as_object();
  EXPECT_EQ(rec.at("drainingSince").to_number<double>(), 300);
  ASSERT_TRUE(deregister_target(*store_, 400, tg, "i-0123456789abcdef9", 1).ok());

  std::string gone = tg.substr(0, tg.rfind('/') + 1) + "0123456789abcdef";
  auto s = register_target(*store_, 1, gone, "i-0123456789abcdef0", 1, "");
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, model::ElbErrc::target_group_not_found);
}

TEST_F(ElbTest, TargetGroupUsageAndAttributes) {
  std::string lb = create_lb("web");
  std::string tg = create_tg("app");
  std::string unused = create_tg("spare");
  create_listener(lb, tg);
  auto usage = target_group_load_balancers(*store_);
  ASSERT_TRUE(usage.ok());
  EXPECT_EQ(usage->size(), 1u);
  EXPECT_EQ(usage->at(tg), std::set<std::string>{lb});
  ok("ModifyTargetGroupAttributes",
     {{"TargetGroupArn", tg},
      {"Attributes.member.1.Key", "deregistration_delay.timeout_seconds"},
      {"Attributes.member.1.Value", "5"}});
  auto doc = json::parse((*store_->get(keys::target_group("app")))->value).as_object();
  EXPECT_EQ(target_group_attribute(doc, "deregistration_delay.timeout_seconds"), "5");
  EXPECT_EQ(target_group_attribute(doc, "stickiness.type"), "lb_cookie");
  EXPECT_EQ(target_group_attribute(json::object{}, "slow_start.duration_seconds"), "0");
  EXPECT_EQ(target_group_attribute(doc, "nope"), "");
}

TEST_F(ElbTest, UnknownActionAndBadParameters) {
  EXPECT_EQ(err("DescribeAccountLimits"), "InvalidAction");
  EXPECT_EQ(err("CreateTargetGroup", {{"Name", "x"}, {"Port", "eighty"}}), "ValidationError");
}

}  // namespace
}  // namespace berth::server::elbv2
