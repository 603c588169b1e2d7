// Tags: AddTags, RemoveTags, DescribeTags on load balancers, target groups, listeners and rules.
// Tags live in the record's _berth.tags, so they never show in the Describe* shapes (as in AWS,
// where only DescribeTags returns them).

#include "server/elbv2/context.h"

namespace berth::server::elbv2 {

namespace {

// AWS's limits: resources per call, tags per resource.
constexpr size_t kMaxResources = 20;
constexpr size_t kMaxTags = 50;

Result<std::vector<std::string>> resource_arns(const json::object& in) {
  std::vector<std::string> out;
  if (const json::array* arns = opt_array(in, "ResourceArns")) {
    for (const auto& a : *arns) out.emplace_back(a.as_string());
  }
  if (out.empty()) return validation("At least one resource ARN must be specified");
  if (out.size() > kMaxResources) {
    return validation("At most 20 resource ARNs can be specified");
  }
  return out;
}

json::array& tags_of(json::object& record) {
  json::value& berth = record["_berth"];
  if (!berth.is_object()) berth.emplace_object();
  json::value& tags = berth.as_object()["tags"];
  if (!tags.is_array()) tags.emplace_array();
  return tags.as_array();
}

Result<json::value> add_tags(ElbContext& ctx, const json::object& in) {
  BERTH_TRY(auto arns, resource_arns(in));
  BERTH_TRY(json::array tags, validate_tags(opt_array(in, "Tags")));
  if (tags.empty()) return validation("At least one tag must be specified");
  return with_retries([&]() -> Result<json::value> {
    Writes w;
    for (const auto& arn : arns) {
      BERTH_TRY(Record r, load_resource(ctx, arn));
      json::array& current = tags_of(r.obj);
      current = merge_tags(current, tags);
      if (current.size() > kMaxTags) {
        return Error(model::ElbErrc::too_many_tags,
                     "A resource can have at most 50 tags: " + quoted(arn) + " would have " +
                         std::to_string(current.size()));
      }
      w.put(r);
    }
    BERTH_CHECK(w.commit(ctx.store()));
    return json::object{};
  });
}

Result<json::value> remove_tags(ElbContext& ctx, const json::object& in) {
  BERTH_TRY(auto arns, resource_arns(in));
  std::set<std::string, std::less<>> remove;
  if (const json::array* keys = opt_array(in, "TagKeys")) {
    for (const auto& k : *keys) remove.insert(std::string(k.as_string()));
  }
  return with_retries([&]() -> Result<json::value> {
    Writes w;
    for (const auto& arn : arns) {
      BERTH_TRY(Record r, load_resource(ctx, arn));
      json::array kept;
      for (const auto& t : tags_of(r.obj)) {
        if (!remove.contains(t.as_object().at("Key").as_string())) kept.push_back(t);
      }
      tags_of(r.obj) = std::move(kept);
      w.put(r);
    }
    BERTH_CHECK(w.commit(ctx.store()));
    return json::object{};
  });
}

Result<json::value> describe_tags(ElbContext& ctx, const json::object& in) {
  BERTH_TRY(auto arns, resource_arns(in));
  return with_retries([&]() -> Result<json::value> {
    json::array out;
    for (const auto& arn : arns) {
      BERTH_TRY(Record r, load_resource(ctx, arn));
      out.push_back(json::object{{"ResourceArn", arn}, {"Tags", tags_of(r.obj)}});
    }
    return json::object{{"TagDescriptions", std::move(out)}};
  });
}

}  // namespace

void register_tag_actions(api::QueryService& s, ElbContext& ctx) {
  s.add("AddTags", [&ctx](auto&, const json::object& in) { return add_tags(ctx, in); });
  s.add("RemoveTags", [&ctx](auto&, const json::object& in) { return remove_tags(ctx, in); });
  s.add("DescribeTags", [&ctx](auto&, const json::object& in) { return describe_tags(ctx, in); });
}

}  // namespace berth::server::elbv2
