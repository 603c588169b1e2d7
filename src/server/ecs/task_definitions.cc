// Task definitions: RegisterTaskDefinition, DescribeTaskDefinition, DeregisterTaskDefinition,
// ListTaskDefinitions, ListTaskDefinitionFamilies.
//
// Stored as taskdefs/<family>!<revision> -> the TaskDefinition shape, tdtags/<family>!<revision>
// -> {"tags": [...]}, plus
// families/<family> -> {"family", "latestRevision", "activeRevisions", "latestActiveRevision"},
// which serializes
// registrations of one family (revision numbers never repeat, even after deregistration).

#include <boost/json/parse.hpp>

#include "server/ecs/context.h"
#include "server/ecs/paging.h"
#include "server/ecs/task_definition_rules.h"

namespace berth::server::ecs {

namespace {

struct TaskDefRef {
  std::string family;
  int64_t revision = 0;  // 0: latest ACTIVE revision
};

// Accepts "family", "family:revision" or a task-definition ARN.
Result<TaskDefRef> parse_ref(const EcsContext& ctx, std::string_view ref) {
  std::string_view rest = ref;
  if (ref.starts_with("arn:")) {
    std::string prefix = ctx.arn("task-definition/");
    if (!ref.starts_with(prefix)) {
      return client_error("Invalid task definition ARN: " + std::string(ref) + ".");
    }
    rest = ref.substr(prefix.size());
  }
  TaskDefRef out;
  auto colon = rest.find(':');
  out.family = std::string(rest.substr(0, colon));
  if (out.family.empty()) return client_error("The task definition identifier is empty.");
  if (colon != std::string_view::npos) {
    std::string_view rev = rest.substr(colon + 1);
    int64_t v = 0;
    for (char c : rev) {
      if (c < '0' || c > '9' || v > 100'000'000) {
        return client_error("Invalid revision in task definition '" + std::string(ref) + "'.");
      }
      v = v * 10 + (c - '0');
    }
    if (rev.empty() || v < 1) {
      return client_error("Invalid revision in task definition '" + std::string(ref) + "'.");
    }
    out.revision = v;
  }
  return out;
}

// The newest ACTIVE revision of a family below `below` (exclusive), by scanning; 0 if none.
// Only deregistering the latest active revision needs this.
Result<int64_t> scan_latest_active(EcsContext& ctx, const std::string& family, int64_t below) {
  store::RangeRequest req{keys::task_definition_family_prefix(family), "", 0};
  auto r = ctx.store().range(req);
  if (!r.ok()) return store_failure(r.error());
  for (auto it = r->kvs.rbegin(); it != r->kvs.rend(); ++it) {
    boost::system::error_code ec;
    json::value v = json::parse(it->value, ec);
    if (ec || !v.is_object()) continue;
    const auto& td = v.as_object();
    int64_t rev = opt_int(td, "revision").value_or(0);
    if (rev < below && opt_string(td, "status") == "ACTIVE") return rev;
  }
  return int64_t{0};
}

// Loads the record a reference names; nullopt when there is none. A bare family means its
// latest ACTIVE revision, which the family record tracks so this stays two point reads however
// many revisions the family has.
Result<std::optional<Doc>> load_task_definition(EcsContext& ctx, const TaskDefRef& ref) {
  int64_t revision = ref.revision;
  if (revision == 0) {
    BERTH_TRY(auto fam, load_doc(ctx.store(), keys::family(ref.family)));
    if (!fam) return std::optional<Doc>();
    revision = opt_int(fam->obj, "latestActiveRevision").value_or(0);
    if (revision == 0) return std::optional<Doc>();
  }
  return load_doc(ctx.store(), keys::task_definition(ref.family, revision));
}

Result<json::value> register_task_definition(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(NormalizedTaskDefinition norm, check_task_definition(in));
  BERTH_TRY(json::array tags, validate_tags(opt_array(in, "tags")));
  std::string family(opt_string(in, "family").value_or(""));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(auto fam, load_doc(ctx.store(), keys::family(family)));
    json::object f =
        fam ? fam->obj
            : json::object{{"family", family}, {"latestRevision", 0}, {"activeRevisions", 0}};
    int64_t revision = opt_int(f, "latestRevision").value_or(0) + 1;
    f["latestRevision"] = revision;
    f["activeRevisions"] = opt_int(f, "activeRevisions").value_or(0) + 1;
    f["latestActiveRevision"] = revision;

    json::object td;
    td["taskDefinitionArn"] = ctx.task_definition_arn(family, revision);
    for (const auto& [k, v] : norm.body) td[k] = v;
    td["revision"] = revision;
    td["status"] = "ACTIVE";
    td["requiresAttributes"] = norm.requires_attributes;
    td["compatibilities"] = norm.compatibilities;
    td["registeredAt"] = ctx.now();
    td["registeredBy"] = ctx.principal_arn();

    store::Txn txn;
    txn.compares.push_back({keys::family(family), fam ? fam->mod_revision : 0});
    txn.compares.push_back({keys::task_definition(family, revision), 0});
    txn.ops.push_back(store::Op::put(keys::family(family), dump(f)));
    txn.ops.push_back(store::Op::put(keys::task_definition(family, revision), dump(td)));
    txn.ops.push_back(store::Op::put(keys::task_definition_tags(family, revision),
                                     dump(json::object{{"tags", tags}})));
    auto rev = ctx.store().commit(txn);
    if (!rev.ok()) return rev.error();
    return json::object{{"taskDefinition", std::move(td)}, {"tags", std::move(tags)}};
  });
}

