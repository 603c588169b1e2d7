#include "server/elbv2/elbv2_service.h"

#include <algorithm>
#include <cstdio>

#include "common/base64.h"
#include "server/elbv2/context.h"

namespace berth::server::elbv2 {

Elbv2Service::Elbv2Service(store::Store& store, const Clock& clock, Random& rng, ElbConfig config)
    : store_(store),
      clock_(clock),
      rng_(rng),
      config_(std::move(config)),
      ctx_(std::make_unique<ElbContext>(store_, clock_, rng_, config_)),
      query_(model::ServiceModel::elbv2()) {
  register_load_balancer_actions(query_, *ctx_);
  register_target_group_actions(query_, *ctx_);
  register_listener_actions(query_, *ctx_);
  register_rule_actions(query_, *ctx_);
  register_target_actions(query_, *ctx_);
  register_tag_actions(query_, *ctx_);
}

Elbv2Service::~Elbv2Service() = default;

std::string ElbContext::new_id() const {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng_.next()));
  return buf;
}

std::string ElbContext::arn(std::string_view resource) const {
  return "arn:aws:elasticloadbalancing:" + config_.region + ":" + config_.account_id + ":" +
         std::string(resource);
}

std::string ElbContext::load_balancer_arn(std::string_view name, std::string_view id) const {
  return arn("loadbalancer/app/" + std::string(name) + "/" + std::string(id));
}

std::string ElbContext::target_group_arn(std::string_view name, std::string_view id) const {
  return arn("targetgroup/" + std::string(name) + "/" + std::string(id));
}

std::string ElbContext::listener_arn(std::string_view lb_name, std::string_view lb_id,
                                     std::string_view id) const {
  return arn("listener/app/" + std::string(lb_name) + "/" + std::string(lb_id) + "/" +
             std::string(id));
}

std::string ElbContext::rule_arn(std::string_view lb_name, std::string_view lb_id,
                                 std::string_view listener_id, std::string_view id) const {
  return arn("listener-rule/app/" + std::string(lb_name) + "/" + std::string(lb_id) + "/" +
             std::string(listener_id) + "/" + std::string(id));
}

Result<std::vector<Record>> scan(store::Store& store, const std::string& prefix) {
  auto r = store.range({prefix, "", 0});
  if (!r.ok()) return store_failure(r.error());
  std::vector<Record> out;
  out.reserve(r->kvs.size());
  for (auto& kv : r->kvs) {
    auto obj = parse_object(kv.value);
    if (!obj) continue;
    out.push_back({std::move(kv.key), std::move(*obj), kv.mod_revision});
  }
  return out;
}

Error load_balancer_not_found() {
  return Error(model::ElbErrc::load_balancer_not_found, "One or more load balancers not found");
}
Error target_group_not_found() {
  return Error(model::ElbErrc::target_group_not_found, "One or more target groups not found");
}
Error listener_not_found() {
  return Error(model::ElbErrc::listener_not_found, "One or more listeners not found");
}
Error rule_not_found() {
  return Error(model::ElbErrc::rule_not_found, "One or more rules not found");
}

namespace {

// The ARN's record at `key`, if the stored document carries exactly this ARN in `arn_member`
// (same region, account and id: a recreated resource of the same name is another resource).
Result<std::optional<Record>> find_at(const ElbContext& ctx, const std::string& key,
                                      std::string_view arn_member, std::string_view arn) {
  BERTH_TRY(auto doc, load_doc(ctx.store(), key));
  if (!doc || opt_string(doc->obj, arn_member) != arn) return std::optional<Record>();
  return std::optional<Record>(Record{key, std::move(doc->obj), doc->mod_revision});
}

Result<ArnParts> parse_kind(std::string_view arn, std::string_view kind, std::string_view label) {
  auto p = parse_arn(arn);
  if (!p || p->kind != kind) {
    return validation(quoted(arn) + " is not a valid " + std::string(label) + " ARN");
  }
  return std::move(*p);
}

template <class Find>
Result<Record> must(Find&& found, Error (*not_found)()) {
  BERTH_TRY(std::optional<Record> r, std::forward<Find>(found));
  if (!r) return not_found();
  return std::move(*r);
}

}  // namespace

Result<std::optional<Record>> find_load_balancer(const ElbContext& ctx, std::string_view arn) {
  BERTH_TRY(ArnParts p, parse_kind(arn, "loadbalancer", "load balancer"));
  return find_at(ctx, keys::load_balancer(p.name), "LoadBalancerArn", arn);
}
Result<std::optional<Record>> find_target_group(const ElbContext& ctx, std::string_view arn) {
  BERTH_TRY(ArnParts p, parse_kind(arn, "targetgroup", "target group"));
  return find_at(ctx, keys::target_group(p.name), "TargetGroupArn", arn);
}
Result<std::optional<Record>> find_listener(const ElbContext& ctx, std::string_view arn) {
  BERTH_TRY(ArnParts p, parse_kind(arn, "listener", "listener"));
  return find_at(ctx, keys::listener(p.lb_id, p.id), "ListenerArn", arn);
}
Result<std::optional<Record>> find_rule(const ElbContext& ctx, std::string_view arn) {
  BERTH_TRY(ArnParts p, parse_kind(arn, "listener-rule", "rule"));
  return find_at(ctx, keys::rule(p.listener_id, p.id), "RuleArn", arn);
}
Result<Record> load_load_balancer(const ElbContext& ctx, std::string_view arn) {
  return must(find_load_balancer(ctx, arn), load_balancer_not_found);
}
Result<Record> load_target_group(const ElbContext& ctx, std::string_view arn) {
  return must(find_target_group(ctx, arn), target_group_not_found);
}
Result<Record> load_listener(const ElbContext& ctx, std::string_view arn) {
  return must(find_listener(ctx, arn), listener_not_found);
}
Result<Record> load_rule(const ElbContext& ctx, std::string_view arn) {
  return must(find_rule(ctx, arn), rule_not_found);
}

