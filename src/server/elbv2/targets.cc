// Targets: RegisterTargets, DeregisterTargets, DescribeTargetHealth.
//
// Registrations are the target records of records.h, written through register_target /
// deregister_target exactly as the ECS service controller writes them. Health is what the LB
// controller observed, overridden by what the configuration alone decides: a draining target is
// "draining", a target of a group no rule forwards to is "unused", and a group with health checks
// disabled reports "unavailable" (as AWS does).

#include <cctype>

#include "server/elbv2/context.h"

namespace berth::server::elbv2 {

namespace {

// AWS's limit of targets per target group.
constexpr size_t kMaxTargets = 1000;

bool valid_instance_id(std::string_view id) {
  if (!id.starts_with("i-")) return false;
  std::string_view hex = id.substr(2);
  if (hex.size() != 8 && hex.size() != 17) return false;
  for (char c : hex) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

struct Wanted {
  std::string id;
  int64_t port;
  std::string zone;
  bool port_given;
};

// The request's targets with ports defaulted to the group's; InvalidTarget for ids that are not
// of the group's target type.
Result<std::vector<Wanted>> targets_from(const json::object& in, const json::object& tg) {
  std::vector<Wanted> out;
  bool ip = opt_string(tg, "TargetType") == "ip";
  int64_t default_port = opt_int(tg, "Port").value_or(0);
  std::string invalid;
  if (const json::array* list = opt_array(in, "Targets")) {
    for (const auto& v : *list) {
      const auto& t = v.as_object();
      std::string id(opt_string(t, "Id").value_or(""));
      if (ip ? !valid_ipv4(id) : !valid_instance_id(id)) {
        invalid += (invalid.empty() ? "" : ", ") + quoted(id);
        continue;
      }
      auto port = opt_int(t, "Port");
      if (port && (*port < 1 || *port > 65535)) {
        return validation("Target port must be between 1 and 65535");
      }
      out.push_back({id, port.value_or(default_port),
                     std::string(opt_string(t, "AvailabilityZone").value_or("")),
                     port.has_value()});
    }
  }
  if (!invalid.empty()) {
    return Error(model::ElbErrc::invalid_target,
                 std::string("The following targets are not valid ") +
                     (ip ? "IPv4 addresses" : "instance IDs") + ": " + invalid);
  }
  return out;
}

Result<json::value> register_targets(ElbContext& ctx, const json::object& in) {
  std::string arn(opt_string(in, "TargetGroupArn").value_or(""));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Record tg, load_target_group(ctx, arn));
    BERTH_TRY(auto wanted, targets_from(in, tg.obj));
    if (wanted.empty()) return validation("At least one target must be specified");
    auto tg_id = parse_arn(arn)->id;
    BERTH_TRY(auto existing, scan(ctx.store(), keys::target_prefix(tg_id)));
    std::set<std::string> all;
    for (const auto& r : existing) all.insert(r.key);
    for (const auto& w : wanted) all.insert(keys::target(tg_id, w.id, w.port));
    if (all.size() > kMaxTargets) {
      return Error(model::ElbErrc::too_many_targets,
                   "A target group can have at most 1000 registered targets");
    }
    for (const auto& w : wanted) {
      BERTH_CHECK(register_target(ctx.store(), ctx.now(), arn, w.id, w.port, "", w.zone));
    }
    return json::object{};
  });
}

Result<json::value> deregister_targets(ElbContext& ctx, const json::object& in) {
  std::string arn(opt_string(in, "TargetGroupArn").value_or(""));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Record tg, load_target_group(ctx, arn));
    BERTH_TRY(auto wanted, targets_from(in, tg.obj));
    if (wanted.empty()) return validation("At least one target must be specified");
    auto tg_id = parse_arn(arn)->id;
    std::string missing;
    for (const auto& w : wanted) {
      BERTH_TRY(auto doc, load_doc(ctx.store(), keys::target(tg_id, w.id, w.port)));
      if (!doc) {
        missing += (missing.empty() ? "" : ", ") + quoted(w.id + ":" + std::to_string(w.port));
      }
    }
    if (!missing.empty()) {
      return Error(
          model::ElbErrc::invalid_target,
          "The following targets are not registered in target group '" + arn + "': " + missing);
    }
    for (const auto& w : wanted) {
      BERTH_CHECK(deregister_target(ctx.store(), ctx.now(), arn, w.id, w.port));
    }
    return json::object{};
  });
}

