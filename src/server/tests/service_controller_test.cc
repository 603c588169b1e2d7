// Services on a manual clock with the memory store: the API's answers (checked against the
// model's output shapes) and the service controller's reconcile passes, with the agent simulated
// by applying task state reports as an agent would send them.

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "server/ecs/ecs_service.h"
#include "server/ecs/service_controller.h"
#include "server/ecs/task_reports.h"
#include "server/tests/ecs_call.h"

namespace berth::server::ecs {
namespace {

struct Counts {
  int64_t live = 0;     // not STOPPED (RUNNING + PENDING, stopping included)
  int64_t healthy = 0;  // RUNNING with desiredStatus RUNNING
};

class ServiceTest : public ::testing::Test {
 protected:
  ServiceTest()
      : store_(store::open_memory_store()),
        clock_(std::chrono::system_clock::time_point(std::chrono::seconds(1'700'000'000))),
        rng_(7),
        ecs_(*store_, clock_, rng_, {"us-east-1", "123456789012"}),
        controller_(ecs_.context(), ecs_.placer()) {
    ok("CreateCluster", R"({"clusterName":"c"})");
    for (int i = 0; i < 3; ++i) register_instance();
    ok("RegisterTaskDefinition",
       R"({"family":"web","containerDefinitions":[{"name":"web","image":"nginx","memory":128}]})");
    ok("RegisterTaskDefinition",
       R"({"family":"web","containerDefinitions":[{"name":"web","image":"nginx:2","memory":128}]})");
  }

  std::pair<std::string, json::object> call(const std::string& action, const std::string& body) {
    return testing::call(ecs_, action, body);
  }
  json::object ok(const std::string& action, const std::string& body) {
    return testing::ok(ecs_, action, body);
  }
  std::string err(const std::string& action, const std::string& body) {
    return testing::err(ecs_, action, body);
  }
  void register_instance() {
    ok("RegisterContainerInstance", R"({"cluster":"c","totalResources":[
      {"name":"CPU","type":"INTEGER","integerValue":2048},
      {"name":"MEMORY","type":"INTEGER","integerValue":1024}]})");
  }
  json::object service(const std::string& name = "web") {
    auto out = ok("DescribeServices",
                  R"({"cluster":"c","services":[")" + name + R"("],"include":["TAGS"]})");
    return out.at("services").at(0).as_object();
  }
  std::vector<json::object> tasks() {
    std::vector<json::object> out;
    auto r = store_->range({"tasks/c/", "", 0});
    for (const auto& kv : r->kvs) out.push_back(json::parse(kv.value).as_object());
    return out;
  }
  Counts counts() {
    Counts c;
    for (const auto& t : tasks()) {
      c.live += t.at("lastStatus") != "STOPPED";
      c.healthy += t.at("lastStatus") == "RUNNING" && t.at("desiredStatus") == "RUNNING";
    }
    return c;
  }
  void report(const json::object& t, const char* status, const char* extra = "") {
    std::string body = R"({"task":")" + std::string(t.at("taskArn").as_string()) +
                       R"(","status":")" + status + "\"" + extra + "}";
    auto r = apply_task_report(ecs_.context(), "c", json::parse(body).as_object());
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  // The simulated agent: one step of every task towards its desired status.
  void agent_step() {
    for (const auto& t : tasks()) {
      if (t.at("lastStatus") == "STOPPED") continue;
      if (t.at("desiredStatus") == "STOPPED")
        report(t, "STOPPED");
      else if (t.at("lastStatus") != "RUNNING")
        report(t, "RUNNING");
    }
  }
  // Reconcile and agent steps until nothing changes; checks the deployment limits after every
  // step when `max_live` / `min_healthy` are given.
  void settle(int64_t max_live = -1, int64_t min_healthy = -1, int steps = 40) {
    for (int i = 0; i < steps; ++i) {
      int64_t before = store_->revision();
      ASSERT_TRUE(controller_.reconcile_once().ok());
      check(max_live, min_healthy);
      agent_step();
      check(max_live, min_healthy);
      clock_.advance(std::chrono::seconds(1));
      if (store_->revision() == before) return;
    }
    FAIL() << "service did not settle";
  }
  void check(int64_t max_live, int64_t min_healthy) {
    Counts c = counts();
    if (max_live >= 0) {
      EXPECT_LE(c.live, max_live);
    }
    if (min_healthy >= 0) {
      EXPECT_GE(c.healthy, min_healthy);
    }
  }
  std::vector<std::string> messages() {
    std::vector<std::string> out;
    json::object s = service();
    for (const auto& e : s.at("events").as_array()) out.emplace_back(e.at("message").as_string());
    return out;
  }

  std::vector<std::string> instance_arns() {
    std::vector<std::string> out;
    auto r = store_->range({"instances/c/", "", 0});
    for (const auto& kv : r->kvs) {
      auto o = json::parse(kv.value).as_object();
      if (o.at("status") != "INACTIVE") out.emplace_back(o.at("containerInstanceArn").as_string());
    }
    return out;
  }
  // Live tasks of the service on the instance.
  int live_on(const std::string& arn, const std::string& group = "service:web") {
    int n = 0;
    for (const auto& t : tasks()) {
      n += t.at("containerInstanceArn").as_string() == arn && t.at("lastStatus") != "STOPPED" &&
           t.at("group").as_string() == group;
    }
    return n;
  }
  void drain(const std::string& arn) {
    ok("UpdateContainerInstancesState",
       R"({"cluster":"c","status":"DRAINING","containerInstances":[")" + arn + "\"]}");
  }