Result<Record> load_resource(const ElbContext& ctx, std::string_view arn) {
  auto p = parse_arn(arn);
  if (!p) return validation(quoted(arn) + " is not a valid resource ARN");
  if (p->kind == "loadbalancer") return load_load_balancer(ctx, arn);
  if (p->kind == "targetgroup") return load_target_group(ctx, arn);
  if (p->kind == "listener") return load_listener(ctx, arn);
  return load_rule(ctx, arn);
}

json::object render(const json::object& stored) {
  json::object out = stored;
  out.erase("_berth");
  return out;
}

void Writes::put(const std::string& key, const json::object& obj, int64_t expected_revision) {
  // A record both touched and changed in one transaction is written once, with its change.
  if (!keys_.insert(key).second) {
    for (auto& op : txn_.ops) {
      if (op.key == key) op = store::Op::put(key, dump(obj));
    }
    return;
  }
  txn_.compares.push_back({key, expected_revision});
  txn_.ops.push_back(store::Op::put(key, dump(obj)));
}

void Writes::del(const Record& r) {
  if (!keys_.insert(r.key).second) {
    for (auto& op : txn_.ops) {
      if (op.key == r.key) op = store::Op::del(r.key);
    }
    return;
  }
  txn_.compares.push_back({r.key, r.mod_revision});
  txn_.ops.push_back(store::Op::del(r.key));
}

Status Writes::commit(store::Store& store) const {
  auto rev = store.commit(txn_);
  if (!rev.ok()) return rev.error();
  return {};
}

Result<json::object> page(const json::object& in, std::vector<std::string> sort_keys,
                          json::array items, std::string_view list_name) {
  // AWS's default and maximum page size.
  constexpr int64_t kMaxPageSize = 400;
  int64_t size = opt_int(in, "PageSize").value_or(kMaxPageSize);
  if (size < 1 || size > kMaxPageSize) {
    return validation("PageSize must be between 1 and " + std::to_string(kMaxPageSize));
  }
  size_t start = 0;
  if (auto marker = opt_string(in, "Marker"); marker && !marker->empty()) {
    auto after = base64_decode(*marker);
    if (!after) return validation("Invalid marker '" + std::string(*marker) + "'");
    start = static_cast<size_t>(std::upper_bound(sort_keys.begin(), sort_keys.end(), *after) -
                                sort_keys.begin());
  }
  json::array out;
  size_t end = std::min(items.size(), start + static_cast<size_t>(size));
  for (size_t i = start; i < end; ++i) out.push_back(std::move(items[i]));
  json::object result{{list_name, std::move(out)}};
  if (end < items.size()) result["NextMarker"] = base64_encode(sort_keys[end - 1]);
  return result;
}

bool valid_ipv4(std::string_view s) {
  int parts = 0;
  size_t i = 0;
  while (i <= s.size()) {
    size_t dot = s.find('.', i);
    std::string_view part = s.substr(i, dot == std::string_view::npos ? s.npos : dot - i);
    if (part.empty() || part.size() > 3 || (part.size() > 1 && part[0] == '0')) return false;
    int v = 0;
    for (char c : part) {
      if (!std::isdigit(static_cast<unsigned char>(c))) return false;
      v = v * 10 + (c - '0');
    }
    if (v > 255) return false;
    ++parts;
    if (dot == std::string_view::npos) break;
    i = dot + 1;
  }
  return parts == 4;
}

Result<json::array> validate_tags(const json::array* tags) {
  json::array out;
  if (tags == nullptr) return out;
  // AWS's limit per resource.
  constexpr size_t kMaxTags = 50;
  if (tags->size() > kMaxTags) {
    return Error(model::ElbErrc::too_many_tags, "A resource can have at most 50 tags");
  }
  std::set<std::string, std::less<>> seen;
  for (const auto& t : *tags) {
    const auto& o = t.as_object();
    auto key = opt_string(o, "Key").value_or("");
    auto value = opt_string(o, "Value").value_or("");
    if (key.empty() || key.size() > 128) return validation("Tag keys must be 1-128 characters");
    if (value.size() > 256) return validation("Tag values must be at most 256 characters");
    if (key.starts_with("aws:")) {
      return validation("Tag keys starting with 'aws:' are reserved for AWS use");
    }
    if (!seen.insert(std::string(key)).second) {
      return Error(model::ElbErrc::duplicate_tag_keys, "Duplicate tag key " + quoted(key));
    }
    out.push_back(json::object{{"Key", key}, {"Value", value}});
  }
  return out;
}

json::array merge_tags(const json::array& tags, const json::array& add) {
  json::array out = tags;
  for (const auto& a : add) {
    const auto& key = a.as_object().at("Key");
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const json::value& t) { return t.as_object().at("Key") == key; });
    if (it != out.end()) {
      *it = a;
    } else {
      out.push_back(a);
    }
  }
  return out;
}

}  // namespace berth::server::elbv2
