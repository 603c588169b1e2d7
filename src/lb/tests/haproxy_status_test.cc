// Parsing runtime API answers (captured from HAProxy 2.6.12) and mapping them to ELBv2 health.
#include <gtest/gtest.h>

#include "lb/haproxy/haproxy_status.h"

namespace berth::lb {
namespace {

constexpr const char* kServersState =
    "1\n"
    "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight "
    "srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health "
    "srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord "
    "srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port\n"
    "3 be_web 1 s1 127.0.0.1 2 8 1 1 1578 15 3 3 6 0 0 0 - 18081 - 0 0 - - 0\n"
    "3 be_web 2 s2 127.0.0.1 0 1 1 1 0 1 0 0 2 0 0 0 - 18082 - 0 0 - - 0\n"
    "\n";

TEST(HaproxyStatus, ParsesServersState) {
  auto r = parse_servers_state(kServersState);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  const RuntimeServer& s1 = (*r)[0];
  EXPECT_EQ(s1.proxy, "be_web");
  EXPECT_EQ(s1.name, "s1");
  EXPECT_EQ(s1.address, "127.0.0.1");
  EXPECT_EQ(s1.port, 18081);
  EXPECT_EQ(s1.op_state, RuntimeServer::kRunning);
  EXPECT_TRUE(s1.draining());
  EXPECT_FALSE(s1.in_maintenance());
  EXPECT_TRUE((*r)[1].in_maintenance());  // freshly added: forced maintenance

  EXPECT_FALSE(parse_servers_state("Unknown command\n").ok());
  EXPECT_TRUE(parse_servers_state(std::string("1\n") + "# be_id be_name srv_id srv_name srv_addr "
                                                       "srv_op_state srv_admin_state srv_port\n")
                  ->empty());
}

TEST(HaproxyStatus, StateComparisonIgnoresTimeSinceLastChange) {
  std::string later = kServersState;
  later.replace(later.find(" 1578 "), 6, " 1579 ");
  EXPECT_EQ(servers_state_without_times(kServersState), servers_state_without_times(later));
  later.replace(later.find("2 8 1 1"), 7, "0 8 1 1");
  EXPECT_NE(servers_state_without_times(kServersState), servers_state_without_times(later));
}

TEST(HaproxyStatus, ParsesStatServerRows) {
  const char* csv =
      "# pxname,svname,qcur,qmax,scur,smax,status,check_status,check_code,type,\n"
      "fe_x,FRONTEND,,,0,0,OPEN,,,0,\n"
      "be_web,s1,0,0,3,5,UP,* L7OK,200,2,\n"
      "be_web,s2,0,0,0,0,DOWN,L7STS,404,2,\n"
      "be_web,BACKEND,0,0,3,5,UP,,,1,\n"
      "\n";
  auto r = parse_stat(csv);
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].proxy, "be_web");
  EXPECT_EQ((*r)[0].check_status, "L7OK");
  EXPECT_EQ((*r)[0].current_sessions, 3);
  EXPECT_EQ((*r)[1].check_code, "404");
}

ServerHealth map(const char* status, const char* check, const char* code = "",
                 bool registering = false) {
  return to_server_health({"be_web", "s1", status, check, code, 2}, registering);
}

TEST(HaproxyStatus, MapsToElbTargetHealth) {
  auto h = map("UP", "L7OK", "200");
  EXPECT_EQ(h.backend, "web");
  EXPECT_EQ(h.state, "healthy");
  EXPECT_EQ(h.reason, "");
  EXPECT_EQ(h.current_sessions, 2);
  EXPECT_EQ(map("UP 1/2", "L7STS", "500").state, "healthy");  // going down, still serving

  EXPECT_EQ(map("DOWN", "INI").reason, "Elb.InitialHealthChecking");
  EXPECT_EQ(map("DOWN 1/2", "L7OK", "200", true).state, "initial");
  // The same counters for a server that was UP before: recovering, still unhealthy.
  EXPECT_EQ(map("DOWN 1/2", "L7OK", "200", false).state, "unhealthy");

  h = map("DOWN", "L7STS", "500", true);
  EXPECT_EQ(h.state, "unhealthy");
  EXPECT_EQ(h.reason, "Target.ResponseCodeMismatch");
  EXPECT_EQ(h.description, "Health checks failed with these codes: [500]");
  EXPECT_EQ(map("DOWN", "L4TOUT").reason, "Target.Timeout");
  EXPECT_EQ(map("DOWN", "L7TOUT").reason, "Target.Timeout");
  EXPECT_EQ(map("DOWN", "L4CON").reason, "Target.FailedHealthChecks");
  EXPECT_EQ(map("DOWN", "L7RSP").reason, "Target.FailedHealthChecks");

  h = map("DRAIN", "L7OK", "200");
  EXPECT_EQ(h.state, "draining");
  EXPECT_EQ(h.reason, "Target.DeregistrationInProgress");
  EXPECT_EQ(map("MAINT", "L7OK").state, "draining");
  h = map("no check", "");
  EXPECT_EQ(h.state, "unavailable");
  EXPECT_EQ(h.reason, "Target.HealthCheckDisabled");
}

}  // namespace
}  // namespace berth::lb