  std::unique_ptr<store::Store> store_;
  ManualClock clock_;
  SeededRandom rng_;
  EcsService ecs_;
  ServiceController controller_;
};

TEST_F(ServiceTest, CreateDescribeListAndIdempotency) {
  auto out = ok("CreateService",
                R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":2,
      "clientToken":"t1","tags":[{"key":"k","value":"v"}]})");
  const auto& s = out.at("service").as_object();
  EXPECT_EQ(s.at("status"), "ACTIVE");
  EXPECT_EQ(s.at("serviceArn"), "arn:aws:ecs:us-east-1:123456789012:service/c/web");
  EXPECT_EQ(s.at("deploymentConfiguration").at("maximumPercent"), 200);
  EXPECT_EQ(s.at("deploymentConfiguration").at("minimumHealthyPercent"), 100);
  const auto& d = s.at("deployments").at(0).as_object();
  EXPECT_EQ(d.at("status"), "PRIMARY");
  EXPECT_EQ(d.at("rolloutState"), "IN_PROGRESS");
  std::string id(d.at("id").as_string());
  EXPECT_EQ(id.size(), 8u + 19u);
  EXPECT_TRUE(id.starts_with("ecs-svc/"));
  EXPECT_FALSE(s.contains("tags"));
  // The same token and request: the same service; anything else: not idempotent.
  auto again = ok("CreateService",
                  R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":2,
      "clientToken":"t1","tags":[{"key":"k","value":"v"}]})");
  EXPECT_EQ(again.at("service").at("deployments").at(0).at("id").as_string(), id);
  EXPECT_EQ(
      err("CreateService",
          R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":3,"clientToken":"t1"})"),
      "InvalidParameterException");
  EXPECT_EQ(err("CreateService", R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1"})"),
            "InvalidParameterException");
  EXPECT_EQ(
      err("CreateService",
          R"({"cluster":"c","serviceName":"d","taskDefinition":"web:1","schedulingStrategy":"DAEMON","placementStrategy":[{"type":"random"}]})"),
      "InvalidParameterException");
  EXPECT_EQ(err("CreateService", R"({"cluster":"c","serviceName":"x","taskDefinition":"nope"})"),
            "ClientException");
  EXPECT_EQ(
      err("CreateService",
          R"({"cluster":"c","serviceName":"x","taskDefinition":"web","deploymentConfiguration":{"maximumPercent":90}})"),
      "InvalidParameterException");
  auto desc =
      ok("DescribeServices", R"({"cluster":"c","services":["web","nope"],"include":["TAGS"]})");
  EXPECT_EQ(desc.at("services").at(0).at("tags").at(0).at("key"), "k");
  EXPECT_EQ(desc.at("failures").at(0).at("reason"), "MISSING");
  ok("CreateService", R"({"cluster":"c","serviceName":"other","taskDefinition":"web"})");
  auto page = ok("ListServices", R"({"cluster":"c","maxResults":1})");
  EXPECT_EQ(page.at("serviceArns").as_array().size(), 1u);
  auto rest = ok("ListServices", R"({"cluster":"c","nextToken":")" +
                                     std::string(page.at("nextToken").as_string()) + "\"}");
  EXPECT_EQ(rest.at("serviceArns").as_array().size(), 1u);
  EXPECT_EQ(ok("ListServices", R"({"cluster":"c","schedulingStrategy":"DAEMON"})")
                .at("serviceArns")
                .as_array()
                .size(),
            0u);
  EXPECT_EQ(ok("DescribeClusters", R"({"clusters":["c"]})")
                .at("clusters")
                .at(0)
                .at("activeServicesCount"),
            2);
  EXPECT_EQ(err("UpdateService", R"({"cluster":"c","service":"nope","desiredCount":1})"),
            "ServiceNotFoundException");
}

