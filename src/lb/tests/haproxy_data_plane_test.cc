// HaproxyDataPlane against the real HAProxy 2.6 with busybox httpd upstreams: traffic, health
// states as ELB reports them, runtime server changes, seamless reloads, adoption and restart.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>

#include "lb/errc.h"
#include "lb/haproxy/haproxy_data_plane.h"
#include "lb/tests/lb_test_util.h"

namespace berth::lb {
namespace {

using namespace std::chrono_literals;
using namespace berth::lb::testing;
namespace fs = std::filesystem;

HealthCheck fast_check() {
  HealthCheck hc;
  hc.path = "/index.html";
  hc.interval_seconds = 1;  // ELB's minimum is 5 s; 1 s keeps the test fast
  hc.timeout_seconds = 1;
  hc.healthy_threshold = 2;
  hc.unhealthy_threshold = 2;
  return hc;
}

class HaproxyDataPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kHaproxy, X_OK) != 0 || access(kBusybox, X_OK) != 0)
      GTEST_SKIP() << "needs " << kHaproxy << " and " << kBusybox;
    char tmpl[] = "/tmp/berth-lb-XXXXXX";  // short: unix socket paths are limited to 107 bytes
    dir_ = mkdtemp(tmpl);
    for (std::string name : {"a", "b", "c"}) {
      fs::path www = fs::path(dir_) / ("www-" + name);
      write_file(www / "index.html", name + "\n");
      write_file(www / "other" / "index.html", name + "-other\n");
      write_file(www / "cgi-bin" / "slow",
                 "#!/bin/sh\nsleep 2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow\\n'\n",
                 true);
      httpd_[name] = std::make_unique<Httpd>(www.string(), free_port());
    }
    port_ = free_port();
    dp_ = make();
  }

  void TearDown() override {
    if (dp_) {
      EXPECT_TRUE(dp_->stop().ok());
    }
    httpd_.clear();
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  std::unique_ptr<HaproxyDataPlane> make() {
    HaproxyOptions o;
    o.haproxy_binary = kHaproxy;
    o.run_dir = dir_ + "/run";
    return std::make_unique<HaproxyDataPlane>(o);
  }

  // Backend "web" behind one frontend, with the given upstreams as servers.
  DesiredState state(const std::vector<std::string>& servers, const std::string& draining = "") {
    DesiredState d;
    d.backends = {{"web", fast_check()}};
    Frontend f;
    f.id = "fe1";
    f.address = "127.0.0.1";
    f.port = port_;
    f.default_backend = "web";
    d.frontends = {f};
    for (const auto& s : servers)
      d.servers.push_back({"web", s, "127.0.0.1", httpd_.at(s)->port(), s == draining});
    return d;
  }

  void apply(const DesiredState& d) {
    auto s = dp_->apply(d);
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  std::map<std::string, ServerHealth> health(DataPlane& dp) {
    std::map<std::string, ServerHealth> out;
    auto h = dp.health();
    EXPECT_TRUE(h.ok()) << h.error().message;
    if (h.ok())
      for (auto& s : *h) out[s.backend + "/" + s.name] = s;
    return out;
  }
  std::string state_of(const std::string& server) {
    auto h = health(*dp_);
    auto it = h.find("web/" + server);
    return it == h.end() ? "absent" : it->second.state;
  }
  bool healthy(std::initializer_list<std::string> servers) {
    for (const auto& s : servers)
      if (state_of(s) != "healthy") return false;
    return true;
  }

  // The body of GET `path` without its newline, or "error"/"HTTP <status>".
  std::string get(const std::string& path = "/", const std::string& host = "test") {
    auto r = http_get(port_, path, host);
    if (!r) return "error";
    if (r->status != 200) return "HTTP " + std::to_string(r->status);
    std::string b = r->body;
    while (!b.empty() && b.back() == '\n') b.pop_back();
    return b;
  }
  std::multiset<std::string> bodies(int n, const std::string& path = "/") {
    std::multiset<std::string> out;
    for (int i = 0; i < n; ++i) out.insert(get(path));
    return out;
  }

  std::string dir_;
  std::map<std::string, std::unique_ptr<Httpd>> httpd_;
  int port_ = 0;
  std::unique_ptr<HaproxyDataPlane> dp_;
};

TEST_F(HaproxyDataPlaneTest, NothingToServeStartsNoProxy) {
  apply(DesiredState{});
  EXPECT_FALSE(dp_->master_pid().ok());
  auto h = dp_->health();
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_TRUE(h->empty());
  // Once it serves something, emptying the state updates the running proxy.
  apply(state({"a"}));
  ASSERT_TRUE(dp_->master_pid().ok());
  apply(DesiredState{});
  EXPECT_TRUE(dp_->master_pid().ok());
  EXPECT_EQ(get(), "error");  // the listener is gone
}

TEST_F(HaproxyDataPlaneTest, TwoServersShareTraffic) {
  apply(state({"a", "b"}));
  auto h = health(*dp_);
  ASSERT_EQ(h.size(), 2u);
  EXPECT_EQ(h["web/a"].state, "initial");
  EXPECT_EQ(h["web/a"].reason, "Elb.InitialHealthChecking");
  ASSERT_TRUE(eventually([&] { return healthy({"a", "b"}); }));
  auto seen = bodies(10);
  EXPECT_EQ(seen.count("a"), 5u);  // round robin
  EXPECT_EQ(seen.count("b"), 5u);
  apply(state({"a", "b"}));  // nothing to do: still the same process, same health
  EXPECT_TRUE(healthy({"a", "b"}));
}

TEST_F(HaproxyDataPlaneTest, NewServerTakesNoTrafficUntilHealthy) {
  apply(state({"a"}));
  ASSERT_TRUE(eventually([&] { return healthy({"a"}); }));
  apply(state({"a", "b"}));
  EXPECT_EQ(state_of("b"), "initial");
  int during_initial = 0;
  bool became_healthy = eventually([&] {
    std::string body = get();
    std::string b = state_of("b");  // read after the request: b served it only if already healthy
    if (body == "b") {
      EXPECT_EQ(b, "healthy");
      return true;
    }
    EXPECT_EQ(body, "a");
    if (b == "initial") ++during_initial;
    return false;
  });
  EXPECT_TRUE(became_healthy);
  EXPECT_GT(during_initial, 5);  // checks every second, rise 2: well over a second in initial
}

TEST_F(HaproxyDataPlaneTest, FailingHealthPathMakesServerUnhealthyAndAvoided) {
  apply(state({"a", "b"}));
  ASSERT_TRUE(eventually([&] { return healthy({"a", "b"}); }));
  fs::remove(fs::path(httpd_["b"]->dir()) / "index.html");
  ASSERT_TRUE(eventually([&] { return state_of("b") == "unhealthy"; }));
  auto h = health(*dp_)["web/b"];
  EXPECT_EQ(h.reason, "Target.ResponseCodeMismatch");
  EXPECT_EQ(h.description, "Health checks failed with these codes: [404]");
  auto seen = bodies(6);
  EXPECT_EQ(seen.count("a"), 6u);

  apply(state({"a", "b"}));  // the controller's next pass changes nothing
  write_file(fs::path(httpd_["b"]->dir()) / "index.html", "b\n");
  EXPECT_TRUE(eventually([&] { return healthy({"b"}); }));
}

TEST_F(HaproxyDataPlaneTest, DrainingServerTakesNoNewRequests) {
  apply(state({"a", "b"}));
  ASSERT_TRUE(eventually([&] { return healthy({"a", "b"}); }));
  apply(state({"a", "b"}, "b"));
  auto h = health(*dp_)["web/b"];
  EXPECT_EQ(h.state, "draining");
  EXPECT_EQ(h.reason, "Target.DeregistrationInProgress");
  EXPECT_EQ(bodies(6).count("a"), 6u);

  apply(state({"a", "b"}));  // registered again: checked from scratch like a new target
  EXPECT_EQ(state_of("b"), "initial");
  EXPECT_EQ(bodies(4).count("a"), 4u);  // rise 2 at one check a second: over a second away
}

TEST_F(HaproxyDataPlaneTest, UndrainedServerMustPassItsChecksAgain) {
  apply(state({"a", "b"}));
  ASSERT_TRUE(eventually([&] { return healthy({"a", "b"}); }));
  apply(state({"a", "b"}, "b"));
  EXPECT_EQ(state_of("b"), "draining");
  // Registered again while its health path now fails, before any check has noticed (`fall` 2 at
  // one check a second): kept UP from before, it would take traffic until the checks catch up.
  fs::remove(fs::path(httpd_["b"]->dir()) / "index.html");
  apply(state({"a", "b"}));
  const auto until = std::chrono::steady_clock::now() + 1500ms;
  int requests = 0;
  while (std::chrono::steady_clock::now() < until) {
    EXPECT_EQ(get(), "a");
    std::string b = state_of("b");
    EXPECT_TRUE(b == "initial" || b == "unhealthy") << b;
    ++requests;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_GT(requests, 5);
  EXPECT_TRUE(eventually([&] { return state_of("b") == "unhealthy"; }));
  EXPECT_EQ(health(*dp_)["web/b"].reason, "Target.ResponseCodeMismatch");
  EXPECT_EQ(bodies(4).count("a"), 4u);
}

TEST_F(HaproxyDataPlaneTest, RemovedServerIsDeleted) {
  apply(state({"a", "b"}));
  ASSERT_TRUE(eventually([&] { return healthy({"a", "b"}); }));
  apply(state({"a"}));
  EXPECT_EQ(state_of("b"), "absent");
  EXPECT_EQ(bodies(4).count("a"), 4u);

  apply(state({"a", "b"}));  // the same name again: a new target, checked from scratch
  EXPECT_EQ(state_of("b"), "initial");
  EXPECT_TRUE(eventually([&] { return healthy({"b"}); }));
}

TEST_F(HaproxyDataPlaneTest, RouteChangeReloadsSeamlessly) {
  apply(state({"a", "b"}));
  ASSERT_TRUE(eventually([&] { return healthy({"a", "b"}); }));
  auto pid = dp_->master_pid();
  ASSERT_TRUE(pid.ok());

  HttpConnection keep_alive(port_);
  auto first = keep_alive.get("/index.html");
  ASSERT_TRUE(first && first->status == 200);
  // A request in flight across the reload (the CGI answers after 2 s).
  std::optional<HttpReply> slow;
  std::thread slow_client([&] { slow = http_get(port_, "/cgi-bin/slow"); });
  EXPECT_TRUE(eventually([&] {
    auto h = health(*dp_);
    return h["web/a"].current_sessions + h["web/b"].current_sessions > 0;
  }));

  DesiredState d = state({"a", "b"});
  d.backends.push_back({"other", fast_check()});
  d.frontends[0].routes = {{1, {"/other/*"}, {}, "other", {}}};
  d.servers.push_back({"other", "c", "127.0.0.1", httpd_["c"]->port(), false});
  apply(d);

  EXPECT_EQ(dp_->master_pid().value(), *pid);  // reloaded, not restarted
  EXPECT_TRUE(healthy({"a", "b"}));            // health kept through the server-state file
  EXPECT_EQ(health(*dp_)["other/c"].state, "initial");
  // The keep-alive client's next request is served; the old worker may then close it.
  auto second = keep_alive.get("/index.html");
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->status, 200);
  slow_client.join();
  ASSERT_TRUE(slow.has_value());
  EXPECT_EQ(slow->status, 200);
  EXPECT_EQ(slow->body, "slow\n");

  EXPECT_TRUE(eventually([&] { return get("/other/index.html") == "c-other"; }));
  EXPECT_NE(get("/index.html"), "c");
  apply(d);  // same state: no further reload
  EXPECT_TRUE(healthy({"a", "b"}));
}

TEST_F(HaproxyDataPlaneTest, SecondInstanceAdoptsRunningProxy) {
  apply(state({"a", "b"}));
  ASSERT_TRUE(eventually([&] { return healthy({"a", "b"}); }));
  auto pid = dp_->master_pid();
  ASSERT_TRUE(pid.ok());
  const int processes = live_processes_mentioning(dp_->paths().config);
  EXPECT_EQ(processes, 2);  // master and one worker

  auto second = make();  // a restarted Berth
  auto s = second->apply(state({"a", "b"}));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(second->master_pid().value(), *pid);
  EXPECT_EQ(live_processes_mentioning(dp_->paths().config), processes);
  auto h = health(*second);
  EXPECT_EQ(h["web/a"].state, "healthy");
  EXPECT_EQ(h["web/b"].state, "healthy");
}

TEST_F(HaproxyDataPlaneTest, RestartsKilledProxy) {
  apply(state({"a", "b"}));
  ASSERT_TRUE(eventually([&] { return healthy({"a", "b"}); }));
  apply(state({"a", "b"}));  // the controller's next pass saves the server state
  int pid = dp_->master_pid().value();
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return get() == "error"; }));  // the worker follows its master

  apply(state({"a", "b"}));
  auto restarted = dp_->master_pid();
  ASSERT_TRUE(restarted.ok());
  EXPECT_NE(*restarted, pid);
  // Health resumes from the server-state file saved by the previous pass.
  EXPECT_TRUE(healthy({"a", "b"}));
  EXPECT_EQ(bodies(4).count("a"), 2u);
}

