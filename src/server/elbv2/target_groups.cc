// Target groups: CreateTargetGroup, ModifyTargetGroup, DescribeTargetGroups, DeleteTargetGroup,
// DescribeTargetGroupAttributes, ModifyTargetGroupAttributes.
//
// Berth target groups are HTTP with HTTP health checks, targets are instances or IPv4 addresses.
// A group's LoadBalancerArns is not stored: it is computed from the rules that forward to it
// (target_group_load_balancers), so it can never go stale.

#include <cctype>
#include <charconv>

#include "server/elbv2/context.h"

namespace berth::server::elbv2 {

namespace {

Status validate_name(std::string_view name) {
  if (name.empty() || name.size() > 32) {
    return validation("Target group name '" + std::string(name) +
                      "' must be between 1 and 32 characters");
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return validation("Target group name '" + std::string(name) +
                        "' can only contain characters that are alphanumeric characters or "
                        "hyphens(-)");
    }
  }
  if (name.front() == '-' || name.back() == '-') {
    return validation("Target group name '" + std::string(name) +
                      "' cannot begin or end with '-' character");
  }
  return {};
}

std::optional<int64_t> to_int(std::string_view s) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// "200", "200,202" or "200-299"; an ALB matches codes 200-499.
bool valid_http_codes(std::string_view codes) {
  if (codes.empty()) return false;
  size_t start = 0;
  while (start <= codes.size()) {
    size_t comma = codes.find(',', start);
    std::string_view item = codes.substr(start, comma == codes.npos ? codes.npos : comma - start);
    size_t dash = item.find('-');
    auto in_range = [](std::optional<int64_t> c) { return c && *c >= 200 && *c <= 499; };
    if (dash == item.npos) {
      if (!in_range(to_int(item))) return false;
    } else {
      auto lo = to_int(item.substr(0, dash));
      auto hi = to_int(item.substr(dash + 1));
      if (!in_range(lo) || !in_range(hi) || *lo >= *hi) return false;
    }
    if (comma == codes.npos) break;
    start = comma + 1;
  }
  return true;
}

Status check_range(const json::object& tg, const char* member, int64_t lo, int64_t hi) {
  int64_t v = opt_int(tg, member).value_or(lo);
  if (v < lo || v > hi) {
    return validation(std::string(member) + " must be between " + std::to_string(lo) + " and " +
                      std::to_string(hi));
  }
  return {};
}

// Applies the health-check members of CreateTargetGroup / ModifyTargetGroup to `tg` and checks
// the result as a whole (the timeout must be shorter than the interval).
Status apply_health_check(json::object& tg, const json::object& in) {
  if (auto p = opt_string(in, "HealthCheckProtocol")) {
    if (*p != "HTTP") return validation("Berth health checks support only the HTTP protocol");
    tg["HealthCheckProtocol"] = *p;
  }
  if (auto port = opt_string(in, "HealthCheckPort")) {
    auto n = to_int(*port);
    if (*port != "traffic-port" && (!n || *n < 1 || *n > 65535)) {
      return validation("Health check port '" + std::string(*port) +
                        "' must be 'traffic-port' or a port between 1 and 65535");
    }
    tg["HealthCheckPort"] = *port;
  }
  if (auto e = opt_bool(in, "HealthCheckEnabled")) {
    // As in AWS: only lambda target groups (which Berth does not have) can disable them.
    if (!*e) {
      return validation("Health checks cannot be disabled for target groups with target type '" +
                        std::string(opt_string(tg, "TargetType").value_or("instance")) + "'");
    }
    tg["HealthCheckEnabled"] = *e;
  }
  if (auto path = opt_string(in, "HealthCheckPath")) {
    if (path->empty() || path->front() != '/' || path->size() > 1024) {
      return validation("Health check path must begin with '/' and be at most 1024 characters");
    }
    tg["HealthCheckPath"] = *path;
  }
  for (const char* k : {"HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds",
                        "HealthyThresholdCount", "UnhealthyThresholdCount"}) {
    if (auto v = opt_int(in, k)) tg[k] = *v;
  }
  if (const json::object* m = opt_object(in, "Matcher")) {
    if (m->contains("GrpcCode")) return validation("Berth target groups do not support gRPC");
    auto codes = opt_string(*m, "HttpCode").value_or("");
    if (!valid_http_codes(codes)) {
      return validation("Health check matcher HTTP code '" + std::string(codes) +
                        "' must be codes or ranges between 200 and 499 (e.g. 200,202 or 200-299)");
    }
    tg["Matcher"] = json::object{{"HttpCode", codes}};
  }
  BERTH_CHECK(check_range(tg, "HealthCheckIntervalSeconds", 5, 300));
  BERTH_CHECK(check_range(tg, "HealthCheckTimeoutSeconds", 2, 120));
  BERTH_CHECK(check_range(tg, "HealthyThresholdCount", 2, 10));
  BERTH_CHECK(check_range(tg, "UnhealthyThresholdCount", 2, 10));
  int64_t interval = *opt_int(tg, "HealthCheckIntervalSeconds");
  int64_t timeout = *opt_int(tg, "HealthCheckTimeoutSeconds");
  if (timeout >= interval) {
    return validation("Health check timeout '" + std::to_string(timeout) +
                      "' must be smaller than the interval '" + std::to_string(interval) + "'");
  }
  return {};
}

// The settings that make two CreateTargetGroup calls "the same" (AWS then returns the existing
// group instead of DuplicateTargetGroupName).
json::object settings_of(const json::object& tg) {
  json::object s = render(tg);
  s.erase("TargetGroupArn");
  return s;
}

using Usage = std::map<std::string, std::set<std::string>>;

Result<Usage> usage_of(const ElbContext& ctx) {
  auto u = target_group_load_balancers(ctx.store());
  if (!u.ok()) return store_failure(u.error());
  return std::move(*u);
}

json::object render_group(const json::object& tg, const Usage& usage) {
  json::object out = render(tg);
  json::array lbs;
  if (auto it = usage.find(std::string(opt_string(tg, "TargetGroupArn").value_or("")));
      it != usage.end()) {
    for (const auto& a : it->second) lbs.push_back(json::string(a));
  }
  out["LoadBalancerArns"] = std::move(lbs);
  return out;
}

Result<json::value> create_target_group(ElbContext& ctx, const json::object& in) {
  std::string name(opt_string(in, "Name").value_or(""));
  BERTH_CHECK(validate_name(name));
  auto target_type = opt_string(in, "TargetType").value_or("instance");
  if (target_type != "instance" && target_type != "ip") {
    return validation("Berth supports only the instance and ip target types, not '" +
                      std::string(target_type) + "'");
  }
  auto protocol = opt_string(in, "Protocol");
  if (!protocol) return validation("A protocol must be specified");
  if (*protocol != "HTTP") {
    return validation("Berth target groups support only the HTTP protocol, not '" +
                      std::string(*protocol) + "'");
  }
  auto port = opt_int(in, "Port");
  if (!port) return validation("A port must be specified");
  if (*port < 1 || *port > 65535) return validation("Port must be between 1 and 65535");
  auto version = opt_string(in, "ProtocolVersion").value_or("HTTP1");
  if (version != "HTTP1")
    return validation("Berth target groups support only ProtocolVersion HTTP1");
  if (opt_string(in, "IpAddressType").value_or("ipv4") != "ipv4") {
    return validation("Berth target groups support only IpAddressType ipv4");
  }
  BERTH_TRY(json::array tags, validate_tags(opt_array(in, "Tags")));

  // AWS's defaults for an HTTP target group of instance or ip targets.
  json::object tg;
  tg["TargetGroupName"] = name;
  tg["Protocol"] = "HTTP";
  tg["Port"] = *port;
  if (auto vpc = opt_string(in, "VpcId")) tg["VpcId"] = *vpc;
  tg["HealthCheckProtocol"] = "HTTP";
  tg["HealthCheckPort"] = "traffic-port";
  tg["HealthCheckEnabled"] = true;
  tg["HealthCheckIntervalSeconds"] = 30;
  tg["HealthCheckTimeoutSeconds"] = 5;
  tg["HealthyThresholdCount"] = 5;
  tg["UnhealthyThresholdCount"] = 2;
  tg["HealthCheckPath"] = "/";
  tg["Matcher"] = json::object{{"HttpCode", "200"}};
  tg["TargetType"] = target_type;
  tg["ProtocolVersion"] = "HTTP1";
  tg["IpAddressType"] = "ipv4";
  BERTH_CHECK(apply_health_check(tg, in));

  return with_retries([&]() -> Result<json::value> {
    std::string id = ctx.new_id();
    json::object record = tg;
    record["TargetGroupArn"] = ctx.target_group_arn(name, id);
    json::object attributes;
    for (const auto& [k, v] : kTargetGroupAttributeDefaults) attributes[k] = v;
    record["_berth"] =
        json::object{{"id", id}, {"attributes", std::move(attributes)}, {"tags", tags}};

    std::string key = keys::target_group(name);
    BERTH_TRY(auto existing, load_doc(ctx.store(), key));
    if (existing) {
      if (settings_of(existing->obj) != settings_of(record)) {
        return Error(
            model::ElbErrc::duplicate_target_group_name,
            "A target group with the same name '" + name + "' exists, but with different settings");
      }
      BERTH_TRY(Usage usage, usage_of(ctx));
      return json::object{{"TargetGroups", json::array{render_group(existing->obj, usage)}}};
    }
    Writes w;
    w.put(key, record, 0);
    BERTH_CHECK(w.commit(ctx.store()));
    return json::object{{"TargetGroups", json::array{render_group(record, Usage{})}}};
  });
}

Result<json::value> modify_target_group(ElbContext& ctx, const json::object& in) {
  std::string arn(opt_string(in, "TargetGroupArn").value_or(""));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Record tg, load_target_group(ctx, arn));
    BERTH_CHECK(apply_health_check(tg.obj, in));
    Writes w;
    w.put(tg);
    BERTH_CHECK(w.commit(ctx.store()));
    BERTH_TRY(Usage usage, usage_of(ctx));
    return json::object{{"TargetGroups", json::array{render_group(tg.obj, usage)}}};
  });
}