TEST_F(ServiceTest, StartsReplacesAndScales) {
  ok("CreateService",
     R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":3})");
  settle();
  auto s = service();
  EXPECT_EQ(s.at("runningCount"), 3);
  EXPECT_EQ(s.at("pendingCount"), 0);
  EXPECT_EQ(s.at("deployments").at(0).at("rolloutState"), "COMPLETED");
  auto m = messages();
  ASSERT_GE(m.size(), 3u);
  EXPECT_EQ(m[0], "(service web) has reached a steady state.");
  EXPECT_TRUE(m[1].starts_with("(service web) (deployment ecs-svc/")) << m[1];
  EXPECT_TRUE(m[1].ends_with(") deployment completed.")) << m[1];
  EXPECT_TRUE(m.back().starts_with("(service web) has started 3 tasks: (task ")) << m.back();
  // Spread across instances by default.
  std::set<std::string> instances;
  for (const auto& t : tasks())
    instances.insert(std::string(t.at("containerInstanceArn").as_string()));
  EXPECT_EQ(instances.size(), 3u);

  // An essential container exits: the task is replaced.
  auto victim = tasks().front();
  report(victim, "STOPPED", R"(,"reason":"Essential container in task exited")");
  EXPECT_EQ(service().at("runningCount"), 3);  // the record catches up on the next pass
  settle();
  EXPECT_EQ(counts().healthy, 3);
  EXPECT_EQ(service().at("runningCount"), 3);

  // Scale out, then in: scale-in keeps the spread.
  ok("UpdateService", R"({"cluster":"c","service":"web","desiredCount":6})");
  settle();
  EXPECT_EQ(counts().healthy, 6);
  ok("UpdateService", R"({"cluster":"c","service":"web","desiredCount":3})");
  settle();
  EXPECT_EQ(counts().healthy, 3);
  std::map<std::string, int> per;
  for (const auto& t : tasks()) {
    if (t.at("lastStatus") == "RUNNING")
      ++per[std::string(t.at("containerInstanceArn").as_string())];
  }
  EXPECT_EQ(per.size(), 3u);
  EXPECT_TRUE(messages()[1].starts_with("(service web) has stopped 3 running tasks: (task "))
      << messages()[1];
  // Steady state is not repeated until six hours have passed.
  size_t n = messages().size();
  settle();
  EXPECT_EQ(messages().size(), n);
  clock_.advance(std::chrono::hours(6));
  settle();
  EXPECT_EQ(messages().size(), n + 1);
}

