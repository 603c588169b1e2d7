// Listeners: CreateListener, DescribeListeners, ModifyListener, DeleteListener.
//
// A listener is a port of its load balancer's address, speaking HTTP. Its default actions are
// also stored as its default rule (IsDefault, Priority "default"), so the rules of a listener are
// everything the data plane needs to route it. Because every load balancer here shares one host,
// a port is refused when another load balancer already listens on it at an overlapping address
// (the same address, or either being 0.0.0.0): AWS would give each its own address. The port is
// claimed in its own record (elb/port/<port>, claim_port) in the listener's transaction, so two
// load balancers creating listeners on one port at once cannot both succeed.

#include <map>
#include <set>

#include "server/elbv2/context.h"

namespace berth::server::elbv2 {

namespace {

constexpr std::string_view kWildcard = "0.0.0.0";

Status check_protocol_and_port(const json::object& in, bool required) {
  auto protocol = opt_string(in, "Protocol");
  if (!protocol && required) return validation("A listener protocol must be specified");
  if (protocol && *protocol != "HTTP") {
    return Error(
        model::ElbErrc::unsupported_protocol,
        "Berth listeners support only the HTTP protocol, not '" + std::string(*protocol) + "'");
  }
  auto port = opt_int(in, "Port");
  if (!port && required) return validation("A listener port must be specified");
  if (port && (*port < 1 || *port > 65535)) {
    return validation("Listener port must be between 1 and 65535");
  }
  if (in.contains("SslPolicy") || in.contains("Certificates") || in.contains("AlpnPolicy")) {
    return validation(
        "Certificates, SSL policies and ALPN policies apply only to HTTPS "
        "listeners, which Berth does not support");
  }
  return {};
}

// The port record at `key`: {"claims": [{"listener", "address"}]}, empty if there is none yet.
Result<Record> load_port(const ElbContext& ctx, const std::string& key) {
  BERTH_TRY(auto doc, load_doc(ctx.store(), key));
  if (!doc) return Record{key, json::object{{"claims", json::array()}}, 0};
  return Record{key, std::move(doc->obj), doc->mod_revision};
}

json::array claims_of(const Record& port) {
  const json::array* claims = opt_array(port.obj, "claims");
  return claims != nullptr ? *claims : json::array();
}

}  // namespace

std::string address_of(const json::object& lb) {
  if (const json::object* b = opt_object(lb, "_berth")) {
    if (auto a = opt_string(*b, "address")) return std::string(*a);
  }
  return std::string(kWildcard);
}

Status claim_port(const ElbContext& ctx, Writes& w, int64_t port, std::string_view listener_arn,
                  std::string_view lb_id, std::string_view address) {
  BERTH_TRY(Record rec, load_port(ctx, keys::port(port)));
  json::array kept;
  for (const auto& c : claims_of(rec)) {
    if (!c.is_object()) continue;
    std::string_view holder = opt_string(c.as_object(), "listener").value_or("");
    auto parts = parse_arn(holder);
    if (!parts || holder == listener_arn) continue;  // unreadable, or this listener's own
    std::string_view theirs = opt_string(c.as_object(), "address").value_or(kWildcard);
    bool overlaps = theirs == address || theirs == kWildcard || address == kWildcard;
    if (overlaps && parts->lb_id != lb_id) {
      // A claim is written and removed with its listener, so it names a live listener; should
      // one ever outlive it, it is dropped here instead of holding the port forever.
      BERTH_TRY(auto live, find_listener(ctx, holder));
      if (!live) continue;
      return Error(model::ElbErrc::invalid_configuration_request,
                   "Port " + std::to_string(port) + " at address " + std::string(theirs) +
                       " is already used by load balancer '" + parts->name + "'");
    }
    kept.push_back(c);
  }
  kept.push_back(json::object{{"listener", listener_arn}, {"address", address}});
  rec.obj["claims"] = std::move(kept);
  w.put(rec);
  return {};
}

Status release_ports(const ElbContext& ctx, Writes& w, const std::vector<Record>& listeners) {
  std::map<int64_t, std::set<std::string, std::less<>>> by_port;
  for (const auto& l : listeners) {
    auto port = opt_int(l.obj, "Port");
    if (port) by_port[*port].insert(std::string(opt_string(l.obj, "ListenerArn").value_or("")));
  }
  for (const auto& [port, arns] : by_port) {
    BERTH_TRY(Record rec, load_port(ctx, keys::port(port)));
    if (rec.mod_revision == 0) continue;  // nothing claimed
    json::array kept;
    for (const auto& c : claims_of(rec)) {
      if (c.is_object() && arns.contains(opt_string(c.as_object(), "listener").value_or(""))) {
        continue;
      }
      kept.push_back(c);
    }
    if (kept.empty()) {
      w.del(rec);
    } else {
      rec.obj["claims"] = std::move(kept);
      w.put(rec);
    }
  }
  return {};
}

namespace {

Result<std::optional<Record>> default_rule_of(const ElbContext& ctx, std::string_view listener_id) {
  BERTH_TRY(auto rules, scan(ctx.store(), keys::rule_prefix(listener_id)));
  for (auto& r : rules) {
    if (opt_bool(r.obj, "IsDefault").value_or(false)) return std::optional<Record>(std::move(r));
  }
  return std::optional<Record>();
}

Result<json::value> create_listener(ElbContext& ctx, const json::object& in) {
  std::string lb_arn(opt_string(in, "LoadBalancerArn").value_or(""));
  BERTH_CHECK(check_protocol_and_port(in, true));
  int64_t port = *opt_int(in, "Port");
  std::vector<std::string> tg_arns;
  const json::array* given = opt_array(in, "DefaultActions");
  BERTH_TRY(json::array actions, normalize_actions(given ? *given : json::array(), tg_arns));
  BERTH_TRY(json::array tags, validate_tags(opt_array(in, "Tags")));

  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Record lb, load_load_balancer(ctx, lb_arn));
    auto lb_parts = *parse_arn(lb_arn);
    BERTH_TRY(auto listeners, scan(ctx.store(), keys::listener(lb_parts.id, "")));
    // AWS's limit of listeners per load balancer.
    constexpr size_t kMaxListeners = 50;
    for (const auto& l : listeners) {
      if (opt_int(l.obj, "Port") != port) continue;
      // The same listener again is what AWS answers with; anything else on the port is a clash.
      if (opt_string(l.obj, "Protocol") == "HTTP" && l.obj.at("DefaultActions") == actions) {
        return json::object{{"Listeners", json::array{render(l.obj)}}};
      }
      return Error(model::ElbErrc::duplicate_listener, "A listener already exists on port " +
                                                           std::to_string(port) +
                                                           " of load balancer '" + lb_arn + "'");
    }
    if (listeners.size() >= kMaxListeners) {
      return Error(model::ElbErrc::too_many_listeners,
                   "A load balancer can have at most 50 listeners");
    }
    BERTH_TRY(auto groups, load_forward_targets(ctx, tg_arns, lb_arn));

