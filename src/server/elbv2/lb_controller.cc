#include "server/elbv2/lb_controller.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <map>
#include <set>

#include "server/elbv2/records.h"

namespace berth::server::elbv2 {

namespace json = boost::json;

namespace {

std::optional<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

std::string str(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

int64_t num(const json::object& o, std::string_view k, int64_t dflt) {
  auto* v = o.if_contains(k);
  if (v == nullptr) return dflt;
  if (v->is_number()) return v->to_number<int64_t>();
  if (v->is_string()) return std::strtoll(std::string(v->as_string()).c_str(), nullptr, 10);
  return dflt;
}

const json::object* internal_of(const json::object& o) {
  auto* v = o.if_contains("_berth");
  return v && v->is_object() ? &v->as_object() : nullptr;
}

std::string last_element(std::string_view arn) {
  auto slash = arn.rfind('/');
  return std::string(slash == std::string_view::npos ? arn : arn.substr(slash + 1));
}

std::string backend_id(std::string_view tg_arn) { return "tg_" + last_element(tg_arn); }

// A proxy-safe server name for a target: ids and addresses keep [A-Za-z0-9-], the rest is '-'.
std::string server_name(std::string_view id, int64_t port) {
  std::string out;
  for (char c : id) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' ? c : '-';
  return out + "_" + std::to_string(port);
}

// The group an action list forwards to (the first forward action's group, or the heaviest of a
// ForwardConfig), or "" for fixed responses and redirects.
std::string forward_target(const json::object& holder, std::string_view member) {
  auto* actions = holder.if_contains(member);
  if (actions == nullptr || !actions->is_array()) return "";
  for (const auto& a : actions->as_array()) {
    if (!a.is_object() || str(a.as_object(), "Type") != "forward") continue;
    std::string arn = str(a.as_object(), "TargetGroupArn");
    if (!arn.empty()) return arn;
    auto* fc = a.as_object().if_contains("ForwardConfig");
    if (fc == nullptr || !fc->is_object()) continue;
    auto* groups = fc->as_object().if_contains("TargetGroups");
    if (groups == nullptr || !groups->is_array()) continue;
    int64_t best = -1;
    for (const auto& g : groups->as_array()) {
      int64_t w = num(g.as_object(), "Weight", 1);
      if (w > best) {
        best = w;
        arn = str(g.as_object(), "TargetGroupArn");
      }
    }
    return arn;
  }
  return "";
}

std::vector<std::string> condition_values(const json::object& c, std::string_view config) {
  std::vector<std::string> out;
  auto collect = [&](const json::value* v) {
    if (v == nullptr || !v->is_array()) return;
    for (const auto& s : v->as_array()) {
      if (s.is_string()) out.emplace_back(s.as_string());
    }
  };
  // Rules store both forms (as AWS echoes them): the typed config when present, else Values.
  if (auto* cfg = c.if_contains(config); cfg && cfg->is_object())
    collect(cfg->as_object().if_contains("Values"));
  if (out.empty()) collect(c.if_contains("Values"));
  return out;
}

}  // namespace

Result<lb::DesiredState> LbController::desired_state() {
  lb::DesiredState out;
  auto scan = [&](std::string_view prefix) -> Result<std::vector<store::KeyValue>> {
    auto r = store_.range({std::string(prefix), "", 0});
    if (!r.ok()) return r.error();
    return std::move(r->kvs);
  };
  BERTH_TRY(auto lbs, scan(keys::kLoadBalancers));
  BERTH_TRY(auto listeners, scan(keys::kListeners));
  BERTH_TRY(auto rules, scan(keys::kRules));
  BERTH_TRY(auto groups, scan(keys::kTargetGroups));
  BERTH_TRY(auto targets, scan(keys::kTargets));
  BERTH_TRY(auto instances, scan("instances/"));

  std::map<std::string, std::string> lb_address;  // LB ARN -> listen address
  for (const auto& kv : lbs) {
    auto o = parse_object(kv.value);
    if (!o) continue;
    const json::object* internal = internal_of(*o);
    std::string address = internal ? str(*internal, "address") : "";
    lb_address[str(*o, "LoadBalancerArn")] = address.empty() ? "0.0.0.0" : address;
  }
  // Rules by listener id, non-default ones in priority order.
  std::map<std::string, std::vector<lb::Route>> routes;
  std::set<std::string> used;  // target group ARNs traffic can reach
  for (const auto& kv : rules) {
    auto o = parse_object(kv.value);
    if (!o) continue;
    std::string listener_id = kv.key.substr(keys::kRules.size());
    listener_id = listener_id.substr(0, listener_id.find('/'));
    auto* is_default = o->if_contains("IsDefault");
    if (is_default && is_default->is_bool() && is_default->as_bool()) continue;
    std::string tg = forward_target(*o, "Actions");
    lb::Route route;
    route.priority = static_cast<int>(num(*o, "Priority", 50000));
    if (auto* cs = o->if_contains("Conditions"); cs && cs->is_array()) {
      for (const auto& c : cs->as_array()) {
        if (!c.is_object()) continue;
        std::string field = str(c.as_object(), "Field");
        if (field == "path-pattern") {
          for (auto& v : condition_values(c.as_object(), "PathPatternConfig"))
            route.path_patterns.push_back(std::move(v));
        } else if (field == "host-header") {
          for (auto& v : condition_values(c.as_object(), "HostHeaderConfig"))
            route.host_patterns.push_back(std::move(v));
        }
      }
    }
    if (!tg.empty()) {
      route.backend = backend_id(tg);
      used.insert(tg);
    }
    routes[listener_id].push_back(std::move(route));
  }
  for (auto& [id, list] : routes) {
    std::stable_sort(list.begin(), list.end(), [](const lb::Route& a, const lb::Route& b) {
      return a.priority < b.priority;
    });
  }
  for (const auto& kv : listeners) {
    auto o = parse_object(kv.value);
    if (!o) continue;
    lb::Frontend f;
    std::string id = last_element(str(*o, "ListenerArn"));
    f.id = "l_" + id;
    auto addr = lb_address.find(str(*o, "LoadBalancerArn"));
    if (addr == lb_address.end()) continue;  // its load balancer is being deleted
    f.address = addr->second;
    f.port = static_cast<int>(num(*o, "Port", 80));
    std::string tg = forward_target(*o, "DefaultActions");
    if (!tg.empty()) {
      f.default_backend = backend_id(tg);
      used.insert(tg);
    }
    if (auto it = routes.find(id); it != routes.end()) f.routes = it->second;
    out.frontends.push_back(std::move(f));
  }
  std::set<std::string> backends;
  std::map<std::string, std::string> group_type;  // backend id -> target type
  for (const auto& kv : groups) {
    auto o = parse_object(kv.value);
    if (!o) continue;
    std::string arn = str(*o, "TargetGroupArn");
    if (!used.contains(arn)) continue;
    lb::Backend b;
    b.id = backend_id(arn);
    auto* enabled = o->if_contains("HealthCheckEnabled");
    b.health_check.enabled = !(enabled && enabled->is_bool() && !enabled->as_bool());
    std::string path = str(*o, "HealthCheckPath");
    if (!path.empty()) b.health_check.path = path;
    std::string port = str(*o, "HealthCheckPort");
    if (!port.empty() && port != "traffic-port")
      b.health_check.port = static_cast<int>(std::strtol(port.c_str(), nullptr, 10));
    b.health_check.interval_seconds = static_cast<int>(num(*o, "HealthCheckIntervalSeconds", 30));
    b.health_check.timeout_seconds = static_cast<int>(num(*o, "HealthCheckTimeoutSeconds", 5));
    b.health_check.healthy_threshold = static_cast<int>(num(*o, "HealthyThresholdCount", 5));
    b.health_check.unhealthy_threshold = static_cast<int>(num(*o, "UnhealthyThresholdCount", 2));
    if (auto* m = o->if_contains("Matcher"); m && m->is_object()) {
      std::string code = str(m->as_object(), "HttpCode");
      if (!code.empty()) b.health_check.matcher = code;
    }
    backends.insert(b.id);
    group_type[b.id] = str(*o, "TargetType");
    out.backends.push_back(std::move(b));
  }
  // Instance targets resolve to their container instance's address.
  std::map<std::string, std::string> instance_address;
  for (const auto& kv : instances) {
    auto o = parse_object(kv.value);
    if (!o) continue;
    std::string address = "127.0.0.1";
    if (auto* attrs = o->if_contains("attributes"); attrs && attrs->is_array()) {
      for (const auto& a : attrs->as_array()) {
        if (a.is_object() && str(a.as_object(), "name") == "berth.host-address")
          address = str(a.as_object(), "value");
      }
    }
    instance_address[str(*o, "ec2InstanceId")] = address;
  }
  for (const auto& kv : targets) {
    auto o = parse_object(kv.value);
    if (!o) continue;
    std::string tg_id = kv.key.substr(keys::kTargets.size());
    tg_id = tg_id.substr(0, tg_id.find('/'));
    std::string backend = "tg_" + tg_id;
    if (!backends.contains(backend)) continue;
    lb::Server s;
    s.backend = backend;
    std::string id = str(*o, "Id");
    int64_t port = num(*o, "Port", 0);
    s.name = server_name(id, port);
    if (group_type[backend] == "ip") {
      s.address = id;
    } else {
      auto it = instance_address.find(id);
      s.address = it == instance_address.end() ? "127.0.0.1" : it->second;
    }
    s.port = static_cast<int>(port);
    s.draining = str(*o, "state") == "draining";
    out.servers.push_back(std::move(s));
  }
  return out;
}

Status LbController::reconcile_once() {
  double now = epoch_seconds(clock_.now());
  std::map<std::pair<std::string, std::string>, lb::ServerHealth> health;
  if (data_plane_ != nullptr) {
    BERTH_TRY(lb::DesiredState desired, desired_state());
    BERTH_CHECK(data_plane_->apply(desired));
    BERTH_TRY(auto observed, data_plane_->health());
    for (auto& h : observed) health[{h.backend, h.name}] = std::move(h);
  }
  // Deregistration delays by target group id.
  std::map<std::string, double> delay;
  {
    auto r = store_.range({std::string(keys::kTargetGroups), "", 0});
    if (!r.ok()) return r.error();
    for (const auto& kv : r->kvs) {
      auto o = parse_object(kv.value);
      if (!o) continue;
      double d = 300;
      if (const json::object* internal = internal_of(*o)) {
        if (auto* attrs = internal->if_contains("attributes"); attrs && attrs->is_object()) {
          std::string v = str(attrs->as_object(), "deregistration_delay.timeout_seconds");
          if (!v.empty()) d = std::strtod(v.c_str(), nullptr);
        }
      }
      delay[last_element(str(*o, "TargetGroupArn"))] = d;
    }
  }
  auto r = store_.range({std::string(keys::kTargets), "", 0});
  if (!r.ok()) return r.error();
  for (const auto& kv : r->kvs) {
    auto o = parse_object(kv.value);
    if (!o) continue;
    std::string tg_id = kv.key.substr(keys::kTargets.size());
    tg_id = tg_id.substr(0, tg_id.find('/'));
    store::Txn txn;
    txn.compares.push_back({kv.key, kv.mod_revision});
    if (str(*o, "state") == "draining") {
      auto* since = o->if_contains("drainingSince");
      double started = since && since->is_number() ? since->to_number<double>() : now;
      auto d = delay.find(tg_id);
      if (d != delay.end() && now - started < d->second) continue;
      txn.ops.push_back(store::Op::del(kv.key));  // drained, or its group is gone
    } else {
      auto h = health.find({"tg_" + tg_id, server_name(str(*o, "Id"), num(*o, "Port", 0))});
      if (h == health.end()) continue;
      json::object observed{{"State", h->second.state}};
      if (!h->second.reason.empty()) observed["Reason"] = h->second.reason;
      if (!h->second.description.empty()) observed["Description"] = h->second.description;
      auto* stored = o->if_contains("health");
      if (stored && *stored == json::value(observed)) continue;
      (*o)["health"] = std::move(observed);
      txn.ops.push_back(store::Op::put(kv.key, json::serialize(*o)));
    }
    auto c = store_.commit(txn);
    // A conflict means the API changed the target meanwhile: the next pass sees the new record.
    if (!c.ok() && c.error().code != store::Errc::conflict) return c.error();
  }
  return {};
}

void LbController::start(std::chrono::milliseconds period) {
  // Its own health writes wake it once more too; that pass finds nothing to change.
  watch_ = store_.watch("elb/", [this](const std::vector<store::Event>&, int64_t) {
    {
      std::lock_guard lock(mu_);
      dirty_ = true;
    }
    cv_.notify_all();
  });
  thread_ = std::thread([this, period] {
    std::unique_lock lock(mu_);
    while (!stop_) {
      cv_.wait_for(lock, period, [this] { return stop_ || dirty_; });
      if (stop_) break;
      dirty_ = false;
      lock.unlock();
      auto r = reconcile_once();
      std::string err = r.ok() ? "" : r.error().message;
      // One line per distinct failure: a missing proxy would otherwise log every pass.
      if (err != last_error_ && !err.empty())
        std::fprintf(stderr, "berth: load balancer controller: %s\n", err.c_str());
      last_error_ = err;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      lock.lock();
    }
  });
}

void LbController::stop() {
  watch_.reset();
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace berth::server::elbv2