Result<api::Reply> describe_task_definition(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(TaskDefRef ref, parse_ref(ctx, opt_string(in, "taskDefinition").value_or("")));
  bool tags = false;
  if (auto* inc = opt_array(in, "include")) {
    for (const auto& v : *inc) tags |= v.as_string() == "TAGS";
  }
  int64_t revision = ref.revision;
  if (revision == 0) {
    BERTH_TRY(auto fam, load_doc(ctx.store(), keys::family(ref.family)));
    revision = fam ? opt_int(fam->obj, "latestActiveRevision").value_or(0) : 0;
    if (revision == 0) return client_error("Unable to describe task definition.");
  }
  auto kv = ctx.store().get(keys::task_definition(ref.family, revision));
  if (!kv.ok()) return store_failure(kv.error());
  if (!kv->has_value()) return client_error("Unable to describe task definition.");
  if (!tags) {
    // The hot read: the stored text is the TaskDefinition, so wrap it without parsing it.
    return api::Reply::raw("{\"taskDefinition\":" + (*kv)->value + "}");
  }
  BERTH_TRY(auto tag_doc, load_doc(ctx.store(), keys::task_definition_tags(ref.family, revision)));
  std::string tag_text =
      tag_doc && tag_doc->obj.contains("tags") ? dump(tag_doc->obj.at("tags")) : "[]";
  return api::Reply::raw("{\"taskDefinition\":" + (*kv)->value + ",\"tags\":" + tag_text + "}");
}

Result<json::value> deregister_task_definition(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(TaskDefRef ref, parse_ref(ctx, opt_string(in, "taskDefinition").value_or("")));
  if (ref.revision == 0) {
    return invalid_parameter("A revision must be specified: use family:revision or a full ARN.");
  }
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(auto doc, load_doc(ctx.store(), keys::task_definition(ref.family, ref.revision)));
    if (!doc) return client_error("The specified task definition does not exist.");
    auto& td = doc->obj;
    if (opt_string(td, "status") != "ACTIVE") return json::object{{"taskDefinition", td}};
    BERTH_TRY(auto fam, load_doc(ctx.store(), keys::family(ref.family)));
    if (!fam) return Error(model::Errc::server, "task definition family record missing");
    fam->obj["activeRevisions"] =
        std::max<int64_t>(0, opt_int(fam->obj, "activeRevisions").value_or(1) - 1);
    if (opt_int(fam->obj, "latestActiveRevision").value_or(0) == ref.revision) {
      BERTH_TRY(int64_t previous, scan_latest_active(ctx, ref.family, ref.revision));
      fam->obj["latestActiveRevision"] = previous;
    }
    td["status"] = "INACTIVE";
    td["deregisteredAt"] = ctx.now();
    store::Txn txn;
    txn.compares.push_back({keys::task_definition(ref.family, ref.revision), doc->mod_revision});
    txn.compares.push_back({keys::family(ref.family), fam->mod_revision});
    txn.ops.push_back(store::Op::put(keys::task_definition(ref.family, ref.revision), dump(td)));
    txn.ops.push_back(store::Op::put(keys::family(ref.family), dump(fam->obj)));
    auto rev = ctx.store().commit(txn);
    if (!rev.ok()) return rev.error();
    return json::object{{"taskDefinition", td}};
  });
}