TEST_F(ServiceTest, RollingUpdateMax200Min100) {
  ok("CreateService",
     R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":4})");
  settle();
  ok("UpdateService", R"({"cluster":"c","service":"web","taskDefinition":"web:2"})");
  auto s = service();
  ASSERT_EQ(s.at("deployments").as_array().size(), 2u);
  EXPECT_EQ(s.at("deployments").at(1).at("status"), "ACTIVE");
  settle(/*max_live=*/8, /*min_healthy=*/4);
  s = service();
  ASSERT_EQ(s.at("deployments").as_array().size(), 1u);
  EXPECT_EQ(s.at("deployments").at(0).at("taskDefinition"),
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web:2");
  EXPECT_EQ(s.at("deployments").at(0).at("rolloutState"), "COMPLETED");
  EXPECT_EQ(s.at("runningCount"), 4);
  for (const auto& t : tasks()) {
    if (t.at("lastStatus") != "STOPPED") {
      EXPECT_TRUE(t.at("taskDefinitionArn").as_string().ends_with("web:2"));
    }
  }
}

TEST_F(ServiceTest, RollingUpdateMax100Min50) {
  ok("CreateService",
     R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":4,
      "deploymentConfiguration":{"maximumPercent":100,"minimumHealthyPercent":50}})");
  settle();
  ok("UpdateService", R"({"cluster":"c","service":"web","forceNewDeployment":true})");
  settle(/*max_live=*/4, /*min_healthy=*/2);
  auto s = service();
  ASSERT_EQ(s.at("deployments").as_array().size(), 1u);
  EXPECT_EQ(s.at("deployments").at(0).at("rolloutState"), "COMPLETED");
  EXPECT_EQ(counts().healthy, 4);
}

TEST_F(ServiceTest, GracePeriodHoldsTheRollout) {
  ok("CreateService",
     R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":2,
      "healthCheckGracePeriodSeconds":30})");
  settle();
  EXPECT_EQ(service().at("deployments").at(0).at("rolloutState"),
            "IN_PROGRESS");  // not yet healthy
  clock_.advance(std::chrono::seconds(31));
  settle();
  EXPECT_EQ(service().at("deployments").at(0).at("rolloutState"), "COMPLETED");
  ok("UpdateService", R"({"cluster":"c","service":"web","taskDefinition":"web:2"})");
  // New tasks run but are not healthy during the grace period: the old ones stay.
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(controller_.reconcile_once().ok());
    agent_step();
  }
  EXPECT_EQ(counts().healthy, 4);
  EXPECT_EQ(service().at("deployments").as_array().size(), 2u);
  clock_.advance(std::chrono::seconds(31));
  settle(4, 2);
  EXPECT_EQ(service().at("deployments").as_array().size(), 1u);
}

TEST_F(ServiceTest, CircuitBreakerRollsBack) {
  ok("CreateService",
     R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":2,
      "deploymentConfiguration":{"deploymentCircuitBreaker":{"enable":true,"rollback":true}}})");
  settle();
  std::string first(service().at("deployments").at(0).at("id").as_string());
  ok("UpdateService", R"({"cluster":"c","service":"web","taskDefinition":"web:2"})");
  // Every task of the new revision exits before it runs (a crash loop).
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(controller_.reconcile_once().ok());
    for (const auto& t : tasks()) {
      if (t.at("lastStatus") == "STOPPED") continue;
      if (t.at("taskDefinitionArn").as_string().ends_with("web:2"))
        report(t, "STOPPED", R"(,"reason":"Essential container in task exited")");
      else if (t.at("desiredStatus") == "STOPPED")
        report(t, "STOPPED");
    }
    check(-1, 2);
  }
  settle(-1, 2);
  auto s = service();
  ASSERT_EQ(s.at("deployments").as_array().size(), 1u);
  EXPECT_EQ(s.at("taskDefinition"), "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1");
  EXPECT_EQ(s.at("deployments").at(0).at("rolloutState"), "COMPLETED");
  bool failed = false, rolled = false;
  for (const auto& m : messages()) {
    failed |= m.ends_with("deployment failed: tasks failed to start.");
    rolled |= m == "(service web) rolling back to deployment " + first + ".";
  }
  EXPECT_TRUE(failed);
  EXPECT_TRUE(rolled);
}

