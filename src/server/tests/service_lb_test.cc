// Services with loadBalancers on a manual clock: targets registered with the task's actual host
// port once RUNNING, deployments that wait for healthy targets, tasks drained (DEACTIVATING)
// before they stop, and tasks whose target fails its health checks replaced. The load balancer is
// an in-memory LoadBalancing; the ELBv2 side has its own tests.

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "server/ecs/ecs_service.h"
#include "server/ecs/service_controller.h"
#include "server/ecs/task_records.h"
#include "server/ecs/task_reports.h"
#include "server/tests/ecs_call.h"

namespace berth::server::ecs {
namespace {

constexpr const char* kTg =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef";

class FakeLoadBalancing final : public LoadBalancing {
 public:
  Result<std::optional<TargetGroupInfo>> target_group(std::string_view arn) override {
    if (arn != kTg) return std::optional<TargetGroupInfo>();
    return std::optional<TargetGroupInfo>(TargetGroupInfo{kTg, "instance", attached, 5});
  }
  Result<std::map<std::string, TargetState>> targets(std::string_view) override { return all; }
  std::string target_key(const TargetGroupInfo&, const TaskEndpoint& e) override {
    return e.ec2_instance_id + "!" + std::to_string(e.port);
  }
  Status register_task(const TargetGroupInfo& tg, const TaskEndpoint& e,
                       std::string_view task_arn) override {
    TargetState s;
    s.id = e.ec2_instance_id;
    s.port = e.port;
    s.owner = std::string(task_arn);
    s.health = "initial";
    all[target_key(tg, e)] = s;
    return {};
  }
  Status deregister(std::string_view, std::string_view key) override {
    if (auto it = all.find(std::string(key)); it != all.end()) it->second.draining = true;
    return {};
  }
  std::string targets_prefix() const override { return "elb/target/"; }
  Result<std::vector<OwnedTarget>> targets_owned_by(const std::set<std::string>& arns) override {
    std::vector<OwnedTarget> out;
    for (const auto& [k, s] : all) {
      if (arns.contains(s.owner)) out.push_back({kTg, k, s, 5});
    }
    return out;
  }
  // What the LB controller does: health from the proxy, drained targets removed.
  void set_all(const std::string& health) {
    for (auto& [k, s] : all) {
      if (!s.draining) s.health = health;
    }
  }
  void remove_drained() {
    std::erase_if(all, [](const auto& kv) { return kv.second.draining; });
  }
  int count(bool draining) const {
    int n = 0;
    for (const auto& [k, s] : all) n += s.draining == draining;
    return n;
  }

