// Configuration generation: what HAProxy is told for a desired state, without running it (except
// for one `haproxy -c` syntax check when the binary is installed).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "lb/errc.h"
#include "lb/haproxy/haproxy_config.h"

namespace berth::lb {
namespace {

const ConfigPaths kPaths{"/run/berth/admin.sock", "/run/berth/server-state"};

HealthCheck fast_check() {
  HealthCheck hc;
  hc.path = "/health";
  hc.interval_seconds = 1;
  hc.timeout_seconds = 1;
  hc.healthy_threshold = 2;
  hc.unhealthy_threshold = 3;
  return hc;
}

DesiredState sample() {
  DesiredState d;
  d.backends = {{"web", fast_check()}, {"api", fast_check()}, {"static", fast_check()}};
  d.backends[1].health_check.matcher = "200-299";
  d.backends[1].health_check.port = 9000;
  Frontend f;
  f.id = "lb1-80";
  f.address = "0.0.0.0";
  f.port = 8080;
  f.default_backend = "web";
  f.routes = {{20, {"/static/*"}, {}, "static", {}},
              {10, {"/api/*", "/v?/api"}, {"API.example.com", "*.api.example.com"}, "api", {}}};
  d.frontends = {f};
  d.servers = {{"web", "t1-80", "10.0.0.1", 32768, false},
               {"api", "t2-9000", "10.0.0.2", 32769, true}};
  return d;
}

std::string config(const DesiredState& d) {
  auto r = render_config(d, kPaths, d.servers);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : "";
}

size_t pos(const std::string& text, const std::string& needle) {
  size_t p = text.find(needle);
  EXPECT_NE(p, std::string::npos) << "missing: " << needle << "\nin:\n" << text;
  return p;
}

TEST(HaproxyConfig, WildcardsBecomeAnchoredRegexes) {
  EXPECT_EQ(wildcard_to_regex("/api/*"), "^/api/.*$");
  EXPECT_EQ(wildcard_to_regex("/v?/x.json"), "^/v./x\\.json$");
  EXPECT_EQ(wildcard_to_regex("*.example.com"), "^.*\\.example\\.com$");
  EXPECT_EQ(wildcard_to_regex("/a+b(c)[d]{e}|f^$\\"),
            "^/a\\+b\\(c\\)\\[d\\]\\{e\\}\\|f\\^\\$\\\\$");
  EXPECT_EQ(wildcard_to_regex("/it's"), "^/it\\x27s$");  // single-quoted in the config
}

TEST(HaproxyConfig, MatcherForms) {
  EXPECT_EQ(expect_status("200").value(), "200");
  EXPECT_EQ(expect_status("200,202").value(), "200,202");
  EXPECT_EQ(expect_status("200-299").value(), "200-299");
  EXPECT_EQ(expect_status("200-299,302").value(), "200-299,302");
  for (const char* bad : {"", "20", "2000", "abc", "299-200", "200,", ",200", "200-", "600"}) {
    auto r = expect_status(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, make_error_code(Errc::invalid_config));
  }
  std::string text = config(sample());
  pos(text, "http-check expect status 200-299\n");
  pos(text, "http-check expect status 200\n");
}

TEST(HaproxyConfig, RoutesInPriorityOrderWithAndedConditions) {
  std::string text = config(sample());
  // Priority 10 (api) is tested before priority 20 (static) whatever the input order.
  pos(text, "  acl r0_path path -m reg '^/api/.*$' '^/v./api$'\n");
  pos(text,
      "  acl r0_host req.hdr(host),field(1,:) -i -m reg '^API\\.example\\.com$' "
      "'^.*\\.api\\.example\\.com$'\n");
  pos(text, "  acl r1_path path -m reg '^/static/.*$'\n");
  // The first route that matches is recorded, then its action runs.
  size_t r0 = pos(text, "  http-request set-var(txn.route) int(0) if r0_path r0_host\n");
  size_t r1 = pos(text,
                  "  http-request set-var(txn.route) int(1) if !{ var(txn.route) -m found } "
                  "r1_path\n");
  size_t api = pos(text, "  use_backend be_api if { var(txn.route) -m int 0 }\n");
  size_t st = pos(text, "  use_backend be_static if { var(txn.route) -m int 1 }\n");
  size_t def = pos(text, "  default_backend be_web\n");
  EXPECT_LT(r0, r1);
  EXPECT_LT(r1, api);
  EXPECT_LT(api, st);
  EXPECT_LT(st, def);
  pos(text, "frontend fe_lb1-80\n  bind 0.0.0.0:8080\n");
  EXPECT_EQ(text.find("return status 503"), std::string::npos);
}

TEST(HaproxyConfig, NoDefaultBackendAnswers503WhenNoRouteMatches) {
  DesiredState d = sample();
  d.frontends[0].default_backend = "";
  pos(config(d), "  http-request return status 503 unless { var(txn.route) -m found }\n");
  d.frontends[0].routes.clear();
  pos(config(d), "  http-request return status 503\n");
}

// sample() with a fixed route between the two forward routes and a fixed default action.
DesiredState with_fixed() {
  DesiredState d = sample();
  Frontend& f = d.frontends[0];
  f.routes.push_back({15, {"/maintenance"}, {}, "", FixedResponse{503, "text/plain", "down"}});
  f.default_backend = "";
  f.default_fixed = FixedResponse{404, "text/plain", "nothing here"};
  return d;
}

TEST(HaproxyConfig, FixedResponsesKeepPriorityOrder) {
  std::string text = config(with_fixed());
  // Priorities 10 (api), 15 (fixed), 20 (static): all recorded before any action runs.
  pos(text, "  acl r1_path path -m reg '^/maintenance$'\n");
  size_t set = pos(text,
                   "  http-request set-var(txn.route) int(1) if !{ var(txn.route) -m found } "
                   "r1_path\n");
  size_t fixed = pos(text,
                     "  http-request return status 503 content-type \"text/plain\" string \"down\" "
                     "if { var(txn.route) -m int 1 }\n");
  size_t def = pos(text,
                   "  http-request return status 404 content-type \"text/plain\" string "
                   "\"nothing here\" unless { var(txn.route) -m found }\n");
  size_t api = pos(text, "  use_backend be_api if { var(txn.route) -m int 0 }\n");
  pos(text, "  use_backend be_static if { var(txn.route) -m int 2 }\n");
  EXPECT_LT(set, fixed);
  EXPECT_LT(fixed, def);
  EXPECT_LT(def, api);
  EXPECT_EQ(text.find("default_backend"), std::string::npos);
  EXPECT_EQ(text.find("use_backend be_\n"), std::string::npos);
  EXPECT_EQ(text.find("return status 503 unless"), std::string::npos);

  // A body-less response has neither content type nor string (HAProxy refuses an empty one).
  DesiredState d = with_fixed();
  d.frontends[0].default_fixed = FixedResponse{200, "text/plain", ""};
  pos(config(d), "  http-request return status 200 unless { var(txn.route) -m found }\n");
  // Nor do 204 and 304, which HAProxy (and HTTP) allow no body.
  d.frontends[0].default_fixed = FixedResponse{204, "text/plain", "ignored"};
  pos(config(d), "  http-request return status 204 unless { var(txn.route) -m found }\n");
  d.frontends[0].routes[2].fixed = FixedResponse{304, "text/plain", "ignored"};
  pos(config(d), "  http-request return status 304 if { var(txn.route) -m int 1 }\n");
  // A body needs a content type.
  d.frontends[0].default_fixed = FixedResponse{200, "", "x"};
  pos(config(d),
      "  http-request return status 200 content-type \"text/plain\" string \"x\" unless");
}

TEST(HaproxyConfig, FixedResponseBodyIsEscaped) {
  DesiredState d = with_fixed();
  d.frontends[0].default_fixed = FixedResponse{200, "text/html; charset=\"utf-8\"",
                                               "say \"hi\" \\ $HOME #x 'q'\r\n\tend\x01é"};
  pos(config(d),
      "  http-request return status 200 content-type \"text/html; charset=\\\"utf-8\\\"\" string "
      "\"say \\\"hi\\\" \\\\ \\$HOME #x 'q'\\r\\n\\tend\\x01\\xc3\\xa9\" unless");
}

TEST(HaproxyConfig, FixedResponsesAreInTheFingerprint) {
  const std::string fp = config_fingerprint(with_fixed(), kPaths).value();
  for (auto change : {+[](DesiredState& d) { d.frontends[0].routes[2].fixed->status = 502; },
                      +[](DesiredState& d) { d.frontends[0].routes[2].fixed->body = "up"; },
                      +[](DesiredState& d) { d.frontends[0].default_fixed->content_type = "a/b"; },
                      +[](DesiredState& d) {
                        d.frontends[0].routes[2].fixed.reset();
                        d.frontends[0].routes[2].backend = "web";
                      }}) {
    DesiredState c = with_fixed();
    change(c);
    EXPECT_NE(config_fingerprint(c, kPaths).value(), fp);
  }
}

TEST(HaproxyConfig, ValidatesFixedResponses) {
  auto accepts = [](auto mutate) {
    DesiredState d = with_fixed();
    mutate(d.frontends[0]);
    auto r = config_fingerprint(d, kPaths);
    EXPECT_TRUE(r.ok() || r.error().code == make_error_code(Errc::invalid_config));
    return r.ok();
  };
  EXPECT_TRUE(accepts([](Frontend&) {}));
  EXPECT_TRUE(accepts([](Frontend& f) { f.default_fixed->status = 200; }));
  EXPECT_TRUE(accepts([](Frontend& f) { f.default_fixed->status = 599; }));
  EXPECT_FALSE(accepts([](Frontend& f) { f.default_fixed->status = 199; }));
  EXPECT_FALSE(accepts([](Frontend& f) { f.routes[2].fixed->status = 600; }));
  EXPECT_TRUE(accepts([](Frontend& f) { f.default_fixed->body = std::string(1024, 'x'); }));
  EXPECT_FALSE(accepts([](Frontend& f) { f.default_fixed->body = std::string(1025, 'x'); }));
  EXPECT_TRUE(accepts([](Frontend& f) {  // characters, not bytes
    f.default_fixed->body.clear();
    for (int i = 0; i < 1024; ++i) f.default_fixed->body += "é";
  }));
  EXPECT_FALSE(accepts([](Frontend& f) { f.default_fixed->body = std::string("a\0b", 3); }));
  EXPECT_FALSE(accepts([](Frontend& f) { f.default_fixed->content_type = "text/plain\r\nX: y"; }));
  EXPECT_FALSE(accepts([](Frontend& f) { f.default_fixed->content_type = std::string(129, 'a'); }));
  // Forward or fixed, not both.
  EXPECT_FALSE(accepts([](Frontend& f) { f.routes[2].backend = "web"; }));
  EXPECT_FALSE(accepts([](Frontend& f) { f.default_backend = "web"; }));
  EXPECT_TRUE(accepts([](Frontend& f) { f.default_fixed.reset(); }));
}

TEST(HaproxyConfig, BackendsCarryHealthChecksAndServers) {
  std::string text = config(sample());
  pos(text,
      "backend be_api\n  balance roundrobin\n  option httpchk GET /health\n"
      "  http-check expect status 200-299\n  timeout check 1s\n"
      "  default-server inter 1s rise 2 fall 3 port 9000\n"
      "  server t2-9000 10.0.0.2:32769 check inter 1s rise 2 fall 3 port 9000\n");
  pos(text, "  server t1-80 10.0.0.1:32768 check inter 1s rise 2 fall 3\n");
  for (const char* g :
       {"option redispatch", "retries 3", "retry-on conn-failure empty-response response-timeout",
        "load-server-state-from-file global",
        "stats socket '/run/berth/admin.sock' level admin expose-fd listeners",
        "server-state-file '/run/berth/server-state'"})
    pos(text, g);

  DesiredState d = sample();
  d.backends[0].health_check.enabled = false;
  text = config(d);
  size_t web = pos(text, "\nbackend be_web\n");
  EXPECT_EQ(text.find("httpchk", web), std::string::npos);
  pos(text, "  server t1-80 10.0.0.1:32768\n");
}

TEST(HaproxyConfig, DeterministicAndFingerprintIgnoresServers) {
  DesiredState a = sample();
  DesiredState b = sample();
  std::reverse(b.backends.begin(), b.backends.end());
  std::reverse(b.servers.begin(), b.servers.end());
  Frontend extra = a.frontends[0];
  extra.id = "lb2-81";
  extra.port = 8081;
  a.frontends.push_back(extra);
  b.frontends.insert(b.frontends.begin(), extra);
  EXPECT_EQ(config(a), config(b));

  auto fp = config_fingerprint(a, kPaths).value();
  EXPECT_EQ(fp.size(), 16u);
  b.servers.clear();
  EXPECT_EQ(config_fingerprint(b, kPaths).value(), fp);
  EXPECT_NE(config(b), config(a));  // servers are in the text, not the fingerprint
  pos(config(a), "  description " + fingerprint_description(fp) + "\n");

  // Check settings live on server lines too, but changing them needs a reload all the same.
  for (auto change : {+[](HealthCheck& h) { h.interval_seconds = 2; },
                      +[](HealthCheck& h) { h.healthy_threshold = 4; },
                      +[](HealthCheck& h) { h.unhealthy_threshold = 4; },
                      +[](HealthCheck& h) { h.port = 1234; }}) {
    DesiredState c = b;
    change(c.backends[0].health_check);
    EXPECT_NE(config_fingerprint(c, kPaths).value(), fp);
  }
}

TEST(HaproxyConfig, RejectsWhatHaproxyCannotExpress) {
  auto rejects = [](auto mutate) {
    DesiredState d = sample();
    mutate(d);
    auto r = config_fingerprint(d, kPaths);
    return !r.ok() && r.error().code == make_error_code(Errc::invalid_config);
  };
  EXPECT_TRUE(rejects([](DesiredState& d) { d.backends[0].id = "we b"; }));
  EXPECT_TRUE(rejects([](DesiredState& d) { d.backends.push_back(d.backends[0]); }));
  EXPECT_TRUE(rejects([](DesiredState& d) { d.frontends[0].routes[0].backend = "nope"; }));
  EXPECT_TRUE(rejects([](DesiredState& d) { d.frontends[0].default_backend = "nope"; }));
  EXPECT_TRUE(rejects([](DesiredState& d) { d.frontends[0].routes[0].path_patterns = {"/a b"}; }));
  EXPECT_TRUE(rejects([](DesiredState& d) { d.frontends[0].routes[0].host_patterns = {"a/b"}; }));
  EXPECT_TRUE(rejects([](DesiredState& d) { d.backends[0].health_check.matcher = "ok"; }));
  EXPECT_TRUE(rejects([](DesiredState& d) { d.backends[0].health_check.path = "health"; }));
  EXPECT_TRUE(rejects([](DesiredState& d) { d.servers[0].backend = "nope"; }));
  EXPECT_TRUE(rejects([](DesiredState& d) { d.servers[0].address = "host.example"; }));
  EXPECT_TRUE(rejects([](DesiredState& d) { d.servers.push_back(d.servers[0]); }));
  EXPECT_TRUE(rejects([](DesiredState& d) {
    Frontend f = d.frontends[0];
    f.id = "other";
    f.address = "127.0.0.1";  // same port as 0.0.0.0:8080
    d.frontends.push_back(f);
  }));
  EXPECT_FALSE(rejects([](DesiredState&) {}));
}

TEST(HaproxyConfig, HaproxyAcceptsTheConfiguration) {
  const char* haproxy = "/usr/sbin/haproxy";
  if (access(haproxy, X_OK) != 0) GTEST_SKIP() << "haproxy not installed";
  DesiredState d = with_fixed();
  d.frontends[0].routes[1].path_patterns.push_back("/it's/*");
  d.frontends[0].routes[2].fixed->body = "say \"hi\" \\ $HOME #x 'q'\r\n\tend\x01é";
  d.frontends[0].default_fixed->content_type = "text/html; charset=\"utf-8\"";
  Frontend no_body = d.frontends[0];  // HAProxy refuses a body on these
  no_body.id = "lb2-81";
  no_body.port = 8081;
  no_body.default_fixed = FixedResponse{204, "text/plain", "x"};
  no_body.routes[2].fixed = FixedResponse{304, "text/plain", "y"};
  d.frontends.push_back(no_body);
  auto file = std::filesystem::temp_directory_path() / ("berth-cfg-" + std::to_string(getpid()));
  std::ofstream(file) << config(d);
  std::string cmd = std::string(haproxy) + " -c -q -f " + file.string() + " >/dev/null 2>&1";
  int rc = std::system(cmd.c_str());
  std::filesystem::remove(file);
  EXPECT_EQ(rc, 0);
}

}  // namespace
}  // namespace berth::lb