TEST_F(HaproxyDataPlaneTest, ServerAddressChangesInPlace) {
  apply(state({"a", "b"}));
  ASSERT_TRUE(eventually([&] { return healthy({"a", "b"}); }));
  DesiredState d = state({"a", "b"});
  d.servers[1].port = httpd_["c"]->port();  // target "b" now answers from c's upstream
  apply(d);
  EXPECT_TRUE(eventually([&] { return bodies(2).count("c") == 1; }));
  apply(d);  // nothing left to change
}

TEST_F(HaproxyDataPlaneTest, WithoutHealthChecksServersServeAtOnceAndAreUnavailable) {
  DesiredState d = state({"a", "b"});
  d.backends[0].health_check.enabled = false;
  apply(d);
  auto h = health(*dp_)["web/a"];
  EXPECT_EQ(h.state, "unavailable");
  EXPECT_EQ(h.reason, "Target.HealthCheckDisabled");
  auto seen = bodies(4);
  EXPECT_EQ(seen.count("a"), 2u);
  EXPECT_EQ(seen.count("b"), 2u);
}

TEST_F(HaproxyDataPlaneTest, FailedReloadKeepsTheOldConfigurationServing) {
  DesiredState good = state({"a", "b"});
  apply(good);
  ASSERT_TRUE(eventually([&] { return healthy({"a", "b"}); }));
  // A second listener on a port busybox holds: `haproxy -c` accepts it, binding fails.
  DesiredState bad = good;
  Frontend f = bad.frontends[0];
  f.id = "fe2";
  f.port = httpd_["c"]->port();
  bad.frontends.push_back(f);
  auto s = dp_->apply(bad);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, make_error_code(Errc::reload_failed)) << s.error().message;
  EXPECT_EQ(bodies(2).count("a"), 1u);  // still served by the old worker

  // The next pass reports the same error without trying again at once, and target changes in
  // the backends the old configuration has still happen.
  bad.servers[1].draining = true;
  auto started = std::chrono::steady_clock::now();
  s = dp_->apply(bad);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 500ms);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, make_error_code(Errc::reload_failed));
  EXPECT_EQ(state_of("b"), "draining");

  apply(good);  // the old worker still runs the good configuration: nothing to reload
  EXPECT_TRUE(healthy({"a"}));
  EXPECT_EQ(state_of("b"), "initial");  // undrained: checked again
}