  bool attached = true;
  std::map<std::string, TargetState> all;
};

class ServiceLbTest : public ::testing::Test {
 protected:
  ServiceLbTest()
      : store_(store::open_memory_store()),
        clock_(std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000))),
        rng_(7),
        ecs_(*store_, clock_, rng_, {"us-east-1", "123456789012"}),
        controller_(ecs_.context(), ecs_.placer()) {
    ecs_.context().set_load_balancing(&lb_);
    ok("CreateCluster", R"({"clusterName":"c"})");
    ok("RegisterContainerInstance", R"({"cluster":"c","totalResources":[
      {"name":"CPU","type":"INTEGER","integerValue":4096},
      {"name":"MEMORY","type":"INTEGER","integerValue":4096}]})");
    for (const char* image : {"web:1", "web:2"}) {
      ok("RegisterTaskDefinition",
         std::string(R"({"family":"web","containerDefinitions":[{"name":"web","image":")") + image +
             R"(","memory":128,"portMappings":[{"containerPort":80,"hostPort":0}]}]})");
    }
  }

  std::pair<std::string, json::object> call(const std::string& action, const std::string& body) {
    return testing::call(ecs_, action, body);
  }
  json::object ok(const std::string& action, const std::string& body) {
    return testing::ok(ecs_, action, body);
  }
  std::string err_message(const std::string& action, const std::string& body) {
    auto [type, out] = call(action, body);
    EXPECT_EQ(type, "InvalidParameterException") << json::serialize(out);
    return out.contains("message") ? std::string(out.at("message").as_string()) : "";
  }
  std::vector<json::object> tasks() {
    std::vector<json::object> out;
    auto r = store_->range({"tasks/c/", "", 0});
    for (const auto& kv : r->kvs) out.push_back(json::parse(kv.value).as_object());
    return out;
  }
  // The simulated agent: RUNNING with a fresh dynamic host port, or STOPPED when told.
  void agent_step() {
    for (const auto& t : tasks()) {
      if (t.at("lastStatus") == "STOPPED") continue;
      std::string body;
      if (t.at("desiredStatus") == "STOPPED") {
        body = R"({"status":"STOPPED"})";
      } else if (t.at("lastStatus") != "RUNNING") {
        body = R"({"status":"RUNNING","containers":[{"containerName":"web","status":"RUNNING",
          "networkBindings":[{"bindIP":"0.0.0.0","containerPort":80,"hostPort":)" +
               std::to_string(next_port_++) + R"(,"protocol":"tcp"}]}]})";
      } else {
        continue;
      }
      json::object report = json::parse(body).as_object();
      report["task"] = t.at("taskArn");
      report["startedAt"] = epoch_seconds(clock_.now());
      ASSERT_TRUE(apply_task_report(ecs_.context(), "c", report).ok());
    }
  }
  void step() {
    ASSERT_TRUE(controller_.reconcile_once().ok());
    agent_step();
    clock_.advance(std::chrono::seconds(1));
  }
  json::object service() {
    auto out = ok("DescribeServices", R"({"cluster":"c","services":["web"]})");
    return out.at("services").at(0).as_object();
  }
  bool any_event(const std::string& needle) {
    json::object s = service();
    for (const auto& e : s.at("events").as_array()) {
      if (std::string(e.at("message").as_string()).find(needle) != std::string::npos) return true;
    }
    return false;
  }
  int live() {
    int n = 0;
    for (const auto& t : tasks()) n += t.at("lastStatus") != "STOPPED";
    return n;
  }
  void create(int desired) {
    ok("CreateService",
       R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":)" +
           std::to_string(desired) + R"(,"loadBalancers":[{"targetGroupArn":")" + kTg +
           R"(","containerName":"web","containerPort":80}]})");
  }

  std::unique_ptr<store::Store> store_;
  ManualClock clock_;
  SeededRandom rng_;
  EcsService ecs_;
  ServiceController controller_;
  FakeLoadBalancing lb_;
  int next_port_ = 32768;
};

