// The record helpers shared by the ELBv2 API, the LB controller and the ECS service controller.
// Kept free of the API plumbing (only the store and Boost.JSON) so any of them can link it.

#include "server/elbv2/records.h"

#include <boost/json/serialize.hpp>
#include <cctype>
#include <functional>

#include "common/json_util.h"
#include "model/elbv2_errors.h"

namespace berth::server::elbv2 {

namespace json = boost::json;
using json_util::opt_array;
using json_util::opt_object;
using json_util::opt_string;
using json_util::parse_object;
using json_util::string_or_empty;

namespace {

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    if (at == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, at - start));
    start = at + 1;
  }
}

// Names are 1-32 alphanumerics and hyphens; ids are lowercase hex. Checking both keeps an ARN
// from smuggling '/' or other key syntax into a store key.
bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

bool valid_id(std::string_view s) {
  if (s.empty() || s.size() > 32) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  }
  return true;
}

Error target_group_not_found(std::string_view arn) {
  return Error(model::ElbErrc::target_group_not_found,
               "Target group '" + std::string(arn) + "' not found");
}

// Conflicts only happen when two writers touch the same target (or its group) at once; a few
// retries resolve any realistic contention.
constexpr int kMaxAttempts = 32;

// One attempt at changing a target record. `change` edits the record (nullopt: absent) and
// returns false when nothing needs writing.
Status update_target(store::Store& store, std::string_view tg_arn, std::string_view id,
                     int64_t port,
                     const std::function<bool(std::optional<json::object>&)>& change) {
  auto parts = parse_arn(tg_arn);
  if (!parts || parts->kind != "targetgroup") return target_group_not_found(tg_arn);
  std::string tg_key = keys::target_group(parts->name);
  std::string key = keys::target(parts->id, id, port);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto tg = store.get(tg_key);
    if (!tg.ok()) return tg.error();
    std::optional<json::object> group;
    if (tg->has_value()) group = parse_object((*tg)->value);
    if (!group || string_or_empty(*group, "TargetGroupArn") != tg_arn) {
      return target_group_not_found(tg_arn);
    }
    auto kv = store.get(key);
    if (!kv.ok()) return kv.error();
    std::optional<json::object> target;
    int64_t revision = 0;
    if (kv->has_value()) {
      target = parse_object((*kv)->value);
      revision = (*kv)->mod_revision;
    }
    if (!change(target)) return {};
    store::Txn txn;
    // The group must still be the same: a target written after DeleteTargetGroup would be an
    // orphan.
    txn.compares.push_back({tg_key, (*tg)->mod_revision});
    txn.compares.push_back({key, revision});
    txn.ops.push_back(store::Op::put(key, json::serialize(*target)));
    auto rev = store.commit(txn);
    if (rev.ok()) return {};
    if (rev.error().code != store::Errc::conflict) return rev.error();
  }
  return Error(store::Errc::conflict, "too much contention on target " + std::string(id));
}

}  // namespace

std::optional<ArnParts> parse_arn(std::string_view arn) {
  auto fields = split(arn, ':');
  if (fields.size() != 6 || fields[0] != "arn" || fields[1].empty() ||
      fields[2] != "elasticloadbalancing" || fields[3].empty() || fields[4].empty()) {
    return std::nullopt;
  }
  auto path = split(fields[5], '/');
  ArnParts p;
  p.kind = std::string(path[0]);
  auto ids_ok = [&](size_t first_id) {
    for (size_t i = first_id; i < path.size(); ++i) {
      if (!valid_id(path[i])) return false;
    }
    return true;
  };
  if (p.kind == "targetgroup" && path.size() == 3 && valid_name(path[1]) && ids_ok(2)) {
    p.name = std::string(path[1]);
    p.id = std::string(path[2]);
    return p;
  }
  // Only application load balancers ("app") exist here.
  if (path.size() < 4 || path[1] != "app" || !valid_name(path[2]) || !ids_ok(3)) {
    return std::nullopt;
  }
  p.name = std::string(path[2]);
  if (p.kind == "loadbalancer" && path.size() == 4) {
    p.id = std::string(path[3]);
    p.lb_id = p.id;
    return p;
  }
  if (p.kind == "listener" && path.size() == 5) {
    p.lb_id = std::string(path[3]);
    p.id = std::string(path[4]);
    p.listener_id = p.id;
    return p;
  }
  if (p.kind == "listener-rule" && path.size() == 6) {
    p.lb_id = std::string(path[3]);
    p.listener_id = std::string(path[4]);
    p.id = std::string(path[5]);
    return p;
  }
  return std::nullopt;
}

