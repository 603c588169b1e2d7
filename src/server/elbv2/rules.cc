// Listener rules: CreateRule, DescribeRules, ModifyRule, SetRulePriorities, DeleteRule.
//
// Berth routes on path-pattern and host-header conditions (as Values, or as PathPatternConfig /
// HostHeaderConfig; both forms are stored, as AWS returns them). Priorities are unique per
// listener; the default rule (written with the listener) has Priority "default", always matches
// last, and changes only through ModifyListener.

#include <algorithm>
#include <cstring>
#include <map>

#include "server/elbv2/context.h"

namespace berth::server::elbv2 {

namespace {

// AWS's limits: condition values per rule, rules per listener (the default rule not counted).
constexpr size_t kMaxConditionValues = 5;
constexpr size_t kMaxRules = 100;
constexpr size_t kMaxValueLength = 128;

Status validate_value(std::string_view field, std::string_view v) {
  // AWS's character sets: wildcards * and ? in both.
  const char* allowed = field == "path-pattern" ? "_-.$/~\"'@:+&*?" : "-.*?";
  if (v.empty() || v.size() > kMaxValueLength) {
    return validation("Condition values must be between 1 and 128 characters");
  }
  for (char c : v) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::strchr(allowed, c) == nullptr) {
      return validation("Condition value '" + std::string(v) + "' contains characters not " +
                        "allowed in a " + std::string(field) + " condition");
    }
  }
  return {};
}

Result<json::array> normalize_conditions(const json::array& conditions) {
  if (conditions.empty()) return validation("A rule must have at least one condition");
  json::array out;
  std::set<std::string, std::less<>> fields;
  size_t total = 0;
  for (const auto& cv : conditions) {
    const auto& c = cv.as_object();
    auto field = opt_string(c, "Field").value_or("");
    if (field != "path-pattern" && field != "host-header") {
      return validation("Condition field '" + std::string(field) +
                        "' is not supported by Berth: use path-pattern or host-header");
    }
    if (!fields.insert(std::string(field)).second) {
      return validation("A rule can have only one '" + std::string(field) + "' condition");
    }
    for (const char* other :
         {"HttpHeaderConfig", "QueryStringConfig", "HttpRequestMethodConfig", "SourceIpConfig"}) {
      if (c.contains(other)) {
        return validation(std::string(other) + " is not supported by Berth");
      }
    }
    const char* config_name = field == "path-pattern" ? "PathPatternConfig" : "HostHeaderConfig";
    json::array values;
    if (const json::array* v = opt_array(c, "Values")) values = *v;
    if (const json::object* config = opt_object(c, config_name)) {
      json::array configured;
      if (const json::array* v = opt_array(*config, "Values")) configured = *v;
      if (!values.empty() && !configured.empty() && values != configured) {
        return validation("Specify the values of a '" + std::string(field) +
                          "' condition either in Values or in " + config_name + ", not both");
      }
      if (values.empty()) values = std::move(configured);
    }
    if (values.empty()) {
      return validation("A '" + std::string(field) + "' condition must have at least one value");
    }
    for (const auto& v : values) BERTH_CHECK(validate_value(field, v.as_string()));
    total += values.size();
    out.push_back(json::object{
        {"Field", field}, {"Values", values}, {config_name, json::object{{"Values", values}}}});
  }
  if (total > kMaxConditionValues) {
    return validation("A rule can have at most 5 condition values, not " + std::to_string(total));
  }
  return out;
}

std::string sort_key(const json::object& rule) {
  auto p = opt_string(rule, "Priority").value_or("default");
  if (p == "default") return "zzzzz";  // after every number
  char key[16];
  std::snprintf(key, sizeof key, "%05d", std::atoi(std::string(p).c_str()));
  return key;
}

Error priority_in_use(int64_t priority) {
  return Error(model::ElbErrc::priority_in_use,
               "Priority '" + std::to_string(priority) + "' is currently in use");
}

Status check_priority(int64_t priority) {
  if (priority < 1 || priority > 50000) return validation("Priority must be between 1 and 50000");
  return {};
}

