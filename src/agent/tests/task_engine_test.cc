// The task engine against FakeDriver: what the server would see in the reports, and what the
// engine did to containers, for the lifecycle, dependencies, health, stop, restart re-adoption
// and the engine's failure modes.

#include "agent/task_engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "runtime/fake/fake_driver.h"

namespace berth::agent {
namespace {

namespace json = boost::json;
using runtime::FakeDriver;
using namespace std::chrono_literals;

constexpr const char* kArn = "arn:aws:ecs:us-east-1:123456789012:task/c1/0123456789abcdef";
constexpr const char* kImage = "localhost/berth-busybox:latest";

json::object container(const std::string& name, json::object extra = {}) {
  json::object c{{"name", name}, {"image", kImage}, {"essential", true}};
  for (auto& [k, v] : extra) c[k] = v;
  return c;
}

json::object task(json::array containers, json::object td_extra = {}, const char* arn = kArn) {
  json::object td{{"family", "f"}, {"containerDefinitions", std::move(containers)}};
  for (auto& [k, v] : td_extra) td[k] = v;
  return json::object{{"taskArn", arn},
                      {"desiredStatus", "RUNNING"},
                      {"lastStatus", "PENDING"},
                      {"taskDefinition", std::move(td)}};
}

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("agent_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ckpt_ = std::make_unique<Checkpoint>((dir_ / "checkpoint.json").string());
    driver_.add_image(kImage);
    config_.cluster = "c1";
    config_.poll_interval = 50ms;
    make_engine();
  }
  void TearDown() override {
    engine_.reset();
    std::filesystem::remove_all(dir_);
  }
  void make_engine() {
    engine_ = std::make_unique<TaskEngine>(driver_, *ckpt_, config_, [this](const json::object& r) {
      std::lock_guard lock(mu_);
      reports_.push_back(r);
      cv_.notify_all();
    });
    ASSERT_TRUE(engine_->restore().ok());
    ASSERT_TRUE(
        engine_->set_instance_arn("arn:aws:ecs:us-east-1:123456789012:container-instance/c1/i1")
            .ok());
  }
  // Waits for a report of `status` and returns it (acknowledging STOPPED ones when asked).
  json::object await(const std::string& status, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu_);
    json::object found;
    bool ok = cv_.wait_for(lock, timeout, [&] {
      for (const auto& r : reports_) {
        if (r.at("status").as_string() == status) {
          found = r;
          return true;
        }
      }
      return false;
    });
    EXPECT_TRUE(ok) << "no " << status << " report; got " << reports_.size();
    return found;
  }
  json::object last_report() {
    std::lock_guard lock(mu_);
    return reports_.empty() ? json::object() : reports_.back();
  }
  template <class F>
  bool eventually(F f, std::chrono::milliseconds timeout = 5s) {
    for (auto until = std::chrono::steady_clock::now() + timeout;
         std::chrono::steady_clock::now() < until;) {
      if (f()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return f();
  }
  static const json::object& c0(const json::object& r, size_t i = 0) {
    return r.at("containers").as_array().at(i).as_object();
  }

  std::filesystem::path dir_;
  FakeDriver driver_;
  TaskConfig config_;
  std::unique_ptr<Checkpoint> ckpt_;
  std::unique_ptr<TaskEngine> engine_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<json::object> reports_;
};

TEST_F(EngineTest, RunsTaskWithDynamicPortAndOwnEnvironmentOnly) {
  ::setenv("BERTH_AGENT_SECRET", "leak", 1);
  json::object pm{{"containerPort", 80}, {"hostPort", 0}};
  auto t = task({container(
      "web", {{"portMappings", json::array{pm}},
              {"environment", json::array{json::object{{"name", "A"}, {"value", "1"}}}}})});
  auto taken = engine_->apply(json::array{t});
  ASSERT_EQ(taken.size(), 1u);
  auto r = await("RUNNING");
  const auto& c = c0(r);
  EXPECT_EQ(c.at("status").as_string(), "RUNNING");
  EXPECT_FALSE(c.at("runtimeId").as_string().empty());
  EXPECT_FALSE(c.at("imageDigest").as_string().empty());
  const auto& nb = c.at("networkBindings").as_array().at(0).as_object();
  EXPECT_EQ(nb.at("containerPort").as_int64(), 80);
  EXPECT_GE(nb.at("hostPort").as_int64(), 32768);
  auto spec = driver_.spec(std::string(c.at("runtimeId").as_string()));
  ASSERT_TRUE(spec);
  EXPECT_EQ(spec->labels.at("berth.task-arn"), kArn);
  EXPECT_EQ(spec->labels.at("berth.container-name"), "web");
  EXPECT_EQ(spec->labels.at("berth.cluster"), "c1");
  ASSERT_EQ(spec->env.size(), 1u);
  EXPECT_EQ(spec->env[0].first, "A");
  EXPECT_EQ(driver_.count(FakeDriver::Op::pull), 0u);  // present locally
}

TEST_F(EngineTest, PullFailureStopsTaskAsFailedToStart) {
  driver_.set_pull_error("missing:1", Error(runtime::Errc::pull_failed, "manifest unknown"));
  engine_->apply(json::array{task({json::object{{"name", "a"}, {"image", "missing:1"}}})});
  auto r = await("STOPPED");
  EXPECT_EQ(r.at("stopCode").as_string(), "TaskFailedToStart");
  EXPECT_NE(std::string(c0(r).at("reason").as_string()).find("CannotPullContainerError"),
            std::string::npos);
  EXPECT_TRUE(r.contains("pullStartedAt"));
}

TEST_F(EngineTest, EssentialExitStopsTaskAndAckRemovesContainers) {
  engine_->apply(json::array{task({container("main"), container("side", {{"essential", false}})})});
  auto running = await("RUNNING");
  std::string id(c0(running).at("runtimeId").as_string());
  ASSERT_TRUE(driver_.exit_now(id, 3).ok());
  auto r = await("STOPPED");
  EXPECT_EQ(r.at("stopCode").as_string(), "EssentialContainerExited");
  EXPECT_EQ(c0(r).at("exitCode").as_int64(), 3);
  EXPECT_EQ(c0(r, 1).at("exitCode").as_int64(), 143);  // the side container got SIGTERM
  EXPECT_TRUE(driver_.inspect(id).ok()) << "kept until the server has the report";
  engine_->stopped_acked(kArn);
  EXPECT_TRUE(eventually([&] { return !driver_.inspect(id).ok(); }));
  EXPECT_TRUE(eventually([&] {
    engine_->reap();
    return engine_->size() == 0;
  }));
}

TEST_F(EngineTest, DependsOnSuccessOrdersStartsAndReverseStop) {
  auto init = container("init", {{"essential", false}});
  auto app = container("app", {{"dependsOn", json::array{json::object{{"containerName", "init"},
                                                                      {"condition", "SUCCESS"}}}}});
  auto sidecar = container("log", {{"essential", false}});
  auto proxy = container(
      "proxy",
      {{"essential", false},
       {"dependsOn", json::array{json::object{{"containerName", "app"}, {"condition", "START"}}}}});
  engine_->apply(json::array{task({init, app, sidecar, proxy})});
  ASSERT_TRUE(
      eventually([&] { return driver_.inspect(container_engine_name(kArn, "init")).ok(); }));
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(driver_.inspect(container_engine_name(kArn, "app")).ok()) << "app waits for init";
  ASSERT_TRUE(driver_.exit_now(container_engine_name(kArn, "init"), 0).ok());
  auto r = await("RUNNING");
  EXPECT_EQ(c0(r, 1).at("status").as_string(), "RUNNING");
  driver_.clear_calls();
  engine_->apply(json::array{});  // the server no longer lists it: stop
  await("STOPPED");
  std::vector<std::string> stops;
  for (const auto& c : driver_.calls()) {
    if (c.op == FakeDriver::Op::stop) stops.push_back(c.target);
  }
  auto pos = [&](const std::string& name) {
    for (size_t i = 0; i < stops.size(); ++i) {
      if (driver_.inspect(stops[i])->name == container_engine_name(kArn, name)) return i;
    }
    return stops.size();
  };
  EXPECT_LT(pos("proxy"), pos("app")) << "dependents stop first";
}

TEST_F(EngineTest, FailedDependencyStopsTask) {
  auto init = container("init", {{"essential", false}});
  auto app = container("app", {{"dependsOn", json::array{json::object{{"containerName", "init"},
                                                                      {"condition", "SUCCESS"}}}}});
  engine_->apply(json::array{task({init, app})});
  ASSERT_TRUE(
      eventually([&] { return driver_.inspect(container_engine_name(kArn, "init")).ok(); }));
  ASSERT_TRUE(driver_.exit_now(container_engine_name(kArn, "init"), 1).ok());
  auto r = await("STOPPED");
  EXPECT_EQ(r.at("stopCode").as_string(), "TaskFailedToStart");
}

TEST_F(EngineTest, FailingHealthCheckMakesTaskUnhealthy) {
  json::object hc{{"command", json::array{"CMD-SHELL", "exit 1"}}, {"interval", 1}, {"retries", 1}};
  driver_.script(
      container_engine_name(kArn, "web"),
      {.exec_results = {runtime::ExecResult{1, "", false}, runtime::ExecResult{1, "", false}}});
  engine_->apply(json::array{task({container("web", {{"healthCheck", hc}})})});
  await("RUNNING");
  ASSERT_TRUE(
      eventually([&] { return last_report().at("healthStatus").as_string() == "UNHEALTHY"; }, 5s));
  EXPECT_EQ(c0(last_report()).at("healthStatus").as_string(), "UNHEALTHY");
}

TEST_F(EngineTest, HealthyDependencyGatesStart) {
  json::object hc{{"command", json::array{"CMD", "true"}}, {"interval", 1}};
  auto db = container("db", {{"healthCheck", hc}});
  auto app = container("app", {{"dependsOn", json::array{json::object{{"containerName", "db"},
                                                                      {"condition", "HEALTHY"}}}}});
  engine_->apply(json::array{task({db, app})});
  auto r = await("RUNNING");
  EXPECT_EQ(r.at("healthStatus").as_string(), "HEALTHY");
}

TEST_F(EngineTest, StopHonoursStopTimeout) {
  engine_->apply(json::array{task({container("web", {{"stopTimeout", 7}})})});
  await("RUNNING");
  auto t = task({container("web", {{"stopTimeout", 7}})});
  t["desiredStatus"] = "STOPPED";
  engine_->apply(json::array{t});
  auto r = await("STOPPED");
  EXPECT_FALSE(r.contains("stopCode")) << "the server keeps its own (UserInitiated)";
  bool found = false;
  for (const auto& c : driver_.calls())
    found |= c.op == FakeDriver::Op::stop && c.detail == "grace=7";
  EXPECT_TRUE(found);
}

TEST_F(EngineTest, RestartReadoptsWithoutRestarting) {
  engine_->apply(json::array{task({container("web")})});
  auto r = await("RUNNING");
  std::string id(c0(r).at("runtimeId").as_string());
  engine_.reset();  // as kill -9: nothing is stopped
  driver_.clear_calls();
  reports_.clear();
  make_engine();
  auto again = await("RUNNING");
  EXPECT_EQ(c0(again).at("runtimeId").as_string(), id);
  EXPECT_EQ(driver_.count(FakeDriver::Op::create), 0u);
  EXPECT_EQ(driver_.count(FakeDriver::Op::start), 0u);
  EXPECT_TRUE(driver_.inspect(id)->running);
  // The server stopped it meanwhile: its first desired state no longer lists the task.
  engine_->apply(json::array{});
  await("STOPPED");
  EXPECT_FALSE(driver_.inspect(id)->running);
}

TEST_F(EngineTest, ExitWhileAgentWasDownIsReported) {
  engine_->apply(json::array{task({container("web")})});
  auto r = await("RUNNING");
  std::string id(c0(r).at("runtimeId").as_string());
  engine_.reset();
  ASSERT_TRUE(driver_.exit_now(id, 9).ok());
  reports_.clear();
  make_engine();
  auto s = await("STOPPED");
  EXPECT_EQ(c0(s).at("exitCode").as_int64(), 9);
  EXPECT_EQ(s.at("stopCode").as_string(), "EssentialContainerExited");
}

TEST_F(EngineTest, CreateThatTimedOutButHappenedIsRemovedBeforeRetry) {
  driver_.fail_next(FakeDriver::Op::create, Error(runtime::Errc::timeout, "create: deadline"),
                    /*apply=*/true);
  engine_->apply(json::array{task({container("web")})});
  auto r = await("RUNNING");
  auto all = driver_.list({{"berth.task-arn=" + std::string(kArn)}, true});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ(all->at(0).id, c0(r).at("runtimeId").as_string());
}

TEST_F(EngineTest, OrphanContainersAreRemovedAfterFirstDesiredState) {
  runtime::ContainerSpec s;
  s.name = "berth-orphan";
  s.image = kImage;
  s.labels = {
      {"berth.task-arn", "arn:aws:ecs:us-east-1:123456789012:task/c1/gone"},
      {"berth.container-instance", "arn:aws:ecs:us-east-1:123456789012:container-instance/c1/i1"}};
  auto id = driver_.create(s);
  ASSERT_TRUE(id.ok());
  engine_->apply(json::array{});
  EXPECT_FALSE(driver_.inspect(*id).ok());
}

TEST_F(EngineTest, PrivilegedIsRefusedUnlessAllowed) {
  engine_->apply(json::array{task({container("root", {{"privileged", true}})})});
  auto r = await("STOPPED");
  EXPECT_EQ(r.at("stopCode").as_string(), "TaskFailedToStart");
  EXPECT_NE(std::string(r.at("reason").as_string()).find("privileged"), std::string::npos);
  EXPECT_EQ(driver_.count(FakeDriver::Op::create), 0u);
}

TEST_F(EngineTest, PullSendsTheCredentialsOfTheImagesRegistryOnly) {
  engine_.reset();
  config_.registry_auth["127.0.0.1:5000"] = {
      .username = "berth", .password = "pw", .server_address = "127.0.0.1:5000"};
  make_engine();
  engine_->apply(json::array{task({json::object{{"name", "a"}, {"image", "127.0.0.1:5000/app:1"}},
                                   json::object{{"name", "b"}, {"image", "busybox:1"}}})});
  await("RUNNING");
  std::map<std::string, std::string> pulls;
  for (const auto& c : driver_.calls()) {
    if (c.op == FakeDriver::Op::pull) pulls[c.target] = c.detail;
  }
  ASSERT_EQ(pulls.size(), 2u);
  EXPECT_EQ(pulls["127.0.0.1:5000/app:1"], "auth=berth");
  EXPECT_EQ(pulls["busybox:1"], "");  // docker.io: no credentials configured for it
}

}  // namespace
}  // namespace berth::agent
