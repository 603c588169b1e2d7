// SimAgent on a ManualClock: the same seed gives the same messages, start latency and failure
// rate behave as configured, stops are honoured, and reports are re-sent until acknowledged.

#include "agent/sim/sim_agent.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace berth::agent::sim {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

json::object task(int i, const std::string& desired = "RUNNING") {
  json::object td = json::parse(R"({"family":"web","containerDefinitions":[
      {"name":"web","essential":true,"portMappings":[{"containerPort":80,"hostPort":0}],
       "healthCheck":{"command":["CMD","true"]}},
      {"name":"sidecar","essential":false}]})")
                        .as_object();
  return json::object{
      {"taskArn", "arn:aws:ecs:us-east-1:123456789012:task/c/t" + std::to_string(i)},
      {"desiredStatus", desired},
      {"lastStatus", "PENDING"},
      {"taskDefinition", td}};
}

std::string tasks_message(uint64_t seq, const json::array& tasks) {
  return json::serialize(json::object{{"type", "tasks"}, {"seq", seq}, {"tasks", tasks}});
}

struct Trace {
  std::vector<std::string> sent;
  std::vector<std::pair<int64_t, json::object>> reports;  // (ms since start, message)
};

// Ten tasks arrive, time moves 1 ms at a time for 2 s, then task 0 is asked to stop.
Trace drive(uint64_t seed, double failure_rate) {
  ManualClock clock(std::chrono::system_clock::time_point(1'700'000'000s));
  auto t0 = clock.now();
  SimOptions o;
  o.seed = seed;
  o.failure_rate = failure_rate;
  o.heartbeat = 500ms;
  SimAgent a(o, 7, clock);
  Trace run;
  auto take = [&](std::vector<std::string> msgs) {
    for (auto& m : msgs) {
      json::object v = json::parse(m).as_object();
      if (v.at("type") == "task_state") {
        run.reports.emplace_back((clock.now() - t0) / 1ms, v);
      }
      run.sent.push_back(std::move(m));
    }
  };
  take(a.on_connected());
  json::array tasks;
  for (int i = 0; i < 10; ++i) tasks.push_back(task(i));
  take(a.handle(tasks_message(1, tasks)));
  for (int ms = 0; ms < 2000; ++ms) {
    clock.advance(1ms);
    take(a.tick());
  }
  tasks[0] = task(0, "STOPPED");
  take(a.handle(tasks_message(2, tasks)));
  return run;
}

TEST(SimAgentTest, SameSeedSameMessages) {
  Trace a = drive(42, 0.3), b = drive(42, 0.3);
  ASSERT_EQ(a.sent, b.sent);
  EXPECT_GE(a.reports.size(), 10u);
  Trace c = drive(43, 0.3);
  EXPECT_NE(a.sent, c.sent);
}

TEST(SimAgentTest, StartsWithinLatencyWindowAndFailsAtTheConfiguredRate) {
  Trace r = drive(1, 0.0);
  // An ack first, then one RUNNING report per task within [100, 300] ms, heartbeats, the stop.
  ASSERT_EQ(json::parse(r.sent.front()).at("type"), "ack");
  int running = 0;
  for (const auto& [ms, msg] : r.reports) {
    const auto& rep = msg.at("report").as_object();
    if (rep.at("status") == "RUNNING") {
      ++running;
      EXPECT_GE(ms, 100);
      EXPECT_LE(ms, 300);
      EXPECT_EQ(rep.at("healthStatus"), "HEALTHY");
      const auto& web = rep.at("containers").as_array()[0].as_object();
      EXPECT_EQ(web.at("runtimeId").as_string().size(), 32u);
      EXPECT_GE(web.at("networkBindings").as_array()[0].at("hostPort").as_int64(), 32768);
    }
  }
  EXPECT_EQ(running, 10);
  const auto& last = r.reports.back().second.at("report").as_object();
  EXPECT_EQ(last.at("status"), "STOPPED");
  EXPECT_FALSE(last.contains("stopCode"));  // the server keeps its own stop reason

  Trace f = drive(1, 1.0);
  for (const auto& [ms, msg] : f.reports) {
    const auto& rep = msg.at("report").as_object();
    EXPECT_EQ(rep.at("status"), "STOPPED");
    EXPECT_EQ(rep.at("stopCode"), "EssentialContainerExited");
    EXPECT_EQ(rep.at("containers").as_array()[0].at("exitCode"), 1);
  }
  EXPECT_EQ(f.reports.size(), 10u);  // task 0 had already stopped: no second report
}

TEST(SimAgentTest, ReportsAreResentUntilAcknowledged) {
  ManualClock clock;
  SimOptions o;
  SimAgent a(o, 0, clock);
  (void)a.handle(tasks_message(1, json::array{task(1), task(2)}));
  clock.advance(1s);
  auto sent = a.tick();
  ASSERT_EQ(sent.size(), 2u);
  auto seq = json::parse(sent[0]).at("seq");
  (void)a.handle(json::serialize(json::object{{"type", "state_ack"}, {"seq", seq}, {"ok", true}}));
  EXPECT_EQ(a.pending_reports(), 1u);
  auto again = a.on_connected();  // a reconnect re-sends the unacknowledged one
  ASSERT_EQ(again.size(), 1u);
  EXPECT_NE(json::parse(again[0]).at("seq"), seq);
  EXPECT_EQ(a.running(), 2u);
}

TEST(SimAgentTest, RegistrationSpreadsAvailabilityZones) {
  ManualClock clock;
  SimOptions o;
  o.az_count = 3;
  std::set<std::string> azs, ids;
  for (size_t i = 0; i < 6; ++i) {
    SimAgent a(o, i, clock);
    azs.insert(a.availability_zone());
    ids.insert(a.instance_id());
    auto body = a.registration("c");
    EXPECT_EQ(body.at("totalResources").as_array()[0].at("integerValue"), 4096);
  }
  EXPECT_EQ(azs, (std::set<std::string>{"us-east-1a", "us-east-1b", "us-east-1c"}));
  EXPECT_EQ(ids.size(), 6u);
}

}  // namespace
}  // namespace berth::agent::sim