Result<json::value> create_rule(ElbContext& ctx, const json::object& in) {
  std::string listener_arn(opt_string(in, "ListenerArn").value_or(""));
  auto priority = opt_int(in, "Priority");
  if (!priority) return validation("A rule priority must be specified");
  BERTH_CHECK(check_priority(*priority));
  const json::array* given_conditions = opt_array(in, "Conditions");
  BERTH_TRY(json::array conditions,
            normalize_conditions(given_conditions ? *given_conditions : json::array()));
  std::vector<std::string> tg_arns;
  const json::array* given_actions = opt_array(in, "Actions");
  BERTH_TRY(json::array actions,
            normalize_actions(given_actions ? *given_actions : json::array(), tg_arns));
  BERTH_TRY(json::array tags, validate_tags(opt_array(in, "Tags")));

  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Record listener, load_listener(ctx, listener_arn));
    auto parts = *parse_arn(listener_arn);
    BERTH_TRY(auto rules, scan(ctx.store(), keys::rule_prefix(parts.id)));
    size_t count = 0;
    for (const auto& r : rules) {
      if (opt_bool(r.obj, "IsDefault").value_or(false)) continue;
      ++count;
      if (opt_string(r.obj, "Priority") == std::to_string(*priority)) {
        return priority_in_use(*priority);
      }
    }
    if (count >= kMaxRules) {
      return Error(model::ElbErrc::too_many_rules,
                   "A listener can have at most 100 rules besides its default rule");
    }
    std::string lb_arn(opt_string(listener.obj, "LoadBalancerArn").value_or(""));
    BERTH_TRY(auto groups, load_forward_targets(ctx, tg_arns, lb_arn));
    std::string id = ctx.new_id();
    json::object rule{{"RuleArn", ctx.rule_arn(parts.name, parts.lb_id, parts.id, id)},
                      {"Priority", std::to_string(*priority)},
                      {"Conditions", conditions},
                      {"Actions", actions},
                      {"IsDefault", false},
                      {"_berth", json::object{{"tags", tags}}}};
    Writes w;
    // Touching the listener serialises rule changes per listener (unique priorities) and makes
    // a concurrent DeleteListener retry instead of leaving this rule behind.
    w.touch(listener);
    for (const auto& g : groups) w.touch(g);
    w.put(keys::rule(parts.id, id), rule, 0);
    BERTH_CHECK(w.commit(ctx.store()));
    return json::object{{"Rules", json::array{render(rule)}}};
  });
}

Result<json::value> describe_rules(ElbContext& ctx, const json::object& in) {
  auto listener_arn = opt_string(in, "ListenerArn");
  const json::array* arns = opt_array(in, "RuleArns");
  bool by_arns = arns && !arns->empty();
  if (listener_arn.has_value() == by_arns) {
    return validation("You must specify either a listener ARN or rule ARNs");
  }
  return with_retries([&]() -> Result<json::value> {
    std::vector<std::pair<std::string, json::object>> found;
    if (by_arns) {
      for (const auto& a : *arns) {
        BERTH_TRY(Record r, load_rule(ctx, a.as_string()));
        char key[16];
        std::snprintf(key, sizeof key, "%08zu", found.size());
        found.emplace_back(key, render(r.obj));
      }
    } else {
      BERTH_TRY(Record listener, load_listener(ctx, *listener_arn));
      BERTH_TRY(auto rules, scan(ctx.store(), keys::rule_prefix(parse_arn(*listener_arn)->id)));
      for (const auto& r : rules) found.emplace_back(sort_key(r.obj), render(r.obj));
      std::sort(found.begin(), found.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
    }
    std::vector<std::string> sort_keys;
    json::array items;
    for (auto& [k, r] : found) {
      sort_keys.push_back(k);
      items.push_back(std::move(r));
    }
    BERTH_TRY(json::object out, page(in, std::move(sort_keys), std::move(items), "Rules"));
    return out;
  });
}

Result<json::value> modify_rule(ElbContext& ctx, const json::object& in) {
  std::string arn(opt_string(in, "RuleArn").value_or(""));
  std::optional<json::array> conditions, actions;
  std::vector<std::string> tg_arns;
  if (const json::array* c = opt_array(in, "Conditions")) {
    BERTH_TRY(conditions, normalize_conditions(*c));
  }
  if (const json::array* a = opt_array(in, "Actions")) {
    BERTH_TRY(actions, normalize_actions(*a, tg_arns));
  }
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Record rule, load_rule(ctx, arn));
    if (opt_bool(rule.obj, "IsDefault").value_or(false)) {
      return Error(model::ElbErrc::operation_not_permitted,
                   "The default rule cannot be modified: use ModifyListener to change its actions");
    }
    auto parts = *parse_arn(arn);
    BERTH_TRY(Record listener,
              load_listener(ctx, ctx.listener_arn(parts.name, parts.lb_id, parts.listener_id)));
    Writes w;
    w.touch(listener);
    if (conditions) rule.obj["Conditions"] = *conditions;
    if (actions) {
      std::string lb_arn(opt_string(listener.obj, "LoadBalancerArn").value_or(""));
      BERTH_TRY(auto groups, load_forward_targets(ctx, tg_arns, lb_arn));
      for (const auto& g : groups) w.touch(g);
      rule.obj["Actions"] = *actions;
    }
    w.put(rule);
    BERTH_CHECK(w.commit(ctx.store()));
    return json::object{{"Rules", json::array{render(rule.obj)}}};
  });
}