    std::string id = ctx.new_id();
    std::string arn = ctx.listener_arn(lb_parts.name, lb_parts.id, id);
    Writes w;
    BERTH_CHECK(claim_port(ctx, w, port, arn, lb_parts.id, address_of(lb.obj)));
    json::object listener{{"ListenerArn", arn},
                          {"LoadBalancerArn", lb_arn},
                          {"Port", port},
                          {"Protocol", "HTTP"},
                          {"DefaultActions", actions},
                          {"_berth", json::object{{"lb_name", lb_parts.name}, {"tags", tags}}}};
    std::string rule_id = ctx.new_id();
    json::object rule{{"RuleArn", ctx.rule_arn(lb_parts.name, lb_parts.id, id, rule_id)},
                      {"Priority", "default"},
                      {"Conditions", json::array()},
                      {"Actions", actions},
                      {"IsDefault", true},
                      {"_berth", json::object{{"tags", json::array()}}}};
    w.touch(lb);
    for (const auto& g : groups) w.touch(g);
    w.put(keys::listener(lb_parts.id, id), listener, 0);
    w.put(keys::rule(id, rule_id), rule, 0);
    BERTH_CHECK(w.commit(ctx.store()));
    return json::object{{"Listeners", json::array{render(listener)}}};
  });
}

