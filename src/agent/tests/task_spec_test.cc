// Translation of task definitions into engine specs, and the safety policy.

#include "agent/task_spec.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <filesystem>

namespace berth::agent {
namespace {

namespace json = boost::json;
constexpr const char* kArn = "arn:aws:ecs:us-east-1:1:task/c/abc";

json::object td(const std::string& text) { return json::parse(text).as_object(); }

TEST(TaskSpec, MapsContainerDefinition) {
  auto plan = plan_task(kArn, td(R"({"containerDefinitions":[{"name":"web","image":"img","cpu":256,
      "memory":128,"memoryReservation":64,"command":["a"],"entryPoint":["sh"],"user":"nobody",
      "workingDirectory":"/srv","dockerLabels":{"x":"y","berth.task-arn":"forged"},
      "ulimits":[{"name":"nofile","softLimit":10,"hardLimit":20}],
      "portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"udp"}],
      "logConfiguration":{"logDriver":"none"},"stopTimeout":5}]})"),
                        td(R"({"containerOverrides":[{"name":"web","command":["b"]}]})"), {},
                        {{"berth.task-arn", kArn}});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  const auto& s = plan->containers.at(0).spec;
  EXPECT_EQ(s.name, "berth-abc-web");
  EXPECT_EQ(s.cpu_shares, 256);
  EXPECT_EQ(s.memory_bytes, 128 << 20);
  EXPECT_EQ(s.memory_reservation_bytes, 64 << 20);
  EXPECT_EQ(s.command, std::vector<std::string>{"b"});
  EXPECT_EQ(s.user, "nobody");
  EXPECT_EQ(s.working_dir, "/srv");
  EXPECT_EQ(s.labels.at("x"), "y");
  EXPECT_EQ(s.labels.at("berth.task-arn"), kArn);
  EXPECT_EQ(s.ports.at(0).host_port, 8080);
  EXPECT_EQ(s.ports.at(0).protocol, runtime::Protocol::udp);
  EXPECT_EQ(s.log.driver, "none");
  EXPECT_EQ(plan->containers.at(0).stop_timeout, std::chrono::seconds(5));
  EXPECT_EQ(s.ulimits.at(0).hard, 20);
}

TEST(TaskSpec, RefusesUnsafeSettings) {
  SafetyPolicy p;
  for (
      const char* bad : {
          R"({"pidMode":"host","containerDefinitions":[{"name":"a","image":"i"}]})",
          R"({"ipcMode":"host","containerDefinitions":[{"name":"a","image":"i"}]})",
          R"({"containerDefinitions":[{"name":"a","image":"i","linuxParameters":{"capabilities":{"add":["SYS_ADMIN"]}}}]})",
          R"({"containerDefinitions":[{"name":"a","image":"i","linuxParameters":{"devices":[{"hostPath":"/dev/sda"}]}}]})",
          R"({"containerDefinitions":[{"name":"a","image":"i","workingDirectory":"rel"}]})",
          R"({"containerDefinitions":[{"name":"a","image":"i","workingDirectory":"/a/../etc"}]})",
          R"({"volumes":[{"name":"v","host":{"sourcePath":"/etc"}}],"containerDefinitions":[{"name":"a","image":"i"}]})",
      }) {
    auto plan = plan_task(kArn, td(bad), {}, p, {});
    EXPECT_FALSE(plan.ok()) << bad;
  }
  p.allow_privileged = true;
  EXPECT_TRUE(
      plan_task(kArn,
                td(R"({"containerDefinitions":[{"name":"a","image":"i","privileged":true}]})"), {},
                p, {})
          .ok());
}

TEST(TaskSpec, HostPathsStayUnderAllowedRootsThroughSymlinks) {
  namespace fs = std::filesystem;
  fs::path root = fs::temp_directory_path() / ("task_spec_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "allowed" / "data");
  fs::create_directory_symlink("/etc", root / "allowed" / "escape");
  SafetyPolicy p{false, {(root / "allowed").string()}};
  EXPECT_TRUE(check_host_path((root / "allowed" / "data").string(), p).ok());
  EXPECT_FALSE(check_host_path((root / "allowed" / "escape").string(), p).ok());
  EXPECT_FALSE(check_host_path((root / "allowed" / ".." / "allowed" / "data").string(), p).ok());
  EXPECT_FALSE(check_host_path("/etc", p).ok());
  EXPECT_FALSE(check_host_path((root / "allowed" / "missing").string(), p).ok());
  fs::remove_all(root);
}

}  // namespace
}  // namespace berth::agent
