// The LB controller between the ELBv2 records and a fake data plane: the desired state it derives
// (frontends per listener, routes by rule priority, backends with their health checks, servers
// per target), health copied back into DescribeTargetHealth, and draining targets removed once
// their deregistration delay has passed. The real HAProxy is covered in src/lb/tests and
// tests/integration/test_lb_services.py.

#include <gtest/gtest.h>

#include "lb/fake/fake_data_plane.h"
#include "server/elbv2/lb_controller.h"
#include "server/elbv2/records.h"
#include "server/elbv2/tests/elbv2_fixture.h"

namespace berth::server::elbv2 {
namespace {

using namespace elbtest;  // NOLINT: the fixture and its XML probes

class LbControllerTest : public ElbTest {
 protected:
  LbControllerTest() : controller_(*store_, clock_, &plane_) {
    lb_ = create_lb("web", {{"SubnetMappings.member.1.SubnetId", "local"},
                            {"SubnetMappings.member.1.PrivateIPv4Address", "127.0.0.1"}});
    tg_ = create_tg("web", {{"HealthCheckPath", "/health"},
                            {"HealthCheckIntervalSeconds", "5"},
                            {"HealthCheckTimeoutSeconds", "2"},
                            {"HealthyThresholdCount", "2"},
                            {"Matcher.HttpCode", "200-299"}});
    listener_ = create_listener(lb_, tg_, 8080);
    put_instance("");  // the container instance the tests' targets name
  }
  void put_instance(const std::string& address) {
    std::string attrs =
        address.empty() ? "[]" : R"([{"name":"berth.host-address","value":")" + address + R"("}])";
    store::Txn txn;
    txn.ops.push_back(
        store::Op::put("instances/c/base",
                       R"({"ec2InstanceId":"i-0123456789abcdef0","attributes":)" + attrs + "}"));
    ASSERT_TRUE(store_->commit(txn).ok());
  }
  void pass() {
    auto r = controller_.reconcile_once();
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  std::string backend() const { return "tg_" + tg_.substr(tg_.rfind('/') + 1); }

  lb::FakeDataPlane plane_;
  LbController controller_;
  std::string lb_, tg_, listener_;
};

TEST_F(LbControllerTest, DesiredStateFollowsTheRecords) {
  std::string api = create_tg("api");
  ok("CreateRule", {{"ListenerArn", listener_},
                    {"Priority", "20"},
                    {"Conditions.member.1.Field", "host-header"},
                    {"Conditions.member.1.Values.member.1", "admin.example.com"},
                    {"Actions.member.1.Type", "forward"},
                    {"Actions.member.1.TargetGroupArn", api}});
  ok("CreateRule", {{"ListenerArn", listener_},
                    {"Priority", "10"},
                    {"Conditions.member.1.Field", "path-pattern"},
                    {"Conditions.member.1.Values.member.1", "/api/*"},
                    {"Conditions.member.2.Field", "host-header"},
                    {"Conditions.member.2.HostHeaderConfig.Values.member.1", "*.example.com"},
                    {"Actions.member.1.Type", "forward"},
                    {"Actions.member.1.TargetGroupArn", api}});
  ok("RegisterTargets", {{"TargetGroupArn", tg_},
                         {"Targets.member.1.Id", "i-0123456789abcdef0"},
                         {"Targets.member.1.Port", "32768"}});
  pass();
  lb::DesiredState d = plane_.last();
  ASSERT_EQ(d.frontends.size(), 1u);
  EXPECT_EQ(d.frontends[0].address, "127.0.0.1");
  EXPECT_EQ(d.frontends[0].port, 8080);
  EXPECT_EQ(d.frontends[0].default_backend, backend());
  ASSERT_EQ(d.frontends[0].routes.size(), 2u);
  EXPECT_EQ(d.frontends[0].routes[0].priority, 10);  // lowest priority number first
  EXPECT_EQ(d.frontends[0].routes[0].path_patterns, std::vector<std::string>{"/api/*"});
  EXPECT_EQ(d.frontends[0].routes[0].host_patterns, std::vector<std::string>{"*.example.com"});
  EXPECT_EQ(d.frontends[0].routes[1].host_patterns, std::vector<std::string>{"admin.example.com"});
  ASSERT_EQ(d.backends.size(), 2u);
  for (const auto& b : d.backends) {
    if (b.id != backend()) continue;
    EXPECT_EQ(b.health_check.path, "/health");
    EXPECT_EQ(b.health_check.interval_seconds, 5);
    EXPECT_EQ(b.health_check.timeout_seconds, 2);
    EXPECT_EQ(b.health_check.healthy_threshold, 2);
    EXPECT_EQ(b.health_check.matcher, "200-299");
  }
  ASSERT_EQ(d.servers.size(), 1u);
  EXPECT_EQ(d.servers[0].backend, backend());
  EXPECT_EQ(d.servers[0].port, 32768);
  EXPECT_EQ(d.servers[0].address, "127.0.0.1");  // no container instance: this host
  EXPECT_FALSE(d.servers[0].draining);
  // Deleting the listener takes its frontend and the now unused backends away.
  ok("DeleteListener", {{"ListenerArn", listener_}});
  pass();
  EXPECT_TRUE(plane_.last().frontends.empty());
  EXPECT_TRUE(plane_.last().servers.empty());
}

TEST_F(LbControllerTest, InstanceTargetsResolveToTheAgentsAddress) {
  put_instance("10.1.2.3");
  ok("RegisterTargets", {{"TargetGroupArn", tg_},
                         {"Targets.member.1.Id", "i-0123456789abcdef0"},
                         {"Targets.member.1.Port", "32768"}});
  pass();
  ASSERT_EQ(plane_.last().servers.size(), 1u);
  EXPECT_EQ(plane_.last().servers[0].address, "10.1.2.3");
}

TEST_F(LbControllerTest, UnknownInstanceGetsNoTraffic) {
  ok("RegisterTargets", {{"TargetGroupArn", tg_},
                         {"Targets.member.1.Id", "i-00000000000000001"},
                         {"Targets.member.1.Port", "32768"}});
  pass();
  EXPECT_TRUE(plane_.last().servers.empty());
  auto body = health(tg_);
  EXPECT_EQ(first(body, "State"), "unused");
  EXPECT_EQ(first(body, "Reason"), "Target.InvalidState");
}

TEST_F(LbControllerTest, FixedResponsesReachTheDataPlane) {
  ok("CreateRule", {{"ListenerArn", listener_},
                    {"Priority", "5"},
                    {"Conditions.member.1.Field", "path-pattern"},
                    {"Conditions.member.1.Values.member.1", "/maintenance"},
                    {"Actions.member.1.Type", "fixed-response"},
                    {"Actions.member.1.FixedResponseConfig.StatusCode", "503"},
                    {"Actions.member.1.FixedResponseConfig.ContentType", "text/plain"},
                    {"Actions.member.1.FixedResponseConfig.MessageBody", "down"}});
  pass();
  ASSERT_EQ(plane_.last().frontends.size(), 1u);
  lb::DesiredState d = plane_.last();
  const auto& routes = d.frontends[0].routes;
  ASSERT_EQ(routes.size(), 1u);
  ASSERT_TRUE(routes[0].fixed.has_value());
  EXPECT_EQ(routes[0].fixed->status, 503);
  EXPECT_EQ(routes[0].fixed->body, "down");
  EXPECT_TRUE(routes[0].backend.empty());
}

TEST_F(LbControllerTest, UnusedGroupTargetsAreMarkedUnused) {
  ok("RegisterTargets", {{"TargetGroupArn", tg_},
                         {"Targets.member.1.Id", "i-0123456789abcdef0"},
                         {"Targets.member.1.Port", "32768"}});
  pass();
  EXPECT_EQ(first(health(tg_), "State"), "healthy");
  ok("DeleteListener", {{"ListenerArn", listener_}});
  pass();
  // The stored health no longer claims healthy (the ECS side reads it).
  auto r = store_->range({"elb/target/", "", 0});
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_NE(r->kvs[0].value.find("\"State\":\"unused\""), std::string::npos) << r->kvs[0].value;
}

TEST_F(LbControllerTest, NewTargetGetsUnhealthyThresholdChecksBeforeItsVerdict) {
  ok("RegisterTargets", {{"TargetGroupArn", tg_},
                         {"Targets.member.1.Id", "i-0123456789abcdef0"},
                         {"Targets.member.1.Port", "32768"}});
  plane_.set_health(backend(), "i-0123456789abcdef0_32768", "unhealthy",
                    "Target.FailedHealthChecks", "Health checks failed");
  pass();
  EXPECT_EQ(first(health(tg_), "State"), "initial");  // interval 5 s x 2 failures not yet seen
  clock_.advance(std::chrono::seconds(10));
  pass();
  EXPECT_EQ(first(health(tg_), "State"), "unhealthy");
}

TEST_F(LbControllerTest, HealthFlowsIntoDescribeTargetHealth) {
  ok("RegisterTargets", {{"TargetGroupArn", tg_},
                         {"Targets.member.1.Id", "i-0123456789abcdef0"},
                         {"Targets.member.1.Port", "32768"}});
  EXPECT_EQ(first(health(tg_), "State"), "initial");
  std::string name = "i-0123456789abcdef0_32768";
  plane_.set_health(backend(), name, "unhealthy", "Target.ResponseCodeMismatch",
                    "Health checks failed with these codes: [404]");
  clock_.advance(std::chrono::seconds(10));  // past the first verdict
  pass();
  auto body = health(tg_);
  EXPECT_EQ(first(body, "State"), "unhealthy");
  EXPECT_EQ(first(body, "Reason"), "Target.ResponseCodeMismatch");
  EXPECT_EQ(first(body, "Description"), "Health checks failed with these codes: [404]");
  int64_t rev = store_->revision();
  pass();  // nothing changed: nothing written
  EXPECT_EQ(store_->revision(), rev);
  plane_.clear_health(backend(), name);
  pass();
  EXPECT_EQ(first(health(tg_), "State"), "healthy");
}

TEST_F(LbControllerTest, DrainingTargetIsRemovedAfterTheDelay) {
  ok("ModifyTargetGroupAttributes",
     {{"TargetGroupArn", tg_},
      {"Attributes.member.1.Key", "deregistration_delay.timeout_seconds"},
      {"Attributes.member.1.Value", "30"}});
  ok("RegisterTargets", {{"TargetGroupArn", tg_},
                         {"Targets.member.1.Id", "i-0123456789abcdef0"},
                         {"Targets.member.1.Port", "32768"}});
  pass();
  ok("DeregisterTargets", {{"TargetGroupArn", tg_},
                           {"Targets.member.1.Id", "i-0123456789abcdef0"},
                           {"Targets.member.1.Port", "32768"}});
  pass();
  ASSERT_EQ(plane_.last().servers.size(), 1u);
  EXPECT_TRUE(plane_.last().servers[0].draining);
  EXPECT_EQ(first(health(tg_), "State"), "draining");
  clock_.advance(std::chrono::seconds(29));
  pass();
  EXPECT_EQ(first(health(tg_), "State"), "draining");
  clock_.advance(std::chrono::seconds(1));
  pass();
  EXPECT_EQ(first(health(tg_), "State"), "");  // gone
  pass();
  EXPECT_TRUE(plane_.last().servers.empty());
}

TEST_F(LbControllerTest, DataPlaneFailureIsReportedAndRetried) {
  ok("ModifyTargetGroupAttributes",
     {{"TargetGroupArn", tg_},
      {"Attributes.member.1.Key", "deregistration_delay.timeout_seconds"},
      {"Attributes.member.1.Value", "10"}});
  ok("RegisterTargets", {{"TargetGroupArn", tg_},
                         {"Targets.member.1.Id", "i-0123456789abcdef0"},
                         {"Targets.member.1.Port", "32768"}});
  ok("DeregisterTargets", {{"TargetGroupArn", tg_},
                           {"Targets.member.1.Id", "i-0123456789abcdef0"},
                           {"Targets.member.1.Port", "32768"}});
  plane_.fail_apply(Error(std::make_error_code(std::errc::io_error), "proxy down"));
  clock_.advance(std::chrono::seconds(10));
  EXPECT_FALSE(controller_.reconcile_once().ok());
  // Drains still expire while the proxy refuses its configuration.
  EXPECT_EQ(first(health(tg_), "State"), "");
  plane_.fail_apply(std::nullopt);
  pass();
  EXPECT_EQ(plane_.last().frontends.size(), 1u);
}

}  // namespace
}  // namespace berth::server::elbv2