TEST_F(HaproxyDataPlaneTest, StartFailureReportsTheCause) {
  DesiredState d = state({"a"});
  d.frontends[0].port = httpd_["c"]->port();  // taken
  auto s = dp_->apply(d);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, make_error_code(Errc::start_failed)) << s.error().message;
  EXPECT_NE(s.error().message.find("cannot bind"), std::string::npos) << s.error().message;
}

TEST_F(HaproxyDataPlaneTest, RoutesByPathAndHostElse503) {
  DesiredState d = state({"a"});
  d.backends[0].health_check.enabled = false;  // serve at once
  HealthCheck none;
  none.enabled = false;
  d.backends.push_back({"api", none});
  d.servers.push_back({"api", "b", "127.0.0.1", httpd_["b"]->port(), false});
  d.frontends[0].default_backend = "";
  d.frontends[0].routes = {{2, {"/index.htm?"}, {}, "web", {}},
                           {1, {"/other/*"}, {"*.Example.com"}, "api", {}}};
  apply(d);
  // Host patterns ignore case and the port; both conditions of a route must hold.
  EXPECT_EQ(get("/other/index.html", "x.EXAMPLE.com:8080"), "b-other");
  EXPECT_EQ(get("/other/index.html", "example.org"), "HTTP 503");
  EXPECT_EQ(get("/index.html", "x.example.com"), "a");
  EXPECT_EQ(get("/"), "HTTP 503");
}

