#include "agent/session.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <thread>

#include "api/sigv4.h"

namespace berth::agent {

namespace json = boost::json;
using namespace std::chrono_literals;

Session::Session(ApiClient& api, SessionConfig config) : api_(api), config_(std::move(config)) {}

std::chrono::milliseconds Session::jitter(std::chrono::milliseconds d) {
  // ±25% so agents that lost the same server do not come back in lockstep.
  std::uniform_int_distribution<int64_t> dist(d.count() * 3 / 4, d.count() * 5 / 4);
  std::lock_guard lock(mu_);
  return std::chrono::milliseconds(dist(rng_));
}

Result<std::string> Session::register_instance(const std::string& arn) {
  json::object body = config_.registration;
  body["cluster"] = config_.cluster;
  if (!arn.empty()) body["containerInstanceArn"] = arn;
  auto r = api_.call("RegisterContainerInstance", body);
  if (!r.ok() && !arn.empty() && !retriable(r.error())) {
    // The saved ARN is no longer valid (deregistered, another server): register afresh.
    body.erase("containerInstanceArn");
    r = api_.call("RegisterContainerInstance", body);
  }
  if (!r.ok()) return r.error();
  const auto* ci = r->as_object().if_contains("containerInstance");
  if (ci == nullptr || !ci->is_object() || !ci->as_object().contains("containerInstanceArn")) {
    return Error(ClientErrc::server, "RegisterContainerInstance: no containerInstanceArn in reply");
  }
  return std::string(ci->as_object().at("containerInstanceArn").as_string());
}

Result<std::unique_ptr<WebSocketClient>> Session::connect(const std::string& arn) {
  std::string target = channel_target(config_.cluster, arn);
  api::HttpRequest req;
  req.method = "GET";
  req.target = target;
  req.headers = {{"Host", api_.endpoint().host_header()}};
  api::sign_request(req, api_.key(), api_.region(), "ecs", std::chrono::system_clock::now());
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [k, v] : req.headers) {
    if (k != "Host") headers.emplace_back(k, v);
  }
  return WebSocketClient::connect(api_.endpoint().host, api_.endpoint().port, target, headers, 10s);
}

void Session::run(const std::atomic<bool>& stop, std::string arn) {
  auto backoff = config_.min_backoff;
  while (!stop) {
    auto ws = connect(arn);
    if (!ws.ok()) {
      std::fprintf(stderr, "berth agent: connect: %s\n", ws.error().message.c_str());
      if (ws.error().code == WebSocketErrc::kRejected) {
        // E.g. the server lost or deregistered this instance: register again.
        if (auto again = register_instance(arn); again.ok() && *again != arn) {
          arn = *again;
          if (engine_ != nullptr) (void)engine_->set_instance_arn(arn);
        }
      }
      for (auto until = std::chrono::steady_clock::now() + jitter(backoff);
           !stop && std::chrono::steady_clock::now() < until;) {
        std::this_thread::sleep_for(50ms);
      }
      backoff = std::min(backoff * 2, config_.max_backoff);
      continue;
    }
    backoff = config_.min_backoff;
    std::shared_ptr<WebSocketClient> conn(std::move(*ws));
    {
      std::lock_guard lock(mu_);
      ws_ = conn;
      inflight_.clear();
      for (auto& [task, p] : outbox_) send_locked(task, p);
    }
    auto last_heartbeat = std::chrono::steady_clock::now();
    while (!stop) {
      auto msg = conn->receive(250ms);
      if (!msg.ok()) {
        std::fprintf(stderr, "berth agent: session: %s\n", msg.error().message.c_str());
        break;
      }
      if (*msg) handle(**msg);
      if (std::chrono::steady_clock::now() - last_heartbeat >= config_.heartbeat) {
        last_heartbeat = std::chrono::steady_clock::now();
        if (!conn->send(R"({"type":"heartbeat"})").ok()) break;
      }
      if (engine_ != nullptr) engine_->reap();
    }
    {
      std::lock_guard lock(mu_);
      ws_.reset();
      for (auto& [task, p] : outbox_) p.seq = 0;
    }
    conn->close();
  }
}

void Session::handle(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return;
  const auto& m = v.as_object();
  auto* type = m.if_contains("type");
  if (type == nullptr || !type->is_string()) return;
  if (type->as_string() == "tasks" && engine_ != nullptr) {
    const auto* tasks = m.if_contains("tasks");
    json::array none;
    auto taken = engine_->apply(tasks && tasks->is_array() ? tasks->as_array() : none);
    json::array arns;
    for (auto& a : taken) arns.emplace_back(a);
    json::object ack{{"type", "ack"},
                     {"seq", m.contains("seq") ? m.at("seq") : json::value(0)},
                     {"tasks", std::move(arns)}};
    std::shared_ptr<WebSocketClient> ws;
    {
      std::lock_guard lock(mu_);
      ws = ws_;
    }
    if (ws) (void)ws->send(json::serialize(ack));
  } else if (type->as_string() == "state_ack") {
    uint64_t seq =
        m.contains("seq") && m.at("seq").is_number() ? m.at("seq").to_number<uint64_t>() : 0;
    bool ok = m.contains("ok") && m.at("ok").is_bool() && m.at("ok").as_bool();
    std::string arn, status;
    {
      std::lock_guard lock(mu_);
      auto it = inflight_.find(seq);
      if (it == inflight_.end()) return;
      arn = it->second;
      inflight_.erase(it);
      auto p = outbox_.find(arn);
      // A newer report replaced this one: that one still waits for its own acknowledgement.
      if (p == outbox_.end() || p->second.seq != seq) return;
      const auto* s = p->second.report.if_contains("status");
      status = s && s->is_string() ? std::string(s->as_string()) : "";
      outbox_.erase(p);
    }
    if (!ok) {
      // The server refused the report for good (e.g. the task is gone): retrying cannot help.
      const auto* e = m.if_contains("error");
      std::fprintf(stderr, "berth agent: report for %s refused: %s\n", arn.c_str(),
                   e && e->is_string() ? e->as_string().c_str() : "");
    }
    if (status == "STOPPED" && engine_ != nullptr) engine_->stopped_acked(arn);
  }
}

void Session::send_locked(const std::string& arn, Pending& p) {
  if (!ws_) return;
  p.seq = ++next_seq_;
  inflight_[p.seq] = arn;
  json::object msg{{"type", "task_state"}, {"seq", p.seq}, {"report", p.report}};
  // A failed send leaves the report queued: the next connection sends it again.
  (void)ws_->send(json::serialize(msg));
}

void Session::submit(const json::object& report) {
  const auto* t = report.if_contains("task");
  if (t == nullptr || !t->is_string()) return;
  std::string arn(t->as_string());
  std::lock_guard lock(mu_);
  auto& p = outbox_[arn];
  p.report = report;
  p.seq = 0;
  send_locked(arn, p);
}

size_t Session::pending_reports() {
  std::lock_guard lock(mu_);
  return outbox_.size();
}

}  // namespace berth::agent
