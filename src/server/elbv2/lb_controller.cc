#include "server/elbv2/lb_controller.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <map>
#include <set>

#include "server/ecs/context.h"
#include "server/elbv2/records.h"

namespace berth::server::elbv2 {

namespace json = boost::json;
using ecs::opt_array;
using ecs::opt_bool;
using ecs::opt_int;
using ecs::opt_object;
using ecs::opt_string;
using json_util::parse_object;

namespace {

std::string str(const json::object& o, std::string_view k) {
  return std::string(opt_string(o, k).value_or(""));
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

// What a stored (normalised, single) action does: forward to a group, or answer itself.
struct Action {
  std::string target_group;
  std::optional<lb::FixedResponse> fixed;
};

Action action_of(const json::object& holder, std::string_view member) {
  Action a;
  const json::array* actions = opt_array(holder, member);
  if (actions == nullptr || actions->empty()) return a;
  auto groups = forwarded_target_groups(*actions);
  if (!groups.empty()) {
    a.target_group = groups.front();
    return a;
  }
  for (const auto& v : *actions) {
    if (!v.is_object() || opt_string(v.as_object(), "Type") != "fixed-response") continue;
    const json::object* cfg = opt_object(v.as_object(), "FixedResponseConfig");
    if (cfg == nullptr) continue;
    lb::FixedResponse f;
    f.status = static_cast<int>(std::strtol(str(*cfg, "StatusCode").c_str(), nullptr, 10));
    f.content_type = opt_string(*cfg, "ContentType").value_or("text/plain");
    f.body = str(*cfg, "MessageBody");
    a.fixed = std::move(f);
    break;
  }
  return a;
}

std::vector<std::string> condition_values(const json::object& c, std::string_view config) {
  std::vector<std::string> out;
  auto collect = [&](const json::array* values) {
    if (values == nullptr) return;
    for (const auto& s : *values) {
      if (s.is_string()) out.emplace_back(s.as_string());
    }
  };
  // Rules store both forms (as AWS echoes them): the typed config when present, else Values.
  if (const json::object* cfg = opt_object(c, config)) collect(opt_array(*cfg, "Values"));
  if (out.empty()) collect(opt_array(c, "Values"));
  return out;
}

json::object health_object(std::string_view state, std::string_view reason,
                           std::string_view description) {
  json::object h{{"State", state}};
  if (!reason.empty()) h["Reason"] = reason;
  if (!description.empty()) h["Description"] = description;
  return h;
}

}  // namespace

Result<LbController::Snapshot> LbController::snapshot() {
  Snapshot out;
  auto scan = [&](std::string_view prefix) -> Result<std::vector<store::KeyValue>> {
    auto r = store_.range({std::string(prefix), "", 0});
    if (!r.ok()) return r.error();
    return std::move(r->kvs);
  };
  BERTH_TRY(auto lbs, scan(keys::kLoadBalancers));
  BERTH_TRY(auto listeners, scan(keys::kListeners));
  BERTH_TRY(auto rules, scan(keys::kRules));
  BERTH_TRY(auto groups, scan(keys::kTargetGroups));
  BERTH_TRY(out.targets, scan(keys::kTargets));
  // Instance addresses are only needed for targets; a server with no load-balanced service does
  // not read every container instance twice a second.
  std::vector<store::KeyValue> instances;
  if (!out.targets.empty()) {
    BERTH_TRY(instances, scan("instances/"));
  }

  std::map<std::string, std::string> lb_address;  // LB ARN -> listen address
  for (const auto& kv : lbs) {
    auto o = parse_object(kv.value);
    if (!o) continue;
    const json::object* internal = opt_object(*o, "_berth");
    std::string address = internal ? str(*internal, "address") : "";
    lb_address[str(*o, "LoadBalancerArn")] = address.empty() ? "0.0.0.0" : address;
  }
  // Rules by listener id, in priority order.
  std::map<std::string, std::vector<lb::Route>> routes;
  std::set<std::string> used;  // target group ARNs traffic can reach
  for (const auto& kv : rules) {
    auto o = parse_object(kv.value);
    if (!o || opt_bool(*o, "IsDefault").value_or(false)) continue;
    std::string listener_id = kv.key.substr(keys::kRules.size());
    listener_id = listener_id.substr(0, listener_id.find('/'));
    Action action = action_of(*o, "Actions");
    lb::Route route;
    route.priority = static_cast<int>(std::strtol(str(*o, "Priority").c_str(), nullptr, 10));
    if (const json::array* cs = opt_array(*o, "Conditions")) {
      for (const auto& c : *cs) {
        if (!c.is_object()) continue;
        std::string field = str(c.as_object(), "Field");
        auto& into = field == "path-pattern" ? route.path_patterns : route.host_patterns;
        if (field != "path-pattern" && field != "host-header") continue;
        for (auto& v : condition_values(
                 c.as_object(), field == "path-pattern" ? "PathPatternConfig" : "HostHeaderConfig"))
          into.push_back(std::move(v));
      }
    }
    if (!action.target_group.empty()) {
      route.backend = backend_id(action.target_group);
      used.insert(action.target_group);
    } else if (action.fixed) {
      route.fixed = std::move(action.fixed);
    } else {
      continue;  // nothing the data plane can do with it
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
    auto addr = lb_address.find(str(*o, "LoadBalancerArn"));
    if (addr == lb_address.end()) continue;  // its load balancer is being deleted
    lb::Frontend f;
    std::string id = last_element(str(*o, "ListenerArn"));
    f.id = "l_" + id;
    f.address = addr->second;
    f.port = static_cast<int>(opt_int(*o, "Port").value_or(80));
    Action action = action_of(*o, "DefaultActions");
    if (!action.target_group.empty()) {
      f.default_backend = backend_id(action.target_group);
      used.insert(action.target_group);
    }
    f.default_fixed = std::move(action.fixed);
    if (auto it = routes.find(id); it != routes.end()) f.routes = it->second;
    out.desired.frontends.push_back(std::move(f));
  }
  std::map<std::string, std::string> group_type;  // backend id -> target type
  for (const auto& kv : groups) {
    auto o = parse_object(kv.value);
    if (!o) continue;
    std::string arn = str(*o, "TargetGroupArn");
    out.delay["tg_" + last_element(arn)] = std::strtod(
        target_group_attribute(*o, "deregistration_delay.timeout_seconds").c_str(), nullptr);
    if (!used.contains(arn)) continue;
    lb::Backend b;
    b.id = backend_id(arn);
    b.health_check.enabled = opt_bool(*o, "HealthCheckEnabled").value_or(true);
    if (auto path = opt_string(*o, "HealthCheckPath")) b.health_check.path = *path;
    std::string port = str(*o, "HealthCheckPort");
    if (!port.empty() && port != "traffic-port")
      b.health_check.port = static_cast<int>(std::strtol(port.c_str(), nullptr, 10));
    b.health_check.interval_seconds =
        static_cast<int>(opt_int(*o, "HealthCheckIntervalSeconds").value_or(30));
    b.health_check.timeout_seconds =
        static_cast<int>(opt_int(*o, "HealthCheckTimeoutSeconds").value_or(5));
    b.health_check.healthy_threshold =
        static_cast<int>(opt_int(*o, "HealthyThresholdCount").value_or(5));
    b.health_check.unhealthy_threshold =
        static_cast<int>(opt_int(*o, "UnhealthyThresholdCount").value_or(2));
    if (const json::object* m = opt_object(*o, "Matcher")) {
      if (auto code = opt_string(*m, "HttpCode")) b.health_check.matcher = *code;
    }
    out.first_verdict[b.id] =
        static_cast<double>(b.health_check.interval_seconds) * b.health_check.unhealthy_threshold;
    group_type[b.id] = str(*o, "TargetType");
    out.desired.backends.push_back(std::move(b));
  }
  // Instance targets resolve to their container instance's advertised address.
  std::map<std::string, std::string> instance_address;
  for (const auto& kv : instances) {
    auto o = parse_object(kv.value);
    if (!o) continue;
    std::string address = "127.0.0.1";
    if (const json::array* attrs = opt_array(*o, "attributes")) {
      for (const auto& a : *attrs) {
        if (a.is_object() && opt_string(a.as_object(), "name") == "berth.host-address")
          address = str(a.as_object(), "value");
      }
    }
    instance_address[str(*o, "ec2InstanceId")] = address;
  }
  for (const auto& kv : out.targets) {
    auto o = parse_object(kv.value);
    if (!o) continue;
    std::string tg_id = kv.key.substr(keys::kTargets.size());
    tg_id = tg_id.substr(0, tg_id.find('/'));
    std::string backend = "tg_" + tg_id;
    std::string id = str(*o, "Id");
    int64_t port = opt_int(*o, "Port").value_or(0);
    bool draining = opt_string(*o, "state") == "draining";
    if (!group_type.contains(backend)) {
      if (!draining)
        out.forced[kv.key] = health_object("unused", "Target.NotInUse",
                                           "Target group is not configured to receive traffic "
                                           "from the load balancer");
      continue;
    }
    lb::Server s;
    s.backend = backend;
    s.name = server_name(id, port);
    if (group_type[backend] == "ip") {
      s.address = id;
    } else {
      auto it = instance_address.find(id);
      if (it == instance_address.end()) {
        // Never guess an address: an unknown instance gets no traffic.
        if (!draining)
          out.forced[kv.key] = health_object("unused", "Target.InvalidState",
                                             "Target is not a registered container instance");
        continue;
      }
      s.address = it->second;
    }
    s.port = static_cast<int>(port);
    s.draining = draining;
    out.served[kv.key] = {s.backend, s.name};
    out.desired.servers.push_back(std::move(s));
  }
  return out;
}

Result<lb::DesiredState> LbController::desired_state() {
  BERTH_TRY(Snapshot s, snapshot());
  return std::move(s.desired);
}

Status LbController::reconcile_once() {
  double now = epoch_seconds(clock_.now());
  BERTH_TRY(Snapshot snap, snapshot());
  // A data plane failure (a port it cannot bind, a dead proxy) is reported, but health already
  // observed and drain expiry still move on, so deployments and drains are not stuck behind it.
  Status failed;
  std::map<std::pair<std::string, std::string>, lb::ServerHealth> health;
  if (data_plane_ != nullptr) {
    failed = data_plane_->apply(snap.desired);
    auto observed = data_plane_->health();
    if (observed.ok()) {
      for (auto& h : *observed) health[{h.backend, h.name}] = std::move(h);
    } else if (failed.ok()) {
      failed = observed.error();
    }
  }
  for (const auto& kv : snap.targets) {
    auto o = parse_object(kv.value);
    if (!o) continue;
    std::string tg_id = kv.key.substr(keys::kTargets.size());
    tg_id = tg_id.substr(0, tg_id.find('/'));
    store::Txn txn;
    txn.compares.push_back({kv.key, kv.mod_revision});
    if (opt_string(*o, "state") == "draining") {
      auto* since = o->if_contains("drainingSince");
      double started = since && since->is_number() ? since->to_number<double>() : now;
      auto d = snap.delay.find("tg_" + tg_id);
      if (d != snap.delay.end() && now - started < d->second) continue;
      txn.ops.push_back(store::Op::del(kv.key));  // drained, or its group is gone
    } else if (data_plane_ != nullptr) {          // without one, nothing is observed
      json::object observed;
      if (auto f = snap.forced.find(kv.key); f != snap.forced.end()) {
        observed = f->second;
      } else if (auto s = snap.served.find(kv.key); s != snap.served.end()) {
        auto h = health.find(s->second);
        if (h == health.end()) continue;
        observed = health_object(h->second.state, h->second.reason, h->second.description);
        // ELB gives a new target UnhealthyThresholdCount failed checks before its first verdict;
        // the proxy marks it down at the first failure, so a target that has not been healthy
        // yet stays "initial" for that long (a slow-starting app is not replaced at once).
        const json::object* stored = opt_object(*o, "health");
        auto stored_state = stored ? opt_string(*stored, "State") : std::nullopt;
        auto* at = o->if_contains("registeredAt");
        double since = at && at->is_number() ? at->to_number<double>() : now;
        if (h->second.state == "unhealthy" && (!stored_state || *stored_state == "initial") &&
            now - since < snap.first_verdict[s->second.first])
          observed = health_object("initial", "Elb.InitialHealthChecking",
                                   "Initial health checks in progress");
      } else {
        continue;
      }
      auto* stored = o->if_contains("health");
      if (stored && *stored == json::value(observed)) continue;
      (*o)["health"] = std::move(observed);
      txn.ops.push_back(store::Op::put(kv.key, json::serialize(*o)));
    } else {
      continue;
    }
    auto c = store_.commit(txn);
    // A conflict means the API changed the target meanwhile: the next pass sees the new record.
    if (!c.ok() && c.error().code != store::Errc::conflict) return c.error();
  }
  return failed;
}

void LbController::start(std::chrono::milliseconds period) {
  // Its own health writes wake it once more too; that pass finds nothing to change.
  loop_.start(store_, {"elb/"}, period);
}

void LbController::stop() { loop_.stop(); }

}  // namespace berth::server::elbv2