TEST_F(ServiceLbTest, CreateServiceValidatesLoadBalancers) {
  auto lbs = [](const std::string& tg, const std::string& container, int port) {
    return R"({"cluster":"c","serviceName":"x","taskDefinition":"web:1","desiredCount":1,
      "loadBalancers":[{"targetGroupArn":")" +
           tg + R"(","containerName":")" + container + R"(","containerPort":)" +
           std::to_string(port) + "}]}";
  };
  EXPECT_NE(err_message("CreateService", lbs(kTg, "nope", 80)).find("does not exist"),
            std::string::npos);
  EXPECT_NE(err_message("CreateService", lbs(kTg, "web", 8080)).find("container port 8080"),
            std::string::npos);
  EXPECT_NE(
      err_message("CreateService", lbs(std::string(kTg) + "0", "web", 80)).find("target group"),
      std::string::npos);
  lb_.attached = false;
  EXPECT_NE(err_message("CreateService", lbs(kTg, "web", 80)).find("associated load balancer"),
            std::string::npos);
  lb_.attached = true;
  auto out = ok("CreateService", lbs(kTg, "web", 80));
  EXPECT_EQ(out.at("service").at("loadBalancers").at(0).at("containerPort"), 80);
  ecs_.context().set_load_balancing(nullptr);
  EXPECT_NE(err_message("CreateService", lbs(kTg, "web", 80)).find("ELBv2"), std::string::npos);
}

TEST_F(ServiceLbTest, RegistersHostPortsAndWaitsForHealthyTargets) {
  create(3);
  for (int i = 0; i < 4; ++i) step();
  ASSERT_EQ(lb_.count(false), 3);
  std::set<int64_t> ports;
  for (const auto& [k, s] : lb_.all) ports.insert(s.port);
  EXPECT_EQ(ports.size(), 3u);  // each task on its own dynamic host port
  EXPECT_GE(*ports.begin(), 32768);
  EXPECT_TRUE(any_event("registered 3 targets in (target-group " + std::string(kTg) + ")"));
  // Initial targets: the deployment is not complete, the service not steady.
  for (int i = 0; i < 3; ++i) step();
  EXPECT_EQ(service().at("deployments").at(0).at("rolloutState"), "IN_PROGRESS");
  EXPECT_FALSE(any_event("has reached a steady state."));
  lb_.set_all("healthy");
  for (int i = 0; i < 3; ++i) step();
  EXPECT_EQ(service().at("deployments").at(0).at("rolloutState"), "COMPLETED");
  EXPECT_TRUE(any_event("has reached a steady state."));
}

TEST_F(ServiceLbTest, RollingUpdateDrainsBeforeStopping) {
  create(2);
  for (int i = 0; i < 4; ++i) step();
  lb_.set_all("healthy");
  for (int i = 0; i < 3; ++i) step();
  ok("UpdateService", R"({"cluster":"c","service":"web","taskDefinition":"web:2"})");
  // New tasks start (max 200%) and register; old ones keep serving until new ones are healthy.
  for (int i = 0; i < 4; ++i) step();
  EXPECT_EQ(lb_.count(false), 4);
  EXPECT_EQ(lb_.count(true), 0);
  lb_.set_all("healthy");
  for (int i = 0; i < 3; ++i) step();
  // Old tasks deregistered and draining, still running (the agent was not told), shown as
  // DEACTIVATING.
  EXPECT_EQ(lb_.count(true), 2);
  EXPECT_TRUE(any_event("has begun draining connections on 2 tasks."));
  EXPECT_EQ(live(), 4);
  // ListTasks agrees with DescribeTasks: they are on their way out (desiredStatus STOPPED).
  auto listed = ok("ListTasks", R"({"cluster":"c","desiredStatus":"STOPPED"})");
  EXPECT_EQ(listed.at("taskArns").as_array().size(), 2u);
  auto described = ok("DescribeTasks",
                      R"({"cluster":"c","tasks":)" + json::serialize(listed.at("taskArns")) + "}");
  int deactivating = 0;
  for (const auto& t : described.at("tasks").as_array())
    deactivating += t.at("lastStatus") == "DEACTIVATING" && t.at("desiredStatus") == "STOPPED";
  EXPECT_EQ(deactivating, 2);
  for (const auto& t : tasks()) {
    if (t.at("lastStatus") != "STOPPED") {
      EXPECT_EQ(t.at("desiredStatus"), "RUNNING");
    }
  }
  // Once drained (the LB controller removes the targets), the tasks stop.
  lb_.remove_drained();
  for (int i = 0; i < 4; ++i) step();
  EXPECT_EQ(live(), 2);
  EXPECT_EQ(service().at("deployments").as_array().size(), 1u);
  EXPECT_EQ(service().at("deployments").at(0).at("rolloutState"), "COMPLETED");
}

TEST_F(ServiceLbTest, DrainTimesOutIfTargetsNeverLeave) {
  create(1);
  for (int i = 0; i < 4; ++i) step();
  lb_.set_all("healthy");
  ok("UpdateService", R"({"cluster":"c","service":"web","desiredCount":0})");
  for (int i = 0; i < 3; ++i) step();
  EXPECT_EQ(live(), 1);
  clock_.advance(std::chrono::seconds(40));  // delay 5 s + the controller's margin
  for (int i = 0; i < 3; ++i) step();
  EXPECT_EQ(live(), 0);
}

TEST_F(ServiceLbTest, UnhealthyTargetIsReplaced) {
  create(1);
  for (int i = 0; i < 4; ++i) step();
  lb_.set_all("unhealthy");
  for (const auto& [k, s] : lb_.all) lb_.all[k].reason = "Target.ResponseCodeMismatch";
  step();
  EXPECT_TRUE(any_event("is unhealthy in (target-group " + std::string(kTg) +
                        ") due to (reason Target.ResponseCodeMismatch)"));
  lb_.remove_drained();
  for (int i = 0; i < 4; ++i) step();
  int stopped = 0, running = 0;
  for (const auto& t : tasks()) {
    if (t.at("lastStatus") == "STOPPED") {
      ++stopped;
      EXPECT_NE(std::string(t.at("stoppedReason").as_string()).find("ELB health checks"),
                std::string::npos);
    } else {
      ++running;
    }
  }
  EXPECT_EQ(stopped, 1);
  EXPECT_EQ(running, 1);
  EXPECT_EQ(lb_.count(false), 1);  // the replacement registered
}

TEST_F(ServiceLbTest, TaskThatDiesIsDeregistered) {
  create(1);
  for (int i = 0; i < 4; ++i) step();
  ASSERT_EQ(lb_.count(false), 1);
  auto t = tasks().front();
  json::object report{
      {"task", t.at("taskArn")}, {"status", "STOPPED"}, {"stopCode", "EssentialContainerExited"}};
  ASSERT_TRUE(apply_task_report(ecs_.context(), "c", report).ok());
  step();
  EXPECT_EQ(lb_.count(true), 1);
}

TEST_F(ServiceLbTest, StopTaskDrainsFirst) {
  create(2);
  for (int i = 0; i < 4; ++i) step();
  lb_.set_all("healthy");
  auto t = tasks().front();
  std::string arn(t.at("taskArn").as_string());
  auto out = ok("StopTask", R"({"cluster":"c","task":")" + arn + "\"}");
  EXPECT_EQ(out.at("task").at("lastStatus"), "DEACTIVATING");
  EXPECT_EQ(out.at("task").at("stopCode"), "UserInitiated");
  EXPECT_EQ(lb_.count(true), 1);  // draining; the container still serves in-flight requests
  for (int i = 0; i < 3; ++i) step();
  auto still = ok("DescribeTasks", R"({"cluster":"c","tasks":[")" + arn + "\"]}");
  EXPECT_EQ(still.at("tasks").at(0).at("lastStatus"), "DEACTIVATING");
  lb_.remove_drained();
  for (int i = 0; i < 3; ++i) step();
  auto done = ok("DescribeTasks", R"({"cluster":"c","tasks":[")" + arn + "\"]}");
  EXPECT_EQ(done.at("tasks").at(0).at("lastStatus"), "STOPPED");
  EXPECT_EQ(done.at("tasks").at(0).at("stopCode"), "UserInitiated");
  EXPECT_EQ(live(), 2);  // replaced
}