json::object health(std::string_view state, std::string_view reason, std::string_view text) {
  return json::object{{"State", state}, {"Reason", reason}, {"Description", text}};
}

// The port health checks probe: the group's, or the target's own ("traffic-port").
std::string health_check_port(const json::object& tg, int64_t target_port) {
  auto port = opt_string(tg, "HealthCheckPort").value_or("traffic-port");
  return port == "traffic-port" ? std::to_string(target_port) : std::string(port);
}

json::object describe(const json::object& tg, bool in_use, const json::object& target) {
  json::object t{{"Id", target.at("Id")}, {"Port", target.at("Port")}};
  if (auto* z = target.if_contains("AvailabilityZone")) t["AvailabilityZone"] = *z;
  json::object out{{"Target", std::move(t)},
                   {"HealthCheckPort", health_check_port(tg, opt_int(target, "Port").value_or(0))}};
  if (opt_string(target, "state") == "draining") {
    out["TargetHealth"] = health("draining", "Target.DeregistrationInProgress",
                                 "Target deregistration is in progress");
  } else if (!in_use) {
    out["TargetHealth"] =
        health("unused", "Target.NotInUse",
               "Target group is not configured to receive traffic from the load balancer");
  } else if (!opt_bool(tg, "HealthCheckEnabled").value_or(true)) {
    out["TargetHealth"] =
        health("unavailable", "Target.HealthCheckDisabled", "Health checks are disabled");
  } else if (const json::object* h = opt_object(target, "health"); h && h->contains("State")) {
    json::object th;
    for (const char* k : {"State", "Reason", "Description"}) {
      if (auto* v = h->if_contains(k)) th[k] = *v;
    }
    out["TargetHealth"] = std::move(th);
  } else {
    out["TargetHealth"] =
        health("initial", "Elb.RegistrationInProgress", "Target registration is in progress");
  }
  return out;
}

Result<json::value> describe_target_health(ElbContext& ctx, const json::object& in) {
  std::string arn(opt_string(in, "TargetGroupArn").value_or(""));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Record tg, load_target_group(ctx, arn));
    auto usage = target_group_load_balancers(ctx.store());
    if (!usage.ok()) return store_failure(usage.error());
    bool in_use = usage->contains(arn);
    BERTH_TRY(auto targets, scan(ctx.store(), keys::target_prefix(parse_arn(arn)->id)));
    json::array out;
    if (!opt_array(in, "Targets")) {
      for (const auto& r : targets) out.push_back(describe(tg.obj, in_use, r.obj));
      return json::object{{"TargetHealthDescriptions", std::move(out)}};
    }
    BERTH_TRY(auto wanted, targets_from(in, tg.obj));
    for (const auto& w : wanted) {
      bool found = false;
      for (const auto& r : targets) {
        // Without a port, every registration of the id answers (ECS tasks use dynamic ports).
        if (opt_string(r.obj, "Id") != w.id || (w.port_given && opt_int(r.obj, "Port") != w.port))
          continue;
        out.push_back(describe(tg.obj, in_use, r.obj));
        found = true;
      }
      if (!found) {
        json::object t{{"Id", w.id}, {"Port", w.port}};
        out.push_back(
            json::object{{"Target", std::move(t)},
                         {"HealthCheckPort", health_check_port(tg.obj, w.port)},
                         {"TargetHealth", health("unused", "Target.NotRegistered",
                                                 "Target is not registered to the target group")}});
      }
    }
    return json::object{{"TargetHealthDescriptions", std::move(out)}};
  });
}

}  // namespace

void register_target_actions(api::QueryService& s, ElbContext& ctx) {
  s.add("RegisterTargets",
        [&ctx](auto&, const json::object& in) { return register_targets(ctx, in); });
  s.add("DeregisterTargets",
        [&ctx](auto&, const json::object& in) { return deregister_targets(ctx, in); });
  s.add("DescribeTargetHealth",
        [&ctx](auto&, const json::object& in) { return describe_target_health(ctx, in); });
}

}  // namespace berth::server::elbv2
