// The agent push channel, with an in-memory WebSocket: desired state on connect and on change,
// acknowledgements, state reports, and agentConnected following the session.

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <thread>

#include "server/ecs/agent_sessions.h"
#include "server/ecs/ecs_service.h"

namespace berth::server::ecs {
namespace {

class FakeSocket final : public api::WebSocket {
 public:
  void send(std::string text) override {
    std::lock_guard lock(mu_);
    sent_.push_back(std::move(text));
    cv_.notify_all();
  }
  void close(std::string_view) override { closed_ = true; }
  const std::string& remote() const override { return remote_; }

  // Waits for a message of `type` after the first `from` messages; returns it parsed.
  json::object wait_for(const std::string& type, size_t& from) {
    std::unique_lock lock(mu_);
    json::object found;
    cv_.wait_for(lock, std::chrono::seconds(5), [&] {
      for (; from < sent_.size(); ++from) {
        json::object m = json::parse(sent_[from]).as_object();
        if (m.at("type").as_string() == type) {
          found = std::move(m);
          ++from;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  bool closed_ = false;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> sent_;
  std::string remote_ = "test";
};

class AgentSessionsTest : public ::testing::Test {
 protected:
  AgentSessionsTest()
      : store_(store::open_memory_store()),
        rng_(3),
        ecs_(*store_, clock_, rng_, {"us-east-1", "123456789012"}),
        sessions_(ecs_.context(), nullptr) {}

  json::object call(const std::string& action, const std::string& body) {
    api::HttpRequest req;
    req.body = body;
    api::RequestContext ctx;
    auto r = ecs_.json().handle(action, ctx, req);
    EXPECT_EQ(r.status, 200) << action << ": " << r.body;
    return json::parse(r.body).as_object();
  }
  bool agent_connected(const std::string& arn) {
    return call("DescribeContainerInstances",
                R"({"cluster":"c","containerInstances":[")" + arn + "\"]}")
        .at("containerInstances")
        .at(0)
        .at("agentConnected")
        .as_bool();
  }
  template <class F>
  bool eventually(F f) {
    for (int i = 0; i < 500; ++i) {
      if (f()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  std::unique_ptr<store::Store> store_;
  ManualClock clock_;
  SeededRandom rng_;
  EcsService ecs_;
  AgentSessions sessions_;
};

TEST_F(AgentSessionsTest, PushesDesiredStateAndTakesReports) {
  call("CreateCluster", R"({"clusterName":"c"})");
  std::string arn(call("RegisterContainerInstance", R"({"cluster":"c","totalResources":[
      {"name":"CPU","type":"INTEGER","integerValue":1024},{"name":"MEMORY","type":"INTEGER","integerValue":1024}]})")
                      .at("containerInstance")
                      .at("containerInstanceArn")
                      .as_string());
  call("RegisterTaskDefinition",
       R"({"family":"f","containerDefinitions":[{"name":"a","image":"i","memory":64}]})");
  std::string task(call("RunTask", R"({"cluster":"c","taskDefinition":"f"})")
                       .at("tasks")
                       .at(0)
                       .at("taskArn")
                       .as_string());

  // Unknown instance: refused with an HTTP error.
  api::HttpRequest bad;
  bad.target = "/agent/v1/connect?cluster=c&containerInstance=ffff";
  auto refused = sessions_.accept(bad, std::make_shared<FakeSocket>());
  ASSERT_TRUE(std::holds_alternative<api::HttpResponse>(refused));
  EXPECT_EQ(std::get<api::HttpResponse>(refused).status, 400);

  auto socket = std::make_shared<FakeSocket>();
  api::HttpRequest up;
  up.target = "/agent/v1/connect?cluster=c&containerInstance=" + arn;
  auto outcome = sessions_.accept(up, socket);
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<api::WebSocketListener>>(outcome));
  auto listener = std::move(std::get<std::unique_ptr<api::WebSocketListener>>(outcome));
  size_t at = 0;
  json::object first = socket->wait_for("tasks", at);
  ASSERT_EQ(first.at("tasks").as_array().size(), 1u);
  EXPECT_EQ(first.at("tasks").at(0).at("taskArn").as_string(), task);
  EXPECT_EQ(first.at("tasks").at(0).at("taskDefinition").at("family"), "f");

  // A state report over the channel moves the task on and is acknowledged.
  listener->on_message(
      R"({"type":"task_state","seq":7,"report":{"task":")" + task +
      R"(","status":"RUNNING","containers":[{"containerName":"a","status":"RUNNING","runtimeId":"r1"}]}})");
  json::object ack = socket->wait_for("state_ack", at);
  EXPECT_EQ(ack.at("seq"), 7);
  EXPECT_EQ(ack.at("ok"), true);
  // ... and the change is pushed back as the new desired state.
  json::object next = socket->wait_for("tasks", at);
  EXPECT_EQ(next.at("tasks").at(0).at("lastStatus"), "RUNNING");

  call("StopTask", R"({"cluster":"c","task":")" + task + "\"}");
  json::object stopping = socket->wait_for("tasks", at);
  EXPECT_EQ(stopping.at("tasks").at(0).at("desiredStatus"), "STOPPED");
  // The agent took the task, so it is not stopped behind its back: still RUNNING until reported.
  EXPECT_EQ(call("DescribeTasks", R"({"cluster":"c","tasks":[")" + task + "\"]}")
                .at("tasks")
                .at(0)
                .at("lastStatus"),
            "RUNNING");

  EXPECT_TRUE(agent_connected(arn));
  listener->on_close();
  EXPECT_TRUE(eventually([&] { return !agent_connected(arn); }));
  EXPECT_EQ(sessions_.size(), 0u);

  // A restarted server shows the instance disconnected until its agent comes back; the internal
  // bookkeeping never shows in the API.
  listener.reset();
  auto again = std::make_shared<FakeSocket>();
  auto back = sessions_.accept(up, again);
  ASSERT_TRUE(std::holds_alternative<std::unique_ptr<api::WebSocketListener>>(back));
  EXPECT_TRUE(eventually([&] { return agent_connected(arn); }));
  AgentSessions restarted(ecs_.context(), nullptr);
  EXPECT_TRUE(eventually([&] { return !agent_connected(arn); }));
  auto described = call("DescribeContainerInstances",
                        R"({"cluster":"c","containerInstances":[")" + arn + "\"]}");
  EXPECT_FALSE(described.at("containerInstances").at(0).as_object().contains("_berth"));
}

}  // namespace
}  // namespace berth::server::ecs
