#include "server/elbv2/service_targets.h"

#include "server/ecs/context.h"
#include "server/elbv2/records.h"

namespace berth::server::elbv2 {

namespace json = boost::json;
using ecs::opt_int;
using ecs::opt_object;
using ecs::opt_string;
using json_util::parse_object;

namespace {

double deregistration_delay(const json::object& tg) {
  return std::strtod(target_group_attribute(tg, "deregistration_delay.timeout_seconds").c_str(),
                     nullptr);
}

ecs::TargetState target_state(const json::object& t) {
  ecs::TargetState s;
  s.id = opt_string(t, "Id").value_or("");
  s.port = opt_int(t, "Port").value_or(0);
  s.owner = opt_string(t, "owner").value_or("");
  s.draining = opt_string(t, "state") == "draining";
  if (const json::object* h = opt_object(t, "health")) {
    s.health = opt_string(*h, "State").value_or("");
    s.reason = opt_string(*h, "Reason").value_or("");
  }
  return s;
}

}  // namespace

Result<std::optional<ecs::TargetGroupInfo>> StoreLoadBalancing::target_group(std::string_view arn) {
  auto parts = parse_arn(arn);
  if (!parts || parts->kind != "targetgroup") return std::optional<ecs::TargetGroupInfo>();
  BERTH_TRY(auto doc, ecs::load_doc(store_, keys::target_group(parts->name)));
  if (!doc || opt_string(doc->obj, "TargetGroupArn") != arn)
    return std::optional<ecs::TargetGroupInfo>();
  ecs::TargetGroupInfo info;
  info.arn = std::string(arn);
  info.target_type = opt_string(doc->obj, "TargetType").value_or("instance");
  info.deregistration_delay = deregistration_delay(doc->obj);
  auto attached = target_group_load_balancers(store_);
  if (!attached.ok()) return ecs::store_failure(attached.error());
  info.has_load_balancer = attached->contains(info.arn);
  return std::optional<ecs::TargetGroupInfo>(std::move(info));
}

Result<std::map<std::string, ecs::TargetState>> StoreLoadBalancing::targets(
    std::string_view tg_arn) {
  std::map<std::string, ecs::TargetState> out;
  auto parts = parse_arn(tg_arn);
  if (!parts) return out;
  std::string prefix = keys::target_prefix(parts->id);
  auto r = store_.range({prefix, "", 0});
  if (!r.ok()) return ecs::store_failure(r.error());
  for (const auto& kv : r->kvs) {
    if (auto t = parse_object(kv.value)) out[kv.key.substr(prefix.size())] = target_state(*t);
  }
  return out;
}

Result<std::vector<ecs::OwnedTarget>> StoreLoadBalancing::targets_owned_by(
    const std::set<std::string>& task_arns) {
  std::vector<ecs::OwnedTarget> out;
  if (task_arns.empty()) return out;
  auto targets = store_.range({std::string(keys::kTargets), "", 0});
  if (!targets.ok()) return ecs::store_failure(targets.error());
  std::map<std::string, std::pair<std::string, double>> groups;  // id -> (ARN, delay)
  bool groups_read = false;
  for (const auto& kv : targets->kvs) {
    // Cheap filter before parsing: most targets belong to other services' tasks.
    auto owner_at = kv.value.find("\"owner\"");
    if (owner_at == std::string::npos) continue;
    auto t = parse_object(kv.value);
    if (!t) continue;
    ecs::TargetState state = target_state(*t);
    if (!task_arns.contains(state.owner)) continue;
    if (!groups_read) {
      auto tgs = store_.range({std::string(keys::kTargetGroups), "", 0});
      if (!tgs.ok()) return ecs::store_failure(tgs.error());
      for (const auto& g : tgs->kvs) {
        auto o = parse_object(g.value);
        if (!o) continue;
        std::string arn(opt_string(*o, "TargetGroupArn").value_or(""));
        if (auto p = parse_arn(arn)) groups[p->id] = {arn, deregistration_delay(*o)};
      }
      groups_read = true;
    }
    std::string rest = kv.key.substr(keys::kTargets.size());
    std::string tg_id = rest.substr(0, rest.find('/'));
    auto g = groups.find(tg_id);
    if (g == groups.end()) continue;  // its group is being deleted with its targets
    out.push_back(
        {g->second.first, rest.substr(tg_id.size() + 1), std::move(state), g->second.second});
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

std::string StoreLoadBalancing::targets_prefix() const { return std::string(keys::kTargets); }

}  // namespace berth::server::elbv2
