#include "server/ecs/ecs_service.h"

#include "server/ecs/task_reports.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <cstdio>
#include <regex>

namespace berth::server::ecs {

EcsService::EcsService(store::Store& store, const Clock& clock, Random& rng, EcsConfig config)
    : ctx_(store, clock, rng, std::move(config)),
      placer_(store),
      json_(model::ServiceModel::ecs()) {
  register_cluster_actions(json_, ctx_);
  register_task_definition_actions(json_, ctx_);
  register_container_instance_actions(json_, ctx_, placer_);
  register_attribute_actions(json_, ctx_);
  register_tag_actions(json_, ctx_);
  register_setting_actions(json_, ctx_);
  register_task_actions(json_, ctx_);
  register_run_task_actions(json_, ctx_, placer_);
  register_task_report_actions(json_, ctx_);
  register_service_actions(json_, ctx_, placer_);
}

std::string EcsContext::arn(std::string_view resource) const {
  return "arn:aws:ecs:" + config_.region + ":" + config_.account_id + ":" + std::string(resource);
}

std::string EcsContext::task_definition_arn(std::string_view family, int64_t revision) const {
  return arn("task-definition/" + std::string(family) + ":" + std::to_string(revision));
}

std::string EcsContext::container_instance_arn(std::string_view cluster,
                                               std::string_view id) const {
  return arn("container-instance/" + std::string(cluster) + "/" + std::string(id));
}

std::string EcsContext::principal_arn() const {
  return "arn:aws:iam::" + config_.account_id + ":root";
}

Result<std::optional<Doc>> load_doc(store::Store& store, std::string_view key) {
  auto kv = store.get(key);
  if (!kv.ok()) return store_failure(kv.error());
  if (!kv->has_value()) return std::optional<Doc>();
  boost::system::error_code ec;
  json::value v = json::parse((*kv)->value, ec);
  if (ec || !v.is_object()) {
    return Error(model::Errc::server, "stored document at " + std::string(key) + " is corrupt");
  }
  return std::optional<Doc>(Doc{std::move(v.as_object()), (*kv)->mod_revision});
}

std::string dump(const json::value& v) { return json::serialize(v); }

Status replace_doc(store::Store& store, const std::string& key, const json::object& obj,
                   int64_t expected_revision) {
  store::Txn txn;
  txn.compares.push_back({key, expected_revision});
  txn.ops.push_back(store::Op::put(key, dump(obj)));
  auto rev = store.commit(txn);
  if (!rev.ok()) return rev.error();
  return {};
}

Error store_failure(const Error& e) { return Error(model::Errc::server, "store: " + e.message); }

Result<json::value> with_retries(const std::function<Result<json::value>()>& attempt) {
  // Conflicts only happen when two writers touch the same record at once; a handful of retries
  // resolves any realistic contention.
  constexpr int kMaxAttempts = 32;
  for (int i = 0; i < kMaxAttempts; ++i) {
    Result<json::value> r = attempt();
    if (r.ok()) return r;
    if (r.error().code == store::Errc::conflict) continue;
    if (r.error().code.category() == store::category()) return store_failure(r.error());
    return r;
  }
  return Error(model::Errc::server, "too much contention on the same resource; retry");
}

Error invalid_parameter(std::string message) {
  return Error(model::Errc::invalid_parameter, std::move(message));
}
Error client_error(std::string message) { return Error(model::Errc::client, std::move(message)); }

namespace {
bool valid_cluster_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}
}  // namespace

Result<Described> describe_each(
    const json::array& refs,
    const std::function<Result<std::optional<json::value>>(std::string_view ref)>& find,
    const std::function<std::string(std::string_view ref)>& arn_of) {
  Described out;
  for (const auto& ref : refs) {
    std::string_view r = ref.as_string();
    BERTH_TRY(std::optional<json::value> item, find(r));
    if (item) {
      out.items.push_back(std::move(*item));
    } else {
      out.failures.push_back(json::object{
          {"arn", r.starts_with("arn:") ? std::string(r) : arn_of(r)}, {"reason", "MISSING"}});
    }
  }
  return out;
}

Result<std::string> cluster_resource_id(const EcsContext& ctx, std::string_view cluster,
                                        std::string_view ref, std::string_view type,
                                        std::string_view label) {
  std::string_view id = ref;
  if (ref.starts_with("arn:")) {
    std::string with_cluster = ctx.arn(std::string(type) + "/" + std::string(cluster) + "/");
    std::string old_form = ctx.arn(std::string(type) + "/");
    if (ref.starts_with(with_cluster)) {
      id = ref.substr(with_cluster.size());
    } else if (ref.starts_with(old_form) &&
               ref.find('/', old_form.size()) == std::string_view::npos) {
      id = ref.substr(old_form.size());
    } else {
      return invalid_parameter("Invalid " + std::string(label) + " ARN for cluster '" +
                               std::string(cluster) + "': " + std::string(ref) + ".");
    }
  }
  if (id.empty() || id.size() > 64)
    return invalid_parameter("Invalid " + std::string(label) + " id.");
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-')) {
      return invalid_parameter("Invalid " + std::string(label) + " id: " + std::string(ref) + ".");
    }
  }
  return std::string(id);
}

Result<std::string> cluster_name_from_ref(const EcsContext& ctx, std::string_view ref) {
  if (ref.starts_with("arn:")) {
    std::string prefix = ctx.arn("cluster/");
    if (!ref.starts_with(prefix) || !valid_cluster_name(ref.substr(prefix.size()))) {
      return invalid_parameter("Invalid cluster ARN: " + std::string(ref) + ".");
    }
    return std::string(ref.substr(prefix.size()));
  }
  if (!valid_cluster_name(ref)) {
    return invalid_parameter(
        "Cluster names can contain up to 255 letters (uppercase and lowercase), numbers, "
        "underscores, and hyphens: '" +
        std::string(ref) + "'.");
  }
  return std::string(ref);
}

Result<std::string> cluster_name_from(const EcsContext& ctx, const json::object& in) {
  auto ref = opt_string(in, "cluster");
  if (!ref || ref->empty()) return std::string("default");
  return cluster_name_from_ref(ctx, *ref);
}

Result<Doc> load_active_cluster(const EcsContext& ctx, std::string_view name) {
  BERTH_TRY(auto doc, load_doc(ctx.store(), keys::cluster(name)));
  if (!doc || opt_string(doc->obj, "status").value_or("") != "ACTIVE") {
    return Error(model::Errc::cluster_not_found, "Cluster not found.");
  }
  return std::move(*doc);
}

namespace {
// Tag limits are in characters (UTF-8 code points), as the model's length constraints.
size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}
}  // namespace

Result<json::array> validate_tags(const json::array* tags) {
  json::array out;
  if (tags == nullptr) return out;
  if (tags->size() > 50) return invalid_parameter("Too many tags: a resource can have at most 50.");
  for (const auto& t : *tags) {
    const auto& o = t.as_object();
    auto key = opt_string(o, "key");
    auto value = opt_string(o, "value").value_or("");
    if (!key || key->empty() || utf8_length(*key) > 128) {
      return invalid_parameter("Tag keys must be between 1 and 128 characters.");
    }
    if (utf8_length(value) > 256)
      return invalid_parameter("Tag values must be at most 256 characters.");
    if (key->starts_with("aws:")) {
      return invalid_parameter("Tag keys may not begin with the reserved prefix 'aws:'.");
    }
    out.push_back(json::object{{"key", *key}, {"value", value}});
  }
  return out;
}

}  // namespace berth::server::ecs
