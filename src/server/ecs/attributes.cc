// PutAttributes, DeleteAttributes, ListAttributes (targetType container-instance).

#include "server/ecs/attributes.h"

#include <boost/json/parse.hpp>
#include <cctype>
#include <map>

#include "server/ecs/paging.h"

namespace berth::server::ecs {

namespace {

// ECS: names up to 128 letters, numbers, hyphens, underscores, slashes, back slashes, periods;
// values additionally allow at signs, colons and spaces.
bool valid_attr_text(std::string_view s, bool value) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '/' ||
        c == '\\' || c == '.')
      continue;
    if (value && (c == '@' || c == ':' || c == ' ')) continue;
    return false;
  }
  return true;
}

bool is_custom(std::string_view name) {
  return !name.starts_with("ecs.") && !name.starts_with("com.amazonaws.ecs.");
}

constexpr size_t kMaxCustomAttributes = 10;

}  // namespace

Result<json::array> validate_attribute_list(const json::array* attributes) {
  json::array out;
  if (attributes == nullptr) return out;
  for (const auto& a : *attributes) {
    const auto& o = a.as_object();
    auto name = opt_string(o, "name").value_or("");
    if (!valid_attr_text(name, false)) {
      return invalid_parameter("Invalid attribute name '" + std::string(name) +
                               "': up to 128 letters, numbers, hyphens, underscores, slashes, "
                               "back slashes and periods.");
    }
    json::object attr{{"name", name}};
    if (auto value = opt_string(o, "value")) {
      if (!valid_attr_text(*value, true)) {
        return invalid_parameter("Invalid value for attribute '" + std::string(name) + "'.");
      }
      attr["value"] = *value;
    }
    out.push_back(std::move(attr));
  }
  return out;
}

Status merge_attributes(json::array& attrs, const json::array& updates, bool limit_custom) {
  for (const auto& u : updates) {
    bool found = false;
    for (auto& a : attrs) {
      if (a.as_object().at("name") == u.as_object().at("name")) {
        a = u;
        found = true;
      }
    }
    if (!found) attrs.push_back(u);
  }
  if (limit_custom) {
    size_t custom = 0;
    for (const auto& a : attrs) custom += is_custom(a.as_object().at("name").as_string());
    if (custom > kMaxCustomAttributes) {
      return Error(model::Errc::attribute_limit_exceeded,
                   "You can apply up to 10 custom attributes per resource.");
    }
  }
  return {};
}

namespace {

// Groups the request's attributes by target container instance id.
Result<std::map<std::string, json::array>> by_target(const EcsContext& ctx,
                                                     const std::string& cluster,
                                                     const json::object& in) {
  std::map<std::string, json::array> out;
  const json::array* attrs = opt_array(in, "attributes");
  if (attrs == nullptr || attrs->empty()) return invalid_parameter("attributes can not be empty.");
  for (const auto& a : *attrs) {
    const auto& o = a.as_object();
    if (auto t = opt_string(o, "targetType"); t && *t != "container-instance") {
      return invalid_parameter("targetType must be container-instance.");
    }
    auto target = opt_string(o, "targetId");
    if (!target || target->empty()) {
      return invalid_parameter("targetId is required for attribute '" +
                               std::string(opt_string(o, "name").value_or("")) + "'.");
    }
    auto id = container_instance_id_from(ctx, cluster, *target);
    if (!id.ok()) {
      return Error(model::Errc::target_not_found, "Could not find " + std::string(*target) + ".");
    }
    json::array one{a};
    BERTH_TRY(json::array valid, validate_attribute_list(&one));
    out[*id].push_back(valid[0]);
  }
  return out;
}

Result<json::value> change_attributes(EcsContext& ctx, const json::object& in, bool put) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  BERTH_TRY(auto targets, by_target(ctx, cluster, in));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Doc cluster_doc, load_active_cluster(ctx, cluster));
    (void)cluster_doc;
    store::Txn txn;
    for (const auto& [id, attrs] : targets) {
      BERTH_TRY(auto doc, load_doc(ctx.store(), keys::instance(cluster, id)));
      if (!doc || opt_string(doc->obj, "status") == "INACTIVE") {
        return Error(model::Errc::target_not_found,
                     "Could not find " + ctx.container_instance_arn(cluster, id) + ".");
      }
      json::array current =
          doc->obj.contains("attributes") ? doc->obj.at("attributes").as_array() : json::array();
      if (put) {
        BERTH_CHECK(merge_attributes(current, attrs, true));
      } else {
        json::array kept;
        for (const auto& c : current) {
          bool drop = false;
          for (const auto& a : attrs) drop |= a.as_object().at("name") == c.as_object().at("name");
          if (!drop) kept.push_back(c);
        }
        current = std::move(kept);
      }
      doc->obj["attributes"] = std::move(current);
      txn.compares.push_back({keys::instance(cluster, id), doc->mod_revision});
      txn.ops.push_back(store::Op::put(keys::instance(cluster, id), dump(doc->obj)));
    }
    auto rev = ctx.store().commit(txn);
    if (!rev.ok()) return rev.error();
    return json::object{{"attributes", in.at("attributes")}};
  });
}

Result<json::value> list_attributes(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  BERTH_TRY(Doc cluster_doc, load_active_cluster(ctx, cluster));
  (void)cluster_doc;
  if (opt_string(in, "targetType") != "container-instance") {
    return invalid_parameter("targetType must be container-instance.");
  }
  auto name = opt_string(in, "attributeName");
  auto value = opt_string(in, "attributeValue");
  if (value && !name) return invalid_parameter("attributeValue requires attributeName.");
  BERTH_TRY(size_t max, max_results_from(in));
  store::RangeRequest req{keys::instance_prefix(cluster), "", 0};
  auto r = ctx.store().range(req);
  if (!r.ok()) return store_failure(r.error());
  json::array all;
  for (const auto& kv : r->kvs) {
    boost::system::error_code ec;
    json::value v = json::parse(kv.value, ec);
    if (ec || !v.is_object()) continue;
    const auto& ci = v.as_object();
    if (opt_string(ci, "status") == "INACTIVE") continue;
    const json::array* attrs = opt_array(ci, "attributes");
    if (attrs == nullptr) continue;
    for (const auto& a : *attrs) {
      const auto& ao = a.as_object();
      if (name && opt_string(ao, "name") != *name) continue;
      if (value && opt_string(ao, "value") != *value) continue;
      json::object item = ao;
      item["targetType"] = "container-instance";
      item["targetId"] = ci.at("containerInstanceArn");
      all.push_back(std::move(item));
    }
  }
  BERTH_TRY(Page page, page_list(std::move(all), in, max));
  json::object out{{"attributes", std::move(page.items)}};
  put_next_token(out, page);
  return out;
}

}  // namespace

void register_attribute_actions(api::JsonService& s, EcsContext& ctx) {
  s.add("PutAttributes",
        [&ctx](auto&, const json::object& in) { return change_attributes(ctx, in, true); });
  s.add("DeleteAttributes",
        [&ctx](auto&, const json::object& in) { return change_attributes(ctx, in, false); });
  s.add("ListAttributes",
        [&ctx](auto&, const json::object& in) { return list_attributes(ctx, in); });
}

}  // namespace berth::server::ecs
