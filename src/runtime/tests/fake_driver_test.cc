// FakeDriver behaves like an engine as far as the agent can see, and its scripting works.
#include <gtest/gtest.h>

#include <mutex>

#include "runtime/fake/fake_driver.h"

namespace berth::runtime {
namespace {
using namespace std::chrono_literals;
using Op = FakeDriver::Op;

ContainerSpec web(std::string name = "web") {
  ContainerSpec s;
  s.name = std::move(name);
  s.image = "nginx:1.25";
  s.labels = {{"task", "t1"}};
  s.ports = {{80, Protocol::tcp, 0, ""}, {443, Protocol::tcp, 8443, ""}};
  s.memory_bytes = 64 << 20;
  return s;
}

// Collects events delivered on the subscription thread.
struct Recorder {
  std::mutex mu;
  std::vector<Event> events;
  std::vector<Error> ends;
  EventHandlers handlers() {
    return {[this](const Event& e) {
              std::lock_guard l(mu);
              events.push_back(e);
            },
            [this](const Error& e) {
              std::lock_guard l(mu);
              ends.push_back(e);
            }};
  }
  std::vector<std::string> actions() {
    std::lock_guard l(mu);
    std::vector<std::string> out;
    for (const auto& e : events) out.push_back(e.action);
    return out;
  }
};

TEST(FakeDriver, ErrorsAreRegisteredAndClassified) {
  Error e(Errc::not_found, "x");
  EXPECT_STREQ(e.code.category().name(), "runtime");
  EXPECT_EQ(e.code.message(), "not found");
  EXPECT_FALSE(retriable(e));
  EXPECT_FALSE(retriable({Errc::pull_failed, ""}));
  EXPECT_FALSE(retriable({Errc::conflict, ""}));
  EXPECT_TRUE(retriable({Errc::unavailable, ""}));
  EXPECT_TRUE(retriable({Errc::timeout, ""}));
  EXPECT_TRUE(retriable({Errc::engine, ""}));
  EXPECT_FALSE(retriable({std::make_error_code(std::errc::io_error), ""}));
}

TEST(FakeDriver, DefaultUlimitsAreAlwaysPresentUnlessOverridden) {
  ContainerSpec s;
  auto u = effective_ulimits(s);
  ASSERT_EQ(u.size(), 2u);
  s.ulimits = {{"nofile", 65536, 65536}, {"core", 0, 0}};
  u = effective_ulimits(s);
  ASSERT_EQ(u.size(), 3u);
  EXPECT_EQ(u[0].name, "nproc");
  EXPECT_EQ(u[1].soft, 65536);
}

TEST(FakeDriver, LifecycleWithDynamicPortsAndStatuses) {
  FakeDriver d;
  EXPECT_EQ(d.create(web()).error().code, Errc::not_found);  // image not pulled yet
  auto img = d.pull("nginx:1.25", std::nullopt);
  ASSERT_TRUE(img.ok());
  EXPECT_TRUE(*d.image_present("nginx:1.25"));
  auto id = d.create(web());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(d.create(web()).error().code, Errc::conflict);

  auto s = d.inspect("web");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->id, *id);
  EXPECT_EQ(s->status, ContainerStatus::created);
  EXPECT_EQ(s->image_id, img->id);
  ASSERT_EQ(s->ports.size(), 2u);
  EXPECT_EQ(s->ports[0].host_port, 32768);  // deterministic dynamic port
  EXPECT_EQ(s->ports[1].host_port, 8443);
  EXPECT_EQ(d.spec("web")->ulimits.size(), 2u);  // defaults recorded as sent

  ASSERT_TRUE(d.start(*id).ok());
  EXPECT_TRUE(d.start(*id).ok());  // already running: success, like HTTP 304
  EXPECT_TRUE(d.inspect(*id)->running);
  EXPECT_EQ(d.remove(*id, false).error().code, Errc::conflict);
  ASSERT_TRUE(d.stop(*id, 30s).ok());
  s = d.inspect(*id);
  EXPECT_EQ(s->status, ContainerStatus::exited);
  EXPECT_EQ(s->exit_code, 143);
  EXPECT_TRUE(s->finished_at);
  ASSERT_TRUE(d.remove(*id, false).ok());
  EXPECT_EQ(d.inspect(*id).error().code, Errc::not_found);
  EXPECT_EQ(d.remove(*id, false).error().code, Errc::not_found);