Result<json::value> describe_target_groups(ElbContext& ctx, const json::object& in) {
  auto lb_arn = opt_string(in, "LoadBalancerArn");
  const json::array* arns = opt_array(in, "TargetGroupArns");
  const json::array* names = opt_array(in, "Names");
  int given = (lb_arn ? 1 : 0) + (arns && !arns->empty() ? 1 : 0) + (names && !names->empty());
  if (given > 1) {
    return validation("Specify only one of load balancer ARN, target group ARNs or names");
  }
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Usage usage, usage_of(ctx));
    std::vector<std::string> sort_keys;
    json::array items;
    auto add_in_order = [&](const json::object& tg) {
      char key[16];
      std::snprintf(key, sizeof key, "%08zu", items.size());
      sort_keys.push_back(key);
      items.push_back(render_group(tg, usage));
    };
    if (names && !names->empty()) {
      for (const auto& n : *names) {
        BERTH_TRY(auto doc, load_doc(ctx.store(), keys::target_group(n.as_string())));
        if (!doc) {
          return Error(model::ElbErrc::target_group_not_found,
                       "Target groups '[" + std::string(n.as_string()) + "]' not found");
        }
        add_in_order(doc->obj);
      }
    } else if (arns && !arns->empty()) {
      for (const auto& a : *arns) {
        BERTH_TRY(auto r, find_target_group(ctx, a.as_string()));
        if (!r) {
          return Error(model::ElbErrc::target_group_not_found,
                       "Target groups '[" + std::string(a.as_string()) + "]' not found");
        }
        add_in_order(r->obj);
      }
    } else {
      if (lb_arn) {
        BERTH_TRY(Record lb, load_load_balancer(ctx, *lb_arn));
      }
      BERTH_TRY(auto all, scan(ctx.store(), std::string(keys::kTargetGroups)));
      for (const auto& r : all) {
        if (lb_arn) {
          auto it = usage.find(std::string(opt_string(r.obj, "TargetGroupArn").value_or("")));
          if (it == usage.end() || !it->second.contains(std::string(*lb_arn))) continue;
        }
        sort_keys.push_back(r.key);
        items.push_back(render_group(r.obj, usage));
      }
    }
    BERTH_TRY(json::object out, page(in, std::move(sort_keys), std::move(items), "TargetGroups"));
    return out;
  });
}