TEST_F(ServiceTest, UnplaceableTaskEvent) {
  ok("RegisterTaskDefinition",
     R"({"family":"huge","containerDefinitions":[{"name":"a","image":"i","memory":4000}]})");
  ok("CreateService",
     R"({"cluster":"c","serviceName":"huge","taskDefinition":"huge","desiredCount":1})");
  ASSERT_TRUE(controller_.reconcile_once().ok());
  ASSERT_TRUE(controller_.reconcile_once().ok());
  auto out = ok("DescribeServices", R"({"cluster":"c","services":["huge"]})");
  const auto& ev = out.at("services").at(0).at("events").as_array();
  ASSERT_EQ(ev.size(), 1u);  // not repeated
  std::string m(ev.at(0).at("message").as_string());
  EXPECT_TRUE(m.starts_with(
      "(service huge) was unable to place a task because no container instance met all of its "
      "requirements. The closest matching (container-instance "))
      << m;
  EXPECT_TRUE(
      m.ends_with(") has insufficient memory available. For more information, see the "
                  "Troubleshooting section."))
      << m;
}

TEST_F(ServiceTest, DeleteDrainsThenInactive) {
  ok("CreateService",
     R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":2})");
  settle();
  EXPECT_EQ(err("DeleteService", R"({"cluster":"c","service":"web"})"),
            "InvalidParameterException");
  auto d = ok("DeleteService", R"({"cluster":"c","service":"web","force":true})");
  EXPECT_EQ(d.at("service").at("status"), "DRAINING");
  EXPECT_EQ(err("UpdateService", R"({"cluster":"c","service":"web","desiredCount":1})"),
            "ServiceNotActiveException");
  settle();
  EXPECT_EQ(service().at("status"), "INACTIVE");
  EXPECT_EQ(counts().live, 0);
  EXPECT_EQ(ok("ListServices", R"({"cluster":"c"})").at("serviceArns").as_array().size(), 0u);
  // The name can be used again.
  ok("CreateService",
     R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":0})");
}

TEST_F(ServiceTest, RestartMidDeploymentFinishesIt) {
  ok("CreateService",
     R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":3})");
  settle();
  ok("UpdateService", R"({"cluster":"c","service":"web","taskDefinition":"web:2"})");
  ASSERT_TRUE(controller_.reconcile_once().ok());
  agent_step();
  {
    // A new controller (as after a server restart) with nothing but the store.
    ServiceController fresh(ecs_.context(), ecs_.placer());
    for (int i = 0; i < 20; ++i) {
      ASSERT_TRUE(fresh.reconcile_once().ok());
      check(6, 3);
      agent_step();
      check(6, 3);
    }
  }
  auto s = service();
  ASSERT_EQ(s.at("deployments").as_array().size(), 1u);
  EXPECT_EQ(s.at("deployments").at(0).at("rolloutState"), "COMPLETED");
  EXPECT_EQ(counts().live, 3);
}