TEST_F(ServiceLbTest, TaskStoppedWithoutDrainLeavesTheRotationAtOnce) {
  create(1);
  for (int i = 0; i < 4; ++i) step();
  lb_.set_all("healthy");
  auto t = tasks().front();
  ASSERT_TRUE(stop_task_record(ecs_.context(), "c",
                               std::string(t.at("taskArn").as_string())
                                   .substr(std::string(t.at("taskArn").as_string()).rfind('/') + 1),
                               "UserInitiated", "x")
                  .ok());
  ASSERT_TRUE(controller_.reconcile_once().ok());
  EXPECT_EQ(lb_.count(true), 1);  // deregistered while its container stops
}

TEST_F(ServiceLbTest, AReusedHostPortIsNotTheOldTasksHealth) {
  create(1);
  for (int i = 0; i < 4; ++i) step();
  lb_.set_all("healthy");
  // Another task's healthy record at the same key (an earlier task had the port) does not make
  // this task healthy.
  for (auto& [k, s] : lb_.all) s.owner = "arn:aws:ecs:us-east-1:123456789012:task/c/old";
  for (int i = 0; i < 2; ++i) step();
  EXPECT_EQ(lb_.count(false), 1);
  for (const auto& [k, s] : lb_.all)
    EXPECT_NE(s.owner, "arn:aws:ecs:us-east-1:123456789012:task/c/old");
  for (const auto& [k, s] : lb_.all)
    EXPECT_EQ(s.health, "initial");  // re-registered, checked again
}

}  // namespace
}  // namespace berth::server::ecs