Result<json::value> delete_target_group(ElbContext& ctx, const json::object& in) {
  std::string arn(opt_string(in, "TargetGroupArn").value_or(""));
  std::string id;
  BERTH_TRY(json::value done, with_retries([&]() -> Result<json::value> {
              BERTH_TRY(auto tg, find_target_group(ctx, arn));
              // Deleting a target group that does not exist succeeds, as in AWS.
              if (!tg) return json::object{};
              BERTH_TRY(Usage usage, usage_of(ctx));
              if (usage.contains(arn)) {
                return Error(
                    model::ElbErrc::resource_in_use,
                    "Target group '" + arn + "' is currently in use by a listener or a rule");
              }
              id = parse_arn(arn)->id;
              Writes w;
              w.del(*tg);
              BERTH_TRY(auto targets, scan(ctx.store(), keys::target_prefix(id)));
              for (const auto& t : targets) w.del(t);
              BERTH_CHECK(w.commit(ctx.store()));
              return json::object{};
            }));
  if (!id.empty()) {
    // A registration that committed between the scan and the delete is swept now; any later one
    // fails because the group is gone (register_target compares the group's revision).
    BERTH_TRY(auto late, scan(ctx.store(), keys::target_prefix(id)));
    Writes w;
    for (const auto& t : late) w.del(t);
    if (!late.empty()) (void)w.commit(ctx.store());  // best effort: a conflict means it changed
  }
  return done;
}