Status register_target(store::Store& store, double now, std::string_view tg_arn,
                       std::string_view id, int64_t port, std::string_view owner,
                       std::string_view availability_zone) {
  return update_target(store, tg_arn, id, port, [&](std::optional<json::object>& t) {
    if (t && string_or_empty(*t, "state") == "registered") {
      // Already registered: keep its health and registration time, update what was given.
      bool changed = false;
      if (!owner.empty() && string_or_empty(*t, "owner") != owner) {
        (*t)["owner"] = owner;
        changed = true;
      }
      if (!availability_zone.empty() &&
          string_or_empty(*t, "AvailabilityZone") != availability_zone) {
        (*t)["AvailabilityZone"] = availability_zone;
        changed = true;
      }
      return changed;
    }
    // New, or draining: (re)registered from scratch, health checks start over.
    json::object r;
    r["Id"] = id;
    r["Port"] = port;
    if (!availability_zone.empty()) {
      r["AvailabilityZone"] = availability_zone;
    } else if (t && t->contains("AvailabilityZone")) {
      r["AvailabilityZone"] = t->at("AvailabilityZone");
    }
    r["state"] = "registered";
    r["registeredAt"] = now;
    if (!owner.empty()) {
      r["owner"] = owner;
    } else if (t && t->contains("owner")) {
      r["owner"] = t->at("owner");
    }
    t = std::move(r);
    return true;
  });
}

Status deregister_target(store::Store& store, double now, std::string_view tg_arn,
                         std::string_view id, int64_t port) {
  return update_target(store, tg_arn, id, port, [&](std::optional<json::object>& t) {
    if (!t || string_or_empty(*t, "state") != "registered") return false;
    (*t)["state"] = "draining";
    (*t)["drainingSince"] = now;
    return true;
  });
}

std::vector<std::string> forwarded_target_groups(const json::array& actions) {
  std::vector<std::string> out;
  auto add = [&](std::string_view arn) {
    if (arn.empty()) return;
    for (const auto& a : out) {
      if (a == arn) return;
    }
    out.emplace_back(arn);
  };
  for (const auto& a : actions) {
    if (!a.is_object() || string_or_empty(a.as_object(), "Type") != "forward") continue;
    const auto& action = a.as_object();
    add(string_or_empty(action, "TargetGroupArn"));
    const json::object* fc = opt_object(action, "ForwardConfig");
    const json::array* groups = fc != nullptr ? opt_array(*fc, "TargetGroups") : nullptr;
    if (groups == nullptr) continue;
    for (const auto& g : *groups) {
      if (g.is_object()) add(string_or_empty(g.as_object(), "TargetGroupArn"));
    }
  }
  return out;
}

Result<std::map<std::string, std::set<std::string>>> target_group_load_balancers(
    store::Store& store) {
  auto r = store.range({std::string(keys::kRules), "", 0});
  if (!r.ok()) return r.error();
  std::map<std::string, std::set<std::string>> out;
  for (const auto& kv : r->kvs) {
    auto rule = parse_object(kv.value);
    if (!rule) continue;
    // The rule's load balancer is named in its own ARN:
    //   ...:listener-rule/app/LBNAME/LBID/LISTENERID/ID -> ...:loadbalancer/app/LBNAME/LBID
    std::string_view rule_arn = string_or_empty(*rule, "RuleArn");
    auto parts = parse_arn(rule_arn);
    if (!parts) continue;
    std::string_view prefix = rule_arn.substr(0, rule_arn.find(":listener-rule/"));
    std::string lb_arn =
        std::string(prefix) + ":loadbalancer/app/" + parts->name + "/" + parts->lb_id;
    const json::array* actions = opt_array(*rule, "Actions");
    if (actions == nullptr) continue;
    for (auto& tg : forwarded_target_groups(*actions)) out[tg].insert(lb_arn);
  }
  return out;
}

std::string target_group_attribute(const json::object& target_group, std::string_view key) {
  for (const auto& [k, def] : kTargetGroupAttributeDefaults) {
    if (k != key) continue;
    const json::object* b = opt_object(target_group, "_berth");
    const json::object* attrs = b != nullptr ? opt_object(*b, "attributes") : nullptr;
    return std::string(attrs != nullptr ? opt_string(*attrs, key).value_or(def) : def);
  }
  return {};
}

}  // namespace berth::server::elbv2