Result<json::value> describe_listeners(ElbContext& ctx, const json::object& in) {
  auto lb_arn = opt_string(in, "LoadBalancerArn");
  const json::array* arns = opt_array(in, "ListenerArns");
  bool by_arns = arns && !arns->empty();
  if (lb_arn.has_value() == by_arns) {
    return validation("You must specify either a load balancer ARN or listener ARNs");
  }
  return with_retries([&]() -> Result<json::value> {
    std::vector<std::pair<std::string, json::object>> found;  // sort key, listener
    if (by_arns) {
      for (const auto& a : *arns) {
        BERTH_TRY(Record l, load_listener(ctx, a.as_string()));
        char key[16];
        std::snprintf(key, sizeof key, "%08zu", found.size());
        found.emplace_back(key, render(l.obj));
      }
    } else {
      BERTH_TRY(Record lb, load_load_balancer(ctx, *lb_arn));
      BERTH_TRY(auto all, scan(ctx.store(), keys::listener(parse_arn(*lb_arn)->id, "")));
      for (const auto& l : all) {
        char key[16];
        std::snprintf(key, sizeof key, "%05lld", static_cast<long long>(*opt_int(l.obj, "Port")));
        found.emplace_back(key, render(l.obj));
      }
      std::sort(found.begin(), found.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
    }
    std::vector<std::string> sort_keys;
    json::array items;
    for (auto& [k, l] : found) {
      sort_keys.push_back(k);
      items.push_back(std::move(l));
    }
    BERTH_TRY(json::object out, page(in, std::move(sort_keys), std::move(items), "Listeners"));
    return out;
  });
}

Result<json::value> modify_listener(ElbContext& ctx, const json::object& in) {
  std::string arn(opt_string(in, "ListenerArn").value_or(""));
  BERTH_CHECK(check_protocol_and_port(in, false));
  std::vector<std::string> tg_arns;
  std::optional<json::array> actions;
  if (const json::array* given = opt_array(in, "DefaultActions")) {
    BERTH_TRY(actions, normalize_actions(*given, tg_arns));
  }
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Record listener, load_listener(ctx, arn));
    auto parts = *parse_arn(arn);
    std::string lb_arn(opt_string(listener.obj, "LoadBalancerArn").value_or(""));
    BERTH_TRY(Record lb, load_load_balancer(ctx, lb_arn));
    Writes w;
    w.touch(lb);
    if (auto port = opt_int(in, "Port"); port && port != opt_int(listener.obj, "Port")) {
      BERTH_TRY(auto siblings, scan(ctx.store(), keys::listener(parts.lb_id, "")));
      for (const auto& l : siblings) {
        if (opt_int(l.obj, "Port") == port) {
          return Error(model::ElbErrc::duplicate_listener,
                       "A listener already exists on port " + std::to_string(*port) +
                           " of load balancer '" + lb_arn + "'");
        }
      }
      BERTH_CHECK(release_ports(ctx, w, {listener}));
      BERTH_CHECK(claim_port(ctx, w, *port, arn, parts.lb_id, address_of(lb.obj)));
      listener.obj["Port"] = *port;
    }
    if (actions) {
      BERTH_TRY(auto groups, load_forward_targets(ctx, tg_arns, lb_arn));
      for (const auto& g : groups) w.touch(g);
      listener.obj["DefaultActions"] = *actions;
      BERTH_TRY(auto rule, default_rule_of(ctx, parts.id));
      if (rule) {
        rule->obj["Actions"] = *actions;
        w.put(*rule);
      }
    }
    w.put(listener);
    BERTH_CHECK(w.commit(ctx.store()));
    return json::object{{"Listeners", json::array{render(listener.obj)}}};
  });
}

Result<json::value> delete_listener(ElbContext& ctx, const json::object& in) {
  std::string arn(opt_string(in, "ListenerArn").value_or(""));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Record listener, load_listener(ctx, arn));
    Writes w;
    w.del(listener);
    BERTH_CHECK(release_ports(ctx, w, {listener}));
    BERTH_TRY(auto rules, scan(ctx.store(), keys::rule_prefix(parse_arn(arn)->id)));
    for (const auto& r : rules) w.del(r);
    BERTH_CHECK(w.commit(ctx.store()));
    return json::object{};
  });
}

}  // namespace

void register_listener_actions(api::QueryService& s, ElbContext& ctx) {
  s.add("CreateListener",
        [&ctx](auto&, const json::object& in) { return create_listener(ctx, in); });
  s.add("DescribeListeners",
        [&ctx](auto&, const json::object& in) { return describe_listeners(ctx, in); });
  s.add("ModifyListener",
        [&ctx](auto&, const json::object& in) { return modify_listener(ctx, in); });
  s.add("DeleteListener",
        [&ctx](auto&, const json::object& in) { return delete_listener(ctx, in); });
}

}  // namespace berth::server::elbv2