// ---- attributes

// The data plane balances every group round robin, without cookies or slow start: values AWS
// accepts but that would change nothing are refused rather than recorded and ignored. Their
// defaults (stickiness.enabled=false, round_robin, slow start 0) are accepted.
Status validate_attribute(std::string_view key, std::string_view value) {
  auto int_in = [&](int64_t lo, int64_t hi) {
    auto v = to_int(value);
    return v && *v >= lo && *v <= hi;
  };
  auto unsupported = [&]() {
    return validation("Target group attribute " + std::string(key) + "=" + std::string(value) +
                      " is not supported by Berth's data plane yet");
  };
  bool ok = true;
  if (key == "deregistration_delay.timeout_seconds") {
    ok = int_in(0, 3600);
  } else if (key == "stickiness.enabled") {
    ok = value == "true" || value == "false";
    if (value == "true") return unsupported();
  } else if (key == "stickiness.type") {
    if (value == "app_cookie") return unsupported();
    ok = value == "lb_cookie";
  } else if (key == "stickiness.lb_cookie.duration_seconds") {
    ok = int_in(1, 604800);
  } else if (key == "load_balancing.algorithm.type") {
    ok = value == "round_robin" || value == "least_outstanding_requests" ||
         value == "weighted_random";
    if (ok && value != "round_robin") return unsupported();
  } else if (key == "slow_start.duration_seconds") {
    ok = value == "0" || int_in(30, 900);
    if (ok && value != "0") return unsupported();
  } else {
    return validation("Target group attribute key '" + std::string(key) + "' is not recognized");
  }
  if (!ok) {
    return validation("Target group attribute value '" + std::string(value) + "' for key '" +
                      std::string(key) + "' is not valid");
  }
  return {};
}

json::object attributes_reply(const json::object& tg) {
  json::array out;
  for (const auto& [k, def] : kTargetGroupAttributeDefaults) {
    out.push_back(json::object{{"Key", k}, {"Value", target_group_attribute(tg, k)}});
  }
  return json::object{{"Attributes", std::move(out)}};
}

Result<json::value> describe_target_group_attributes(ElbContext& ctx, const json::object& in) {
  std::string arn(opt_string(in, "TargetGroupArn").value_or(""));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Record tg, load_target_group(ctx, arn));
    return attributes_reply(tg.obj);
  });
}

Result<json::value> modify_target_group_attributes(ElbContext& ctx, const json::object& in) {
  std::string arn(opt_string(in, "TargetGroupArn").value_or(""));
  std::vector<std::pair<std::string, std::string>> changes;
  if (const json::array* attrs = opt_array(in, "Attributes")) {
    for (const auto& a : *attrs) {
      auto key = opt_string(a.as_object(), "Key");
      auto value = opt_string(a.as_object(), "Value");
      if (!key || !value) return validation("Each attribute must have a Key and a Value");
      BERTH_CHECK(validate_attribute(*key, *value));
      changes.emplace_back(*key, *value);
    }
  }
  if (changes.empty()) return validation("At least one attribute must be specified");
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Record tg, load_target_group(ctx, arn));
    json::object& berth = tg.obj["_berth"].is_object() ? tg.obj["_berth"].as_object()
                                                       : tg.obj["_berth"].emplace_object();
    json::object& attrs = berth["attributes"].is_object() ? berth["attributes"].as_object()
                                                          : berth["attributes"].emplace_object();
    for (const auto& [k, v] : changes) attrs[k] = v;
    Writes w;
    w.put(tg);
    BERTH_CHECK(w.commit(ctx.store()));
    return attributes_reply(tg.obj);
  });
}

}  // namespace

void register_target_group_actions(api::QueryService& s, ElbContext& ctx) {
  s.add("CreateTargetGroup",
        [&ctx](auto&, const json::object& in) { return create_target_group(ctx, in); });
  s.add("ModifyTargetGroup",
        [&ctx](auto&, const json::object& in) { return modify_target_group(ctx, in); });
  s.add("DescribeTargetGroups",
        [&ctx](auto&, const json::object& in) { return describe_target_groups(ctx, in); });
  s.add("DeleteTargetGroup",
        [&ctx](auto&, const json::object& in) { return delete_target_group(ctx, in); });
  s.add("DescribeTargetGroupAttributes", [&ctx](auto&, const json::object& in) {
    return describe_target_group_attributes(ctx, in);
  });
  s.add("ModifyTargetGroupAttributes",
        [&ctx](auto&, const json::object& in) { return modify_target_group_attributes(ctx, in); });
}

}  // namespace berth::server::elbv2