  auto calls = d.calls();
  auto stop = std::find_if(calls.begin(), calls.end(), [](auto& c) { return c.op == Op::stop; });
  ASSERT_NE(stop, calls.end());
  EXPECT_EQ(stop->detail, "grace=30");
}

TEST(FakeDriver, ScriptedExitsFireOnFakeTimeInOrder) {
  FakeDriver d;
  d.add_image("nginx:1.25");
  d.script("a", {.exit_after = 500ms, .exit_code = 3});
  d.script("b", {.exit_after = 200ms, .exit_code = 0});
  Recorder rec;
  auto sub = d.events({.actions = {"die"}}, rec.handlers());
  ASSERT_TRUE(sub.ok());
  auto a = d.create(web("a"));
  auto b = d.create(web("b"));
  ASSERT_TRUE(d.start(*a).ok());
  ASSERT_TRUE(d.start(*b).ok());
  d.advance(199ms);
  EXPECT_TRUE(d.inspect("b")->running);
  d.advance(400ms);
  EXPECT_EQ(d.inspect("a")->exit_code, 3);
  EXPECT_FALSE(d.inspect("b")->running);
  d.flush_events();
  ASSERT_EQ(rec.events.size(), 2u);
  EXPECT_EQ(rec.events[0].name, "b");
  EXPECT_EQ(rec.events[1].name, "a");
  EXPECT_EQ(rec.events[1].exit_code, 3);
  EXPECT_EQ(rec.events[1].labels.at("task"), "t1");
  EXPECT_EQ(rec.events[1].time - rec.events[0].time, 300ms);
}

TEST(FakeDriver, StopHonoursSigtermBehaviourAndKillSignals) {
  FakeDriver d;
  d.add_image("nginx:1.25");
  d.script("stubborn", {.ignores_sigterm = true});
  auto id = d.create(web("stubborn"));
  ASSERT_TRUE(d.start(*id).ok());
  ASSERT_TRUE(d.kill(*id, "SIGTERM").ok());
  EXPECT_TRUE(d.inspect(*id)->running);  // ignored
  ASSERT_TRUE(d.stop(*id, 2s).ok());
  EXPECT_EQ(d.inspect(*id)->exit_code, 137);
  EXPECT_EQ(d.kill(*id, "KILL").error().code, Errc::conflict);

  auto other = d.create(web("other"));
  ASSERT_TRUE(d.start(*other).ok());
  ASSERT_TRUE(d.exit_now("other", 1, /*oom_killed=*/true).ok());
  EXPECT_TRUE(d.inspect("other")->oom_killed);
}

TEST(FakeDriver, CreateCanFailAfterTakingEffect) {
  FakeDriver d;
  d.add_image("nginx:1.25");
  d.fail_next(Op::create, {Errc::timeout, "create web: timed out"}, /*apply=*/true);
  auto r = d.create(web());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(retriable(r.error()));
  EXPECT_TRUE(d.inspect("web").ok());  // the agent finds it by name and adopts it
  EXPECT_EQ(d.create(web()).error().code, Errc::conflict);

  d.fail_next(Op::start, {Errc::engine, "boom"});
  auto id = d.inspect("web")->id;
  EXPECT_EQ(d.start(id).error().code, Errc::engine);
  EXPECT_FALSE(d.inspect("web")->running);  // without apply, nothing happened
  EXPECT_TRUE(d.start(id).ok());
  EXPECT_EQ(d.count(Op::start), 2u);
}

TEST(FakeDriver, PullFailuresAndStartFailures) {
  FakeDriver d;
  d.set_pull_error("private/app:1", Error(Errc::pull_failed, "denied"));
  EXPECT_EQ(d.pull("private/app:1", RegistryAuth{"u", "p", "r"}).error().code, Errc::pull_failed);
  EXPECT_EQ(d.calls().back().detail, "auth=u");
  EXPECT_FALSE(*d.image_present("private/app:1"));
  d.set_pull_error("private/app:1", std::nullopt);
  EXPECT_TRUE(d.pull("private/app:1", std::nullopt).ok());

  d.script("bad", {.start_error = Error(Errc::bad_request, "executable file not found")});
  ContainerSpec s = web("bad");
  s.image = "private/app:1";
  auto id = d.create(s);
  EXPECT_EQ(d.start(*id).error().code, Errc::bad_request);
  EXPECT_EQ(d.inspect(*id)->status, ContainerStatus::created);

  d.set_available(false);
  EXPECT_EQ(d.ping().error().code, Errc::unavailable);
  d.set_available(true);
  EXPECT_TRUE(d.ping().ok());
}

TEST(FakeDriver, HealthExecAndStats) {
  FakeDriver d;
  d.add_image("nginx:1.25");
  ContainerSpec s = web();
  s.healthcheck = HealthCheck{.test = {"CMD-SHELL", "curl -f localhost"}};
  FakeDriver::Script script;
  script.exec_results.push_back(ExecResult{.exit_code = 1, .output = std::string(100, 'x')});
  script.exec_results.push_back(Error(Errc::timeout, "slow"));
  d.script("web", std::move(script));
  auto id = d.create(s);
  EXPECT_EQ(d.exec_check(*id, {"true"}, 1s, 10).error().code, Errc::conflict);  // not running
  ASSERT_TRUE(d.start(*id).ok());
  EXPECT_EQ(d.inspect(*id)->health, HealthStatus::starting);

  auto r = d.exec_check(*id, {"sh", "-c", "curl -f localhost"}, 1s, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->exit_code, 1);
  EXPECT_EQ(r->output.size(), 10u);
  EXPECT_TRUE(r->truncated);
  EXPECT_EQ(d.calls().back().detail, "sh -c curl -f localhost");
  EXPECT_EQ(d.exec_check(*id, {"x"}, 1s, 10).error().code, Errc::timeout);
  EXPECT_EQ(d.exec_check(*id, {"x"}, 1s, 10)->exit_code, 0);  // script exhausted

  Recorder rec;
  auto sub = d.events({.actions = {"health_status"}}, rec.handlers());
  ASSERT_TRUE(d.set_health(*id, HealthStatus::healthy).ok());
  d.flush_events();
  ASSERT_EQ(rec.events.size(), 1u);
  EXPECT_EQ(rec.events[0].health, HealthStatus::healthy);
  EXPECT_EQ(d.inspect(*id)->health, HealthStatus::healthy);

  EXPECT_EQ(d.stats(*id)->memory_limit, 64u << 20);
}

TEST(FakeDriver, EventFiltersCancelAndBrokenStreams) {
  FakeDriver d;
  d.add_image("nginx:1.25");
  Recorder mine, all;
  auto sub = d.events({.labels = {"task=t1"}}, mine.handlers());
  auto sub_all = d.events({}, all.handlers());
  ContainerSpec other = web("other");
  other.labels = {{"task", "t2"}};
  auto a = d.create(web("a"));
  auto b = d.create(other);
  ASSERT_TRUE(d.start(*a).ok());
  ASSERT_TRUE(d.remove(*a, true).ok());
  d.flush_events();
  EXPECT_EQ(mine.actions(), (std::vector<std::string>{"create", "start", "die", "destroy"}));
  EXPECT_EQ(all.actions().size(), 5u);

  (*sub)->cancel();
  ASSERT_EQ(mine.ends.size(), 1u);
  EXPECT_EQ(mine.ends[0].code, Errc::cancelled);
  ASSERT_TRUE(d.start(*b).ok());
  d.flush_events();  // cancel() below would drop undelivered events
  d.break_event_streams(Error(Errc::unavailable, "engine restarted"));
  sub_all->reset();  // joins the delivery thread
  ASSERT_EQ(all.ends.size(), 1u);
  EXPECT_EQ(all.ends[0].code, Errc::unavailable);
  EXPECT_EQ(all.actions().back(), "start");  // delivered before the stream ended
  EXPECT_EQ(mine.events.size(), 4u);
}

TEST(FakeDriver, ListFiltersByLabel) {
  FakeDriver d;
  d.add_image("nginx:1.25");
  ContainerSpec other = web("other");
  other.labels = {{"task", "t2"}};
  auto a = d.create(web("a"));
  ASSERT_TRUE(d.create(other).ok());
  ASSERT_TRUE(d.start(*a).ok());
  EXPECT_EQ(d.list({.labels = {"task"}})->size(), 2u);
  auto t1 = d.list({.labels = {"task=t1"}});
  ASSERT_EQ(t1->size(), 1u);
  EXPECT_EQ(t1->at(0).name, "a");
  EXPECT_EQ(d.list({.labels = {}, .all = false})->size(), 1u);
}

}  // namespace
}  // namespace berth::runtime
