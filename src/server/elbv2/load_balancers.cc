// Load balancers: CreateLoadBalancer, DescribeLoadBalancers, DeleteLoadBalancer.
//
// A load balancer is an address to listen on (its listeners add the ports). The address comes
// from SubnetMappings.member.N.PrivateIPv4Address, else ElbConfig::default_address. Subnets are
// free text, echoed as AvailabilityZones in zone REGIONa (Berth has one location). DNSName is
// the address itself, or for the wildcard address NAME-ID.REGION.elb.localhost (with AWS's
// "internal-" prefix for internal load balancers): *.localhost resolves to the loopback address
// (RFC 6761; curl and systemd-resolved do so without any DNS setup).

#include <cctype>

#include "server/elbv2/context.h"

namespace berth::server::elbv2 {

namespace {

constexpr std::string_view kWildcard = "0.0.0.0";

Status validate_name(std::string_view name) {
  if (name.empty() || name.size() > 32) {
    return validation("Load balancer name '" + std::string(name) +
                      "' must be between 1 and 32 characters");
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return validation("Load balancer name '" + std::string(name) +
                        "' can only contain characters that are alphanumeric characters or "
                        "hyphens(-)");
    }
  }
  if (name.front() == '-' || name.back() == '-') {
    return validation("Load balancer name '" + std::string(name) +
                      "' cannot begin or end with '-' character");
  }
  if (name.starts_with("internal-")) {
    return validation("Load balancer name '" + std::string(name) +
                      "' cannot begin with 'internal-'");
  }
  return {};
}

struct Placement {
  std::string address;
  json::array zones;
};

Result<Placement> placement_from(const ElbContext& ctx, const json::object& in) {
  const json::array* subnets = opt_array(in, "Subnets");
  const json::array* mappings = opt_array(in, "SubnetMappings");
  if (subnets && !subnets->empty() && mappings && !mappings->empty()) {
    return validation("You can specify subnets or subnet mappings, not both");
  }
  Placement p;
  p.address = ctx.config().default_address;
  std::string zone = ctx.config().region + "a";
  std::set<std::string, std::less<>> seen;
  auto add_zone = [&](std::string_view subnet, json::array addresses) -> Status {
    if (subnet.empty()) return validation("A subnet ID must be specified");
    if (!seen.insert(std::string(subnet)).second) {
      return validation("Subnet '" + std::string(subnet) + "' is specified more than once");
    }
    p.zones.push_back(json::object{
        {"ZoneName", zone}, {"SubnetId", subnet}, {"LoadBalancerAddresses", std::move(addresses)}});
    return {};
  };
  if (subnets) {
    for (const auto& s : *subnets) BERTH_CHECK(add_zone(s.as_string(), {}));
  }
  std::optional<std::string> mapped;
  if (mappings) {
    for (const auto& m : *mappings) {
      const auto& o = m.as_object();
      if (o.contains("AllocationId") || o.contains("IPv6Address")) {
        return validation(
            "Berth load balancers take only SubnetId and PrivateIPv4Address in "
            "subnet mappings");
      }
      json::array addresses;
      if (auto ip = opt_string(o, "PrivateIPv4Address")) {
        if (!valid_ipv4(*ip)) {
          return validation(quoted(*ip) + " is not a valid IPv4 address");
        }
        // One load balancer listens on one address.
        if (mapped && *mapped != *ip) {
          return validation(
              "All subnet mappings of a load balancer must name the same "
              "PrivateIPv4Address");
        }
        mapped = std::string(*ip);
        addresses.push_back(json::object{{"PrivateIPv4Address", *ip}});
      }
      BERTH_CHECK(add_zone(opt_string(o, "SubnetId").value_or(""), std::move(addresses)));
    }
  }
  if (mapped) p.address = *mapped;
  return p;
}

// The settings that make two CreateLoadBalancer calls "the same" (AWS then returns the existing
// load balancer instead of DuplicateLoadBalancerName). Tags are not among them.
json::object settings_of(const json::object& lb) {
  json::object s;
  for (const char* k : {"Scheme", "Type", "IpAddressType", "AvailabilityZones", "SecurityGroups"}) {
    if (auto* v = lb.if_contains(k)) s[k] = *v;
  }
  if (const json::object* b = opt_object(lb, "_berth")) {
    if (auto* a = b->if_contains("address")) s["address"] = *a;
  }
  return s;
}

Result<json::value> create_load_balancer(ElbContext& ctx, const json::object& in) {
  std::string name(opt_string(in, "Name").value_or(""));
  BERTH_CHECK(validate_name(name));
  auto type = opt_string(in, "Type").value_or("application");
  if (type != "application") {
    return validation("Berth supports only application load balancers (Type application), not '" +
                      std::string(type) + "'");
  }
  auto ip_type = opt_string(in, "IpAddressType").value_or("ipv4");
  if (ip_type != "ipv4") return validation("Berth load balancers support only IpAddressType ipv4");
  auto scheme = opt_string(in, "Scheme").value_or("internet-facing");
  BERTH_TRY(Placement placement, placement_from(ctx, in));
  BERTH_TRY(json::array tags, validate_tags(opt_array(in, "Tags")));
  json::array groups;
  if (auto* sg = opt_array(in, "SecurityGroups")) groups = *sg;

  return with_retries([&]() -> Result<json::value> {
    std::string id = ctx.new_id();
    json::object lb;
    lb["LoadBalancerArn"] = ctx.load_balancer_arn(name, id);
    if (placement.address == kWildcard) {
      lb["DNSName"] = std::string(scheme == "internal" ? "internal-" : "") + name + "-" + id + "." +
                      ctx.config().region + ".elb.localhost";
    } else {
      lb["DNSName"] = placement.address;
    }
    lb["CreatedTime"] = ctx.now();
    lb["LoadBalancerName"] = name;
    lb["Scheme"] = scheme;
    lb["State"] = json::object{{"Code", "active"}};
    lb["Type"] = "application";
    lb["AvailabilityZones"] = placement.zones;
    lb["SecurityGroups"] = groups;
    lb["IpAddressType"] = "ipv4";
    lb["_berth"] = json::object{{"id", id}, {"address", placement.address}, {"tags", tags}};

    std::string key = keys::load_balancer(name);
    BERTH_TRY(auto existing, load_doc(ctx.store(), key));
    if (existing) {
      if (settings_of(existing->obj) != settings_of(lb)) {
        return Error(model::ElbErrc::duplicate_load_balancer_name,
                     "A load balancer with the same name '" + name +
                         "' exists, but with different settings");
      }
      return json::object{{"LoadBalancers", json::array{render(existing->obj)}}};
    }
    Writes w;
    w.put(key, lb, 0);
    BERTH_CHECK(w.commit(ctx.store()));
    return json::object{{"LoadBalancers", json::array{render(lb)}}};
  });
}

Result<json::value> describe_load_balancers(ElbContext& ctx, const json::object& in) {
  const json::array* arns = opt_array(in, "LoadBalancerArns");
  const json::array* names = opt_array(in, "Names");
  if (arns && !arns->empty() && names && !names->empty()) {
    return validation(
        "Load balancer names and load balancer ARNs cannot be specified at the "
        "same time");
  }
  return with_retries([&]() -> Result<json::value> {
    std::vector<std::string> sort_keys;
    json::array items;
    auto add = [&](const Record& r) {
      // Explicit lists answer in request order; the key keeps the Marker working for them too.
      char key[16];
      std::snprintf(key, sizeof key, "%08zu", items.size());
      sort_keys.push_back(key);
      items.push_back(render(r.obj));
    };
    if (names && !names->empty()) {
      for (const auto& n : *names) {
        BERTH_TRY(auto doc, load_doc(ctx.store(), keys::load_balancer(n.as_string())));
        if (!doc) {
          return Error(model::ElbErrc::load_balancer_not_found,
                       "Load balancers '[" + std::string(n.as_string()) + "]' not found");
        }
        add(Record{"", std::move(doc->obj), doc->mod_revision});
      }
    } else if (arns && !arns->empty()) {
      for (const auto& a : *arns) {
        BERTH_TRY(auto r, find_load_balancer(ctx, a.as_string()));
        if (!r) {
          return Error(model::ElbErrc::load_balancer_not_found,
                       "Load balancers '[" + std::string(a.as_string()) + "]' not found");
        }
        add(*r);
      }
    } else {
      BERTH_TRY(auto all, scan(ctx.store(), std::string(keys::kLoadBalancers)));
      for (const auto& r : all) {
        sort_keys.push_back(r.key);
        items.push_back(render(r.obj));
      }
    }
    BERTH_TRY(json::object out, page(in, std::move(sort_keys), std::move(items), "LoadBalancers"));
    return out;
  });
}

Result<json::value> delete_load_balancer(ElbContext& ctx, const json::object& in) {
  std::string arn(opt_string(in, "LoadBalancerArn").value_or(""));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(auto lb, find_load_balancer(ctx, arn));
    // Deleting a load balancer that does not exist succeeds, as in AWS.
    if (!lb) return json::object{};
    Writes w;
    w.del(*lb);
    auto lb_id = parse_arn(arn)->id;
    BERTH_TRY(auto listeners, scan(ctx.store(), keys::listener(lb_id, "")));
    BERTH_CHECK(release_ports(ctx, w, listeners));
    for (const auto& l : listeners) {
      w.del(l);
      auto listener_id = l.key.substr(l.key.rfind('/') + 1);
      BERTH_TRY(auto rules, scan(ctx.store(), keys::rule_prefix(listener_id)));
      for (const auto& r : rules) w.del(r);
    }
    BERTH_CHECK(w.commit(ctx.store()));
    return json::object{};
  });
}

}  // namespace

void register_load_balancer_actions(api::QueryService& s, ElbContext& ctx) {
  s.add("CreateLoadBalancer",
        [&ctx](auto&, const json::object& in) { return create_load_balancer(ctx, in); });
  s.add("DescribeLoadBalancers",
        [&ctx](auto&, const json::object& in) { return describe_load_balancers(ctx, in); });
  s.add("DeleteLoadBalancer",
        [&ctx](auto&, const json::object& in) { return delete_load_balancer(ctx, in); });
}

}  // namespace berth::server::elbv2
