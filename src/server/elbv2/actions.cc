// Listener and rule actions: what Berth's data plane can serve is one terminal action per rule,
// either forward (to one target group; the ForwardConfig form is accepted, without stickiness) or
// fixed-response. Redirects, authentication, weighted forwards to several groups and sticky
// forwards are refused rather than recorded and silently ignored.

#include <algorithm>
#include <cctype>

#include "server/elbv2/context.h"

namespace berth::server::elbv2 {

namespace {

// AWS's limits: target groups in one forward action, weight range.
// AWS allows 5 weighted groups; the data plane routes a rule to one backend, so a forward names
// exactly one group until weighted backends exist.
constexpr size_t kMaxForwardTargetGroups = 1;
constexpr int64_t kMaxWeight = 999;
constexpr size_t kMaxMessageBody = 1024;

Result<json::object> normalize_forward(const json::object& a) {
  auto arn = opt_string(a, "TargetGroupArn");
  const json::object* fc = opt_object(a, "ForwardConfig");
  json::array groups;
  json::object stickiness{{"Enabled", false}};
  if (fc != nullptr) {
    const json::array* tgs = opt_array(*fc, "TargetGroups");
    if (tgs != nullptr) {
      for (const auto& g : *tgs) {
        auto tg = opt_string(g.as_object(), "TargetGroupArn");
        if (!tg || tg->empty()) {
          return validation(
              "A target group ARN must be specified for each target group in "
              "ForwardConfig");
        }
        int64_t weight = opt_int(g.as_object(), "Weight").value_or(1);
        if (weight < 0 || weight > kMaxWeight) {
          return validation("Target group weights must be between 0 and 999");
        }
        for (const auto& seen : groups) {
          if (seen.as_object().at("TargetGroupArn").as_string() == *tg) {
            return validation("Target group '" + std::string(*tg) +
                              "' is specified more than once in ForwardConfig");
          }
        }
        groups.push_back(json::object{{"TargetGroupArn", *tg}, {"Weight", weight}});
      }
    }
    if (const json::object* s = opt_object(*fc, "TargetGroupStickinessConfig")) {
      // The data plane has no sticky sessions: Enabled=false (the default) is all it can do.
      if (opt_bool(*s, "Enabled").value_or(false)) {
        return validation(
            "Target group stickiness (TargetGroupStickinessConfig.Enabled=true) is not "
            "supported by Berth's data plane yet");
      }
    }
  }
  if (groups.empty()) {
    if (!arn || arn->empty()) {
      return validation("A target group ARN must be specified for a forward action");
    }
    groups.push_back(json::object{{"TargetGroupArn", *arn}, {"Weight", 1}});
  } else if (arn && !arn->empty() &&
             (groups.size() != 1 ||
              groups[0].as_object().at("TargetGroupArn").as_string() != *arn)) {
    return validation(
        "You cannot specify both a target group ARN and a ForwardConfig with different target "
        "groups");
  }
  if (groups.size() > kMaxForwardTargetGroups) {
    return validation(
        "Berth forwards to one target group per action: weighted forwards to several target "
        "groups are not supported yet");
  }
  json::object out{{"Type", "forward"}};
  // As AWS shows it: TargetGroupArn too when there is exactly one group.
  if (groups.size() == 1) out["TargetGroupArn"] = groups[0].as_object().at("TargetGroupArn");
  out["ForwardConfig"] = json::object{{"TargetGroups", std::move(groups)},
                                      {"TargetGroupStickinessConfig", std::move(stickiness)}};
  return out;
}

bool valid_status_code(std::string_view s) {
  return s.size() == 3 && (s[0] == '2' || s[0] == '4' || s[0] == '5') &&
         std::isdigit(static_cast<unsigned char>(s[1])) &&
         std::isdigit(static_cast<unsigned char>(s[2]));
}

Result<json::object> normalize_fixed_response(const json::object& a) {
  const json::object* c = opt_object(a, "FixedResponseConfig");
  if (c == nullptr) {
    return validation("A fixed-response action must have a FixedResponseConfig");
  }
  auto status = opt_string(*c, "StatusCode").value_or("");
  if (!valid_status_code(status)) {
    return validation("Fixed response status code '" + std::string(status) +
                      "' must be a 2XX, 4XX or 5XX code");
  }
  json::object config{{"StatusCode", status}};
  if (auto type = opt_string(*c, "ContentType")) {
    static constexpr std::string_view kTypes[] = {"text/plain", "text/css", "text/html",
                                                  "application/javascript", "application/json"};
    if (std::find(std::begin(kTypes), std::end(kTypes), *type) == std::end(kTypes)) {
      return validation(
          "Fixed response content type must be one of text/plain, text/css, "
          "text/html, application/javascript, application/json");
    }
    config["ContentType"] = *type;
  }
  if (auto body = opt_string(*c, "MessageBody")) {
    if (body->size() > kMaxMessageBody) {
      return validation("Fixed response message body must be at most 1024 characters");
    }
    config["MessageBody"] = *body;
  }
  return json::object{{"Type", "fixed-response"}, {"FixedResponseConfig", std::move(config)}};
}

}  // namespace

Result<json::array> normalize_actions(const json::array& actions,
                                      std::vector<std::string>& target_groups) {
  if (actions.empty()) return validation("At least one action must be specified");
  if (actions.size() > 1) {
    return validation(
        "Berth supports exactly one action per rule (forward or fixed-response); redirect and "
        "authenticate actions are not supported");
  }
  json::array out;
  for (const auto& v : actions) {
    const auto& a = v.as_object();
    auto type = opt_string(a, "Type").value_or("");
    json::object n;
    if (type == "forward") {
      BERTH_TRY(n, normalize_forward(a));
      for (const auto& g : n.at("ForwardConfig").as_object().at("TargetGroups").as_array()) {
        target_groups.emplace_back(g.as_object().at("TargetGroupArn").as_string());
      }
    } else if (type == "fixed-response") {
      BERTH_TRY(n, normalize_fixed_response(a));
    } else {
      return validation("Action type '" + std::string(type) +
                        "' is not supported by Berth: use forward or fixed-response");
    }
    if (auto order = opt_int(a, "Order")) n["Order"] = *order;
    out.push_back(std::move(n));
  }
  return out;
}

Result<std::vector<Record>> load_forward_targets(const ElbContext& ctx,
                                                 const std::vector<std::string>& arns,
                                                 std::string_view lb_arn) {
  std::vector<Record> out;
  if (arns.empty()) return out;
  BERTH_TRY(auto usage, target_group_load_balancers(ctx.store()));
  for (const auto& arn : arns) {
    BERTH_TRY(Record tg, load_target_group(ctx, arn));
    if (auto it = usage.find(arn); it != usage.end()) {
      for (const auto& other : it->second) {
        if (other != lb_arn) {
          // An application load balancer's target group serves one load balancer.
          return Error(model::ElbErrc::target_group_association_limit,
                       "The following target groups cannot be associated with more than one "
                       "load balancer: " +
                           arn);
        }
      }
    }
    out.push_back(std::move(tg));
  }
  return out;
}

}  // namespace berth::server::elbv2
