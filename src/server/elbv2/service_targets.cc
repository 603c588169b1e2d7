#include "server/elbv2/service_targets.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "model/elbv2_errors.h"
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

Error store_error(const Error& e) {
  return Error(model::ElbErrc::health_unavailable, "The store failed: " + e.message);
}

}  // namespace

Result<std::optional<ecs::TargetGroupInfo>> StoreLoadBalancing::target_group(std::string_view arn) {
  auto parts = parse_arn(arn);
  if (!parts || parts->kind != "targetgroup") return std::optional<ecs::TargetGroupInfo>();
  auto kv = store_.get(keys::target_group(parts->name));
  if (!kv.ok()) return store_error(kv.error());
  if (!*kv) return std::optional<ecs::TargetGroupInfo>();
  auto tg = parse_object((*kv)->value);
  if (!tg || str(*tg, "TargetGroupArn") != arn) return std::optional<ecs::TargetGroupInfo>();
  ecs::TargetGroupInfo info;
  info.arn = std::string(arn);
  info.target_type = str(*tg, "TargetType");
  if (info.target_type.empty()) info.target_type = "instance";
  if (const auto* internal = tg->if_contains("_berth"); internal && internal->is_object()) {
    if (const auto* attrs = internal->as_object().if_contains("attributes");
        attrs && attrs->is_object()) {
      std::string d = str(attrs->as_object(), "deregistration_delay.timeout_seconds");
      if (!d.empty()) info.deregistration_delay = std::strtod(d.c_str(), nullptr);
    }
  }
  // Attached when a listener's default action or a rule forwards to it.
  std::string quoted = "\"";
  quoted += arn;
  quoted += '"';
  for (std::string_view prefix : {keys::kListeners, keys::kRules}) {
    auto r = store_.range({std::string(prefix), "", 0});
    if (!r.ok()) return store_error(r.error());
    for (const auto& l : r->kvs)
      info.has_load_balancer |= l.value.find(quoted) != std::string::npos;
  }
  return std::optional<ecs::TargetGroupInfo>(std::move(info));
}

Result<std::map<std::string, ecs::TargetState>> StoreLoadBalancing::targets(
    std::string_view tg_arn) {
  std::map<std::string, ecs::TargetState> out;
  auto parts = parse_arn(tg_arn);
  if (!parts) return out;
  std::string prefix = keys::target_prefix(parts->id);
  auto r = store_.range({prefix, "", 0});
  if (!r.ok()) return store_error(r.error());
  for (const auto& kv : r->kvs) {
    auto t = parse_object(kv.value);
    if (!t) continue;
    ecs::TargetState s;
    s.id = str(*t, "Id");
    if (auto* p = t->if_contains("Port"); p && p->is_number()) s.port = p->to_number<int64_t>();
    s.owner = str(*t, "owner");
    s.draining = str(*t, "state") == "draining";
    if (auto* h = t->if_contains("health"); h && h->is_object()) {
      s.health = str(h->as_object(), "State");
      s.reason = str(h->as_object(), "Reason");
    }
    out[kv.key.substr(prefix.size())] = std::move(s);
  }
  return out;
}

std::string StoreLoadBalancing::target_key(const ecs::TargetGroupInfo& tg,
                                           const ecs::TaskEndpoint& endpoint) {
  const std::string& id = tg.target_type == "ip" ? endpoint.host_address : endpoint.ec2_instance_id;
  return id + "!" + std::to_string(endpoint.port);
}

Status StoreLoadBalancing::register_task(const ecs::TargetGroupInfo& tg,
                                         const ecs::TaskEndpoint& endpoint,
                                         std::string_view task_arn) {
  const std::string& id = tg.target_type == "ip" ? endpoint.host_address : endpoint.ec2_instance_id;
  return register_target(store_, epoch_seconds(clock_.now()), tg.arn, id, endpoint.port, task_arn);
}

Status StoreLoadBalancing::deregister(std::string_view tg_arn, std::string_view target_key) {
  auto bang = target_key.rfind('!');
  if (bang == std::string_view::npos) return {};
  int64_t port = std::strtoll(std::string(target_key.substr(bang + 1)).c_str(), nullptr, 10);
  return deregister_target(store_, epoch_seconds(clock_.now()), tg_arn, target_key.substr(0, bang),
                           port);
}

}  // namespace berth::server::elbv2