TEST_F(HaproxyDataPlaneTest, FixedResponsesInPriorityOrderWithForwards) {
  DesiredState d = state({"a"});
  d.backends[0].health_check.enabled = false;  // serve at once
  Frontend& f = d.frontends[0];
  f.default_backend = "";
  f.default_fixed = FixedResponse{404, "text/plain", "nothing here"};
  const std::string json = "{\"ok\": true, \"cost\": \"$5\\\\x\"}\n#1";
  f.routes = {
      // Both match /index.html: the forward route comes first.
      {1, {"/index.html"}, {}, "web", {}},
      {2, {"/maintenance", "/index.*"}, {}, "", FixedResponse{503, "text/plain", "down"}},
      // Both match /other/*: the fixed route comes first.
      {3, {"/other/*"}, {}, "", FixedResponse{200, "application/json", json}},
      {4, {"/other/*"}, {}, "web", {}},
  };
  apply(d);
  auto expect = [&](const std::string& path, int status, const std::string& body,
                    const std::string& content_type) {
    auto r = http_get(port_, path);
    ASSERT_TRUE(r.has_value()) << path;
    EXPECT_EQ(r->status, status) << path;
    EXPECT_EQ(r->body, body) << path;
    EXPECT_EQ(r->content_type, content_type) << path;
  };
  expect("/index.html", 200, "a\n", "text/html");
  expect("/maintenance", 503, "down", "text/plain");
  expect("/index.htm", 503, "down", "text/plain");
  expect("/other/index.html", 200, json, "application/json");
  expect("/nothing", 404, "nothing here", "text/plain");

  // Turning the default into a forward (and a fixed route into a forward) reloads.
  f.default_fixed.reset();
  f.default_backend = "web";
  f.routes[2] = {3, {"/other/*"}, {}, "web", {}};
  apply(d);
  expect("/other/index.html", 200, "a-other\n", "text/html");
  expect("/index.html", 200, "a\n", "text/html");
}

}  // namespace
}  // namespace berth::lb
