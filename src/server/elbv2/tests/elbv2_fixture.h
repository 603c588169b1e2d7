#pragma once
// The ELBv2 test fixture: the actions against the in-memory store on a manual clock and a fixed
// seed, called through QueryService::handle() with form bodies as the SDKs send them, and small
// XML probes for the replies. Shared by the API and LB controller tests. The store is wrapped so
// that a test can interleave another writer's commit with an action (HookedStore).

#include <gtest/gtest.h>

#include <cctype>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/random.h"
#include "server/elbv2/elbv2_service.h"
#include "store/store.h"

namespace berth::server::elbv2::elbtest {

namespace json = boost::json;
using Params = std::vector<std::pair<std::string, std::string>>;

inline std::string form_encode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// The text of every <name> element, in document order.
inline std::vector<std::string> all(const std::string& xml, const std::string& name) {
  std::vector<std::string> out;
  std::string open = "<" + name + ">", close = "</" + name + ">";
  for (size_t at = xml.find(open); at != std::string::npos; at = xml.find(open, at + 1)) {
    size_t start = at + open.size();
    out.push_back(xml.substr(start, xml.find(close, start) - start));
  }
  return out;
}

inline std::string first(const std::string& xml, const std::string& name) {
  auto v = all(xml, name);
  return v.empty() ? std::string() : v[0];
}

inline bool has(const std::string& xml, const std::string& text) {
  return xml.find(text) != std::string::npos;
}

constexpr int64_t kStart = 1'700'000'000;

// The in-memory store with a hook that runs just before the next commit: a test makes another
// writer commit between an action's reads and its own commit, as a concurrent call would.
class HookedStore : public store::Store {
 public:
  explicit HookedStore(std::unique_ptr<store::Store> inner) : inner_(std::move(inner)) {}

  /// Runs `fn` once, before the next commit() (which `fn` may itself call).
  void before_next_commit(std::function<void()> fn) { hook_ = std::move(fn); }

  Result<std::optional<store::KeyValue>> get(std::string_view key) override {
    return inner_->get(key);
  }
  Result<store::RangeResult> range(const store::RangeRequest& req) override {
    return inner_->range(req);
  }
  Result<int64_t> commit(const store::Txn& txn) override {
    if (hook_) {
      auto fn = std::move(hook_);
      hook_ = nullptr;
      fn();
    }
    return inner_->commit(txn);
  }
  int64_t revision() override { return inner_->revision(); }
  std::unique_ptr<store::Subscription> watch(
      std::string prefix,
      std::function<void(const std::vector<store::Event>&, int64_t revision)> fn) override {
    return inner_->watch(std::move(prefix), std::move(fn));
  }

 private:
  std::unique_ptr<store::Store> inner_;
  std::function<void()> hook_;
};

class ElbTest : public ::testing::Test {
 protected:
  ElbTest()
      : store_(std::make_unique<HookedStore>(store::open_memory_store())),
        clock_(std::chrono::system_clock::time_point(std::chrono::seconds(kStart))),
        rng_(7),
        elb_(*store_, clock_, rng_, {"us-east-1", "123456789012", "0.0.0.0"}) {}

  std::pair<int, std::string> call(const std::string& action, const Params& params) {
    api::HttpRequest req;
    req.method = "POST";
    req.target = "/";
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
    req.body = "Action=" + action + "&Version=2015-12-01";
    for (const auto& [k, v] : params) {
      req.body += '&';
      req.body += form_encode(k);
      req.body += '=';
      req.body += form_encode(v);
    }
    api::RequestContext ctx;
    ctx.request_id = "req-1";
    api::HttpResponse r = elb_.query().handle(ctx, req);
    return {r.status, r.body};
  }
  std::string ok(const std::string& action, const Params& params = {}) {
    auto [status, body] = call(action, params);
    EXPECT_EQ(status, 200) << action << ": " << body;
    EXPECT_FALSE(has(body, "_berth")) << body;
    return body;
  }
  // The error code of a call expected to fail.
  std::string err(const std::string& action, const Params& params = {}) {
    auto [status, body] = call(action, params);
    EXPECT_NE(status, 200) << action << " unexpectedly succeeded: " << body;
    return first(body, "Code");
  }

  std::string create_lb(const std::string& name, Params extra = {}) {
    extra.emplace_back("Name", name);
    return first(ok("CreateLoadBalancer", extra), "LoadBalancerArn");
  }
  std::string create_tg(const std::string& name, Params extra = {}) {
    extra.insert(extra.begin(), {{"Name", name}, {"Protocol", "HTTP"}, {"Port", "80"}});
    return first(ok("CreateTargetGroup", extra), "TargetGroupArn");
  }
  std::string create_listener(const std::string& lb, const std::string& tg, int port = 80) {
    return first(ok("CreateListener", {{"LoadBalancerArn", lb},
                                       {"Protocol", "HTTP"},
                                       {"Port", std::to_string(port)},
                                       {"DefaultActions.member.1.Type", "forward"},
                                       {"DefaultActions.member.1.TargetGroupArn", tg}}),
                 "ListenerArn");
  }
  std::string health(const std::string& tg, Params extra = {}) {
    extra.insert(extra.begin(), {"TargetGroupArn", tg});
    return ok("DescribeTargetHealth", extra);
  }

  HookedStore& hooked_store() { return static_cast<HookedStore&>(*store_); }

  std::unique_ptr<store::Store> store_;  // a HookedStore
  ManualClock clock_;
  SeededRandom rng_;
  Elbv2Service elb_;
};

}  // namespace berth::server::elbv2::elbtest