TEST_F(ServiceTest, DrainMovesRunningTasksWithinMinMax) {
  ok("CreateService",
     R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":2})");
  settle();
  std::string busy;
  for (const auto& arn : instance_arns()) {
    if (live_on(arn) > 0) busy = arn;
  }
  ASSERT_FALSE(busy.empty());
  // A standalone task on the same instance is left alone.
  ok("StartTask",
     R"({"cluster":"c","taskDefinition":"web:1","containerInstances":[")" + busy + "\"]}");
  agent_step();
  drain(busy);
  settle(/*max_live=*/2 * 2 + 1, /*min_healthy=*/2 + 1);
  EXPECT_EQ(live_on(busy), 0);
  EXPECT_EQ(live_on(busy, "family:web"), 1);
  EXPECT_EQ(service().at("runningCount"), 2);
  bool drained_reason = false;
  for (const auto& t : tasks()) {
    drained_reason |= t.at("lastStatus") == "STOPPED" &&
                      t.at("stoppedReason") == "Task stopped during instance draining";
  }
  EXPECT_TRUE(drained_reason);
  EXPECT_EQ(messages().front(), "(service web) has reached a steady state.");
}

TEST_F(ServiceTest, DrainWithMax100Min50StopsFirst) {
  ok("CreateService",
     R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":2,
      "placementStrategy":[{"type":"binpack","field":"memory"}],
      "deploymentConfiguration":{"maximumPercent":100,"minimumHealthyPercent":50}})");
  settle();
  std::string busy;
  for (const auto& arn : instance_arns()) {
    if (live_on(arn) == 2) busy = arn;
  }
  ASSERT_FALSE(busy.empty());
  drain(busy);
  settle(/*max_live=*/2, /*min_healthy=*/1);
  EXPECT_EQ(live_on(busy), 0);
  EXPECT_EQ(service().at("runningCount"), 2);
}

TEST_F(ServiceTest, DrainStopsPendingTasksAtOnce) {
  ok("CreateService",
     R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":1})");
  ASSERT_TRUE(controller_.reconcile_once().ok());
  ASSERT_EQ(tasks().size(), 1u);
  std::string arn(tasks().front().at("containerInstanceArn").as_string());
  drain(arn);
  ASSERT_TRUE(controller_.reconcile_once().ok());
  int stopped = 0, live_elsewhere = 0;
  for (const auto& t : tasks()) {
    stopped += t.at("lastStatus") == "STOPPED";
    live_elsewhere +=
        t.at("lastStatus") != "STOPPED" && t.at("containerInstanceArn").as_string() != arn;
  }
  EXPECT_EQ(stopped, 1);
  EXPECT_EQ(live_elsewhere, 1);
}

TEST_F(ServiceTest, LostAgentTasksAreReplacedAfterTheGracePeriod) {
  ok("CreateService",
     R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","desiredCount":2})");
  settle();
  std::string busy;
  for (const auto& arn : instance_arns()) {
    if (live_on(arn) > 0) busy = arn;
  }
  // What AgentSessions writes when the agent's channel goes away.
  std::string key = "instances/c/" + busy.substr(busy.rfind('/') + 1);
  auto rec = json::parse((*store_->get(key))->value).as_object();
  rec["agentConnected"] = false;
  rec["_berth"] = json::object{{"channel", true}, {"disconnectedAt", ecs_.context().now()}};
  store::Txn txn;
  txn.ops.push_back(store::Op::put(key, json::serialize(rec)));
  ASSERT_TRUE(store_->commit(txn).ok());
  clock_.advance(std::chrono::seconds(299));
  ASSERT_TRUE(controller_.reconcile_once().ok());
  EXPECT_EQ(tasks().size(), 2u);  // still within the grace period
  clock_.advance(std::chrono::seconds(2));
  settle();
  EXPECT_EQ(live_on(busy), 0);
  EXPECT_EQ(service().at("runningCount"), 2);
  int lost = 0;
  for (const auto& t : tasks()) {
    lost += t.at("containerInstanceArn").as_string() == busy && t.at("lastStatus") == "STOPPED" &&
            t.at("stoppedReason") == "Task stopped because its container instance lost its agent";
  }
  EXPECT_EQ(lost, 1);
}

