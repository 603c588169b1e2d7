// TagResource, UntagResource, ListTagsForResource on clusters, task definitions, container
// instances (and tasks and services, whose records arrive with later issues).

#include "server/ecs/context.h"

namespace berth::server::ecs {

Result<std::string> taggable_key_for_arn(const EcsContext& ctx, std::string_view arn) {
  std::string base = ctx.arn("");
  if (!arn.starts_with(base)) {
    return invalid_parameter(
        "Invalid resource ARN (wrong partition, region or account): " + std::string(arn) + ".");
  }
  std::string_view res = arn.substr(base.size());
  auto slash = res.find('/');
  if (slash == std::string_view::npos)
    return invalid_parameter("Invalid resource ARN: " + std::string(arn) + ".");
  std::string_view type = res.substr(0, slash);
  std::string_view rest = res.substr(slash + 1);
  if (type == "cluster") {
    BERTH_TRY(std::string name, cluster_name_from_ref(ctx, rest));
    return keys::cluster(name);
  }
  if (type == "task-definition") {
    if (auto key = task_definition_key_for_arn(ctx, arn)) return *key;
    return invalid_parameter("Invalid task definition ARN: " + std::string(arn) + ".");
  }
  auto two = rest.find('/');
  if (two == std::string_view::npos) {
    return invalid_parameter("Invalid resource ARN: " + std::string(arn) + ".");
  }
  std::string cluster(rest.substr(0, two));
  std::string id(rest.substr(two + 1));
  if (type == "container-instance") return keys::instance(cluster, id);
  if (type == "task") return keys::task_prefix(cluster) + id;
  if (type == "service") return keys::service_prefix(cluster) + id;
  return invalid_parameter("Unsupported resource type for tagging: " + std::string(type) + ".");
}

namespace {

Error not_found() {
  return Error(model::Errc::resource_not_found, "The specified resource could not be found.");
}

Result<json::value> change_tags(EcsContext& ctx, const json::object& in, bool add) {
  BERTH_TRY(std::string key, taggable_key_for_arn(ctx, opt_string(in, "resourceArn").value_or("")));
  json::array additions;
  if (add) {
    BERTH_TRY(additions, validate_tags(opt_array(in, "tags")));
  }
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(auto doc, load_doc(ctx.store(), key));
    if (!doc) return not_found();
    json::array tags = doc->obj.contains("tags") ? doc->obj.at("tags").as_array() : json::array();
    if (add) {
      for (const auto& t : additions) {
        bool replaced = false;
        for (auto& cur : tags) {
          if (cur.as_object().at("key") == t.as_object().at("key")) {
            cur = t;
            replaced = true;
          }
        }
        if (!replaced) tags.push_back(t);
      }
      if (tags.size() > 50)
        return invalid_parameter("Too many tags: a resource can have at most 50.");
    } else {
      json::array kept;
      const json::array* drop = opt_array(in, "tagKeys");
      for (const auto& cur : tags) {
        bool gone = false;
        if (drop) {
          for (const auto& k : *drop) gone |= cur.as_object().at("key") == k;
        }
        if (!gone) kept.push_back(cur);
      }
      tags = std::move(kept);
    }
    doc->obj["tags"] = std::move(tags);
    BERTH_CHECK(replace_doc(ctx.store(), key, doc->obj, doc->mod_revision));
    return json::object{};
  });
}

Result<json::value> list_tags(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(std::string key, taggable_key_for_arn(ctx, opt_string(in, "resourceArn").value_or("")));
  BERTH_TRY(auto doc, load_doc(ctx.store(), key));
  if (!doc) return not_found();
  return json::object{{"tags", doc->obj.contains("tags") ? doc->obj.at("tags") : json::array()}};
}

}  // namespace

void register_tag_actions(api::JsonService& s, EcsContext& ctx) {
  s.add("TagResource",
        [&ctx](auto&, const json::object& in) { return change_tags(ctx, in, true); });
  s.add("UntagResource",
        [&ctx](auto&, const json::object& in) { return change_tags(ctx, in, false); });
  s.add("ListTagsForResource",
        [&ctx](auto&, const json::object& in) { return list_tags(ctx, in); });
}

}  // namespace berth::server::ecs