Result<json::value> list_task_definitions(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(size_t max, max_results_from(in));
  std::string status(opt_string(in, "status").value_or("ACTIVE"));
  bool desc = opt_string(in, "sort") == "DESC";
  std::string prefix(keys::kTaskDefinitions);
  if (auto fp = opt_string(in, "familyPrefix"); fp && !fp->empty()) {
    // Despite its name, ECS matches familyPrefix against the whole family name.
    prefix = keys::task_definition_family_prefix(*fp);
  }
  auto map = [&](const store::KeyValue& kv) -> std::optional<json::value> {
    boost::system::error_code ec;
    json::value v = json::parse(kv.value, ec);
    if (ec || !v.is_object()) return std::nullopt;
    const auto& td = v.as_object();
    if (opt_string(td, "status") != status) return std::nullopt;
    return td.at("taskDefinitionArn");
  };
  Page page;
  if (!desc) {
    BERTH_TRY(page, page_scan(ctx.store(), prefix, in, max, map));
  } else {
    store::RangeRequest req{prefix, "", 0};
    auto r = ctx.store().range(req);
    if (!r.ok()) return store_failure(r.error());
    json::array all;
    for (auto it = r->kvs.rbegin(); it != r->kvs.rend(); ++it) {
      if (auto v = map(*it)) all.push_back(std::move(*v));
    }
    BERTH_TRY(page, page_list(std::move(all), in, max));
  }
  json::object out{{"taskDefinitionArns", std::move(page.items)}};
  put_next_token(out, page);
  return out;
}

Result<json::value> list_task_definition_families(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(size_t max, max_results_from(in));
  std::string status(opt_string(in, "status").value_or("ACTIVE"));
  std::string prefix =
      std::string(keys::kFamilies) + std::string(opt_string(in, "familyPrefix").value_or(""));
  BERTH_TRY(Page page,
            page_scan(ctx.store(), prefix, in, max,
                      [&](const store::KeyValue& kv) -> std::optional<json::value> {
                        boost::system::error_code ec;
                        json::value v = json::parse(kv.value, ec);
                        if (ec || !v.is_object()) return std::nullopt;
                        bool active = opt_int(v.as_object(), "activeRevisions").value_or(0) > 0;
                        if ((status == "ACTIVE" && !active) || (status == "INACTIVE" && active))
                          return std::nullopt;
                        return v.as_object().at("family");
                      }));
  json::object out{{"families", std::move(page.items)}};
  put_next_token(out, page);
  return out;
}

}  // namespace

void register_task_definition_actions(api::JsonService& s, EcsContext& ctx) {
  s.add("RegisterTaskDefinition",
        [&ctx](auto&, const json::object& in) { return register_task_definition(ctx, in); });
  s.add("DescribeTaskDefinition",
        [&ctx](auto&, const json::object& in) { return describe_task_definition(ctx, in); });
  s.add("DeregisterTaskDefinition",
        [&ctx](auto&, const json::object& in) { return deregister_task_definition(ctx, in); });
  s.add("ListTaskDefinitions",
        [&ctx](auto&, const json::object& in) { return list_task_definitions(ctx, in); });
  s.add("ListTaskDefinitionFamilies",
        [&ctx](auto&, const json::object& in) { return list_task_definition_families(ctx, in); });
}

// Used by the tags actions: the record key of a task-definition ARN, if it is one.
std::optional<std::string> task_definition_key_for_arn(const EcsContext& ctx,
                                                       std::string_view arn) {
  auto ref = parse_ref(ctx, arn);
  if (!ref.ok() || ref->revision == 0 || !arn.starts_with("arn:")) return std::nullopt;
  return keys::task_definition_tags(ref->family, ref->revision);
}

}  // namespace berth::server::ecs

namespace berth::server::ecs {

Result<std::optional<json::object>> find_task_definition(EcsContext& ctx, std::string_view ref) {
  BERTH_TRY(TaskDefRef r, parse_ref(ctx, ref));
  BERTH_TRY(auto doc, load_task_definition(ctx, r));
  if (!doc) return std::optional<json::object>();
  return std::optional<json::object>(std::move(doc->obj));
}

}  // namespace berth::server::ecs