TEST_F(ServiceTest, DaemonFollowsInstances) {
  auto out = ok(
      "CreateService",
      R"({"cluster":"c","serviceName":"web","taskDefinition":"web:1","schedulingStrategy":"DAEMON"})");
  EXPECT_EQ(out.at("service").at("deploymentConfiguration").at("maximumPercent"), 100);
  EXPECT_EQ(out.at("service").at("deploymentConfiguration").at("minimumHealthyPercent"), 0);
  EXPECT_EQ(err("UpdateService", R"({"cluster":"c","service":"web","desiredCount":5})"),
            "InvalidParameterException");
  settle();
  for (const auto& arn : instance_arns()) EXPECT_EQ(live_on(arn), 1) << arn;
  EXPECT_EQ(service().at("desiredCount"), 3);
  EXPECT_EQ(service().at("runningCount"), 3);
  register_instance();
  settle();
  for (const auto& arn : instance_arns()) EXPECT_EQ(live_on(arn), 1) << arn;
  EXPECT_EQ(service().at("desiredCount"), 4);
  auto arns = instance_arns();
  drain(arns[0]);
  settle();
  EXPECT_EQ(live_on(arns[0]), 0);
  EXPECT_EQ(service().at("desiredCount"), 3);
  ok("DeregisterContainerInstance",
     R"({"cluster":"c","containerInstance":")" + arns[1] + R"(","force":true})");
  settle();
  EXPECT_EQ(live_on(arns[1]), 0);
  EXPECT_EQ(service().at("desiredCount"), 2);
  EXPECT_EQ(service().at("runningCount"), 2);
  // A rolling update replaces per instance (maximumPercent 100: stop, then start).
  ok("UpdateService", R"({"cluster":"c","service":"web","taskDefinition":"web:2"})");
  settle(/*max_live=*/2, /*min_healthy=*/0);
  auto s = service();
  EXPECT_EQ(s.at("deployments").as_array().size(), 1u);
  EXPECT_EQ(s.at("deployments").at(0).at("rolloutState"), "COMPLETED");
  for (const auto& t : tasks()) {
    if (t.at("lastStatus") != "STOPPED") {
      EXPECT_TRUE(t.at("taskDefinitionArn").as_string().ends_with("web:2"));
    }
  }
  EXPECT_EQ(messages().front(), "(service web) has reached a steady state.");
  ok("DeleteService", R"({"cluster":"c","service":"web"})");
  settle();
  EXPECT_EQ(service().at("status"), "INACTIVE");
}

}  // namespace
TEST_F(ServiceTest, ScaleInFollowsBinpack) {
  // Instance A keeps 384 MiB free next to a standalone task; binpack(memory) fills it first.
  std::string a = instance_arns().at(0);
  ok("RegisterTaskDefinition",
     R"({"family":"big","containerDefinitions":[{"name":"b","image":"i","memory":640}]})");
  ok("StartTask", R"({"cluster":"c","taskDefinition":"big","containerInstances":[")" + a + "\"]}");
  ok("CreateService",
     R"({"cluster":"c","serviceName":"packed","taskDefinition":"web:1","desiredCount":4,
      "placementStrategy":[{"type":"binpack","field":"memory"}]})");
  settle();
  auto on = [&](const std::string& instance) {
    int n = 0;
    for (const auto& t : tasks()) {
      n += t.at("group") == "service:packed" && t.at("lastStatus") != "STOPPED" &&
           t.at("containerInstanceArn").as_string() == instance;
    }
    return n;
  };
  ASSERT_EQ(on(a), 3);
  // Scaling in stops from the instance with the most memory left (not the one with most tasks),
  // so the service stays packed.
  ok("UpdateService", R"({"cluster":"c","service":"packed","desiredCount":3})");
  settle();
  EXPECT_EQ(on(a), 3);
  EXPECT_EQ(service("packed").at("runningCount"), 3);
}

}  // namespace berth::server::ecs