Result<json::value> set_rule_priorities(ElbContext& ctx, const json::object& in) {
  std::vector<std::pair<std::string, int64_t>> wanted;
  if (const json::array* list = opt_array(in, "RulePriorities")) {
    for (const auto& v : *list) {
      auto arn = opt_string(v.as_object(), "RuleArn");
      auto priority = opt_int(v.as_object(), "Priority");
      if (!arn || !priority) return validation("Each rule priority needs a RuleArn and a Priority");
      BERTH_CHECK(check_priority(*priority));
      wanted.emplace_back(*arn, *priority);
    }
  }
  if (wanted.empty()) return validation("At least one rule priority must be specified");
  return with_retries([&]() -> Result<json::value> {
    Writes w;
    std::map<std::string, Record> changed;                        // by key
    std::map<std::string, std::map<int64_t, std::string>> taken;  // listener id -> priority -> key
    for (const auto& [arn, priority] : wanted) {
      BERTH_TRY(Record rule, load_rule(ctx, arn));
      if (opt_bool(rule.obj, "IsDefault").value_or(false)) {
        return Error(model::ElbErrc::operation_not_permitted,
                     "The priority of the default rule cannot be changed");
      }
      auto parts = *parse_arn(arn);
      if (!taken.contains(parts.listener_id)) {
        BERTH_TRY(Record listener,
                  load_listener(ctx, ctx.listener_arn(parts.name, parts.lb_id, parts.listener_id)));
        w.touch(listener);
        auto& priorities = taken[parts.listener_id];
        BERTH_TRY(auto rules, scan(ctx.store(), keys::rule_prefix(parts.listener_id)));
        for (const auto& r : rules) {
          if (opt_bool(r.obj, "IsDefault").value_or(false)) continue;
          priorities[std::atoll(std::string(opt_string(r.obj, "Priority").value_or("0")).c_str())] =
              r.key;
        }
      }
      changed.insert_or_assign(rule.key, rule);
      changed.at(rule.key).obj["Priority"] = std::to_string(priority);
    }
    // The new priorities must be unique among the listener's rules as they will be.
    for (auto& [listener_id, priorities] : taken) {
      std::map<int64_t, std::string> after;
      for (const auto& [p, key] : priorities) {
        if (!changed.contains(key)) after.emplace(p, key);
      }
      for (const auto& [key, r] : changed) {
        if (parse_arn(opt_string(r.obj, "RuleArn").value_or(""))->listener_id != listener_id) {
          continue;
        }
        int64_t p = std::atoll(std::string(opt_string(r.obj, "Priority").value_or("0")).c_str());
        if (!after.emplace(p, key).second) return priority_in_use(p);
      }
    }
    json::array out;
    for (const auto& [key, r] : changed) {
      w.put(r);
      out.push_back(render(r.obj));
    }
    BERTH_CHECK(w.commit(ctx.store()));
    return json::object{{"Rules", std::move(out)}};
  });
}

Result<json::value> delete_rule(ElbContext& ctx, const json::object& in) {
  std::string arn(opt_string(in, "RuleArn").value_or(""));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Record rule, load_rule(ctx, arn));
    if (opt_bool(rule.obj, "IsDefault").value_or(false)) {
      return Error(model::ElbErrc::operation_not_permitted, "The default rule cannot be deleted");
    }
    Writes w;
    w.del(rule);
    BERTH_CHECK(w.commit(ctx.store()));
    return json::object{};
  });
}

}  // namespace

void register_rule_actions(api::QueryService& s, ElbContext& ctx) {
  s.add("CreateRule", [&ctx](auto&, const json::object& in) { return create_rule(ctx, in); });
  s.add("DescribeRules", [&ctx](auto&, const json::object& in) { return describe_rules(ctx, in); });
  s.add("ModifyRule", [&ctx](auto&, const json::object& in) { return modify_rule(ctx, in); });
  s.add("SetRulePriorities",
        [&ctx](auto&, const json::object& in) { return set_rule_priorities(ctx, in); });
  s.add("DeleteRule", [&ctx](auto&, const json::object& in) { return delete_rule(ctx, in); });
}

}  // namespace berth::server::elbv2
