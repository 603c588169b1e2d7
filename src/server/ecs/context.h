#pragma once
// Shared plumbing for the ECS actions: configuration, ARNs, store keys, JSON member access and
// the optimistic-transaction retry loop. Actions live one resource type per file and register
// themselves into the JSON service through register_*_actions().

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "api/json_service.h"
#include "common/clock.h"
#include "common/json_util.h"
#include "common/random.h"
#include "common/result.h"
#include "model/errors.h"
#include "server/ecs/load_balancing.h"
#include "store/store.h"

namespace berth::server::ecs {

namespace json = boost::json;

struct EcsConfig {
  std::string region = "us-east-1";
  std::string account_id = "000000000000";
};

class EcsContext {
 public:
  EcsContext(store::Store& store, const Clock& clock, Random& rng, EcsConfig config)
      : store_(store), clock_(clock), rng_(rng), config_(std::move(config)) {}

  store::Store& store() const { return store_; }
  const Clock& clock() const { return clock_; }
  Random& rng() const { return rng_; }
  const EcsConfig& config() const { return config_; }
  double now() const { return epoch_seconds(clock_.now()); }

  std::string arn(std::string_view resource) const;  // arn:aws:ecs:REGION:ACCOUNT:<resource>
  std::string cluster_arn(std::string_view name) const {
    return arn("cluster/" + std::string(name));
  }
  std::string task_definition_arn(std::string_view family, int64_t revision) const;
  std::string container_instance_arn(std::string_view cluster, std::string_view id) const;
  /// The IAM identity shown as registeredBy / principalArn for the caller.
  std::string principal_arn() const;

  /// The load balancers services register their tasks with; null when ELBv2 is not served.
  LoadBalancing* load_balancing() const { return load_balancing_; }
  void set_load_balancing(LoadBalancing* lb) { load_balancing_ = lb; }

 private:
  store::Store& store_;
  const Clock& clock_;
  Random& rng_;
  EcsConfig config_;
  LoadBalancing* load_balancing_ = nullptr;
};

/// Store key layout. Keys sort so that every list is one prefix scan.
namespace keys {
inline std::string cluster(std::string_view name) { return "clusters/" + std::string(name); }
inline constexpr std::string_view kClusters = "clusters/";
inline std::string task_definition(std::string_view family, int64_t revision) {
  char rev[16];
  std::snprintf(rev, sizeof rev, "%010lld", static_cast<long long>(revision));
  return "taskdefs/" + std::string(family) + "!" + rev;
}
// '!' sorts below every character allowed in a family name, so "web" lists before "web-2" as in
// ECS's own family order.
inline std::string task_definition_family_prefix(std::string_view family) {
  return "taskdefs/" + std::string(family) + "!";
}
inline constexpr std::string_view kTaskDefinitions = "taskdefs/";
// A task definition's tags live beside it, so the definition's stored text is exactly the
// TaskDefinition shape and DescribeTaskDefinition can answer with it unparsed.
inline std::string task_definition_tags(std::string_view family, int64_t revision) {
  return "tdtags/" + task_definition(family, revision).substr(kTaskDefinitions.size());
}
inline std::string family(std::string_view family) { return "families/" + std::string(family); }
inline constexpr std::string_view kFamilies = "families/";
inline std::string instance(std::string_view cluster, std::string_view id) {
  return "instances/" + std::string(cluster) + "/" + std::string(id);
}
inline std::string instance_prefix(std::string_view cluster) {
  return "instances/" + std::string(cluster) + "/";
}
inline std::string ec2_instance(std::string_view cluster, std::string_view ec2_id) {
  return "ec2ids/" + std::string(cluster) + "/" + std::string(ec2_id);
}
// Written by the task and service issues; counted here for DescribeClusters and DeleteCluster.
inline std::string task_prefix(std::string_view cluster) {
  return "tasks/" + std::string(cluster) + "/";
}
inline std::string service_prefix(std::string_view cluster) {
  return "services/" + std::string(cluster) + "/";
}
inline std::string account_setting(std::string_view principal, std::string_view name) {
  return "settings/" + std::string(principal) + "/" + std::string(name);
}
inline constexpr std::string_view kAccountSettings = "settings/";
}  // namespace keys

/// A stored JSON document with the revision it was read at (for compare-and-swap).
struct Doc {
  json::object obj;
  int64_t mod_revision = 0;
};

Result<std::optional<Doc>> load_doc(store::Store& store, std::string_view key);
/// Writes `obj` at `key` if the record is still at `expected_revision` (0: must not exist yet);
/// store::Errc::conflict otherwise, which with_retries() turns into a fresh attempt.
Status replace_doc(store::Store& store, const std::string& key, const json::object& obj,
                   int64_t expected_revision);
std::string dump(const json::value& v);

/// Runs `attempt` until it does not fail with store::Errc::conflict (bounded); store I/O errors
/// become ServerException.
Result<json::value> with_retries(const std::function<Result<json::value>()>& attempt);
Error store_failure(const Error& e);

// --- input helpers (the model validator has already checked types) ---
using json_util::opt_array;
using json_util::opt_bool;
using json_util::opt_int;
using json_util::opt_object;
using json_util::opt_string;

Error invalid_parameter(std::string message);
Error client_error(std::string message);

/// The cluster named by the request's `cluster` member (a name or an ARN), "default" if absent.
Result<std::string> cluster_name_from(const EcsContext& ctx, const json::object& in);
Result<std::string> cluster_name_from_ref(const EcsContext& ctx, std::string_view ref);
/// Loads an ACTIVE cluster or fails with ClusterNotFoundException.
Result<Doc> load_active_cluster(const EcsContext& ctx, std::string_view name);

/// The Describe* pattern: each reference is looked up by `find` (nullopt: not there); those not
/// found become failures {arn: the reference if it is an ARN, else `arn_of(ref)`, reason MISSING}.
struct Described {
  json::array items;
  json::array failures;
};
Result<Described> describe_each(
    const json::array& refs,
    const std::function<Result<std::optional<json::value>>(std::string_view ref)>& find,
    const std::function<std::string(std::string_view ref)>& arn_of);

/// Validates ECS tags (at most 50, key 1..128, value 0..256, no "aws:" prefix) and returns them.
Result<json::array> validate_tags(const json::array* tags);

void register_cluster_actions(api::JsonService& service, EcsContext& ctx);
void register_task_definition_actions(api::JsonService& service, EcsContext& ctx);
class Placer;
void register_container_instance_actions(api::JsonService& service, EcsContext& ctx,
                                         Placer& placer);
void register_run_task_actions(api::JsonService& service, EcsContext& ctx, Placer& placer);
void register_attribute_actions(api::JsonService& service, EcsContext& ctx);
void register_tag_actions(api::JsonService& service, EcsContext& ctx);
void register_setting_actions(api::JsonService& service, EcsContext& ctx);
void register_task_actions(api::JsonService& service, EcsContext& ctx);
void register_service_actions(api::JsonService& service, EcsContext& ctx, Placer& placer);

}  // namespace berth::server::ecs

namespace berth::server::ecs {

/// The id of a cluster-scoped resource from an id or an ARN, long (`TYPE/CLUSTER/ID`) or old
/// (`TYPE/ID`) form; `label` names the resource in error messages.
Result<std::string> cluster_resource_id(const EcsContext& ctx, std::string_view cluster,
                                        std::string_view ref, std::string_view type,
                                        std::string_view label);
/// A container instance reference (id or ARN) resolved within a cluster.
Result<std::string> container_instance_id_from(const EcsContext& ctx, std::string_view cluster,
                                               std::string_view ref);
/// The record key of a resource ARN that can carry tags; nullopt for unsupported types.
Result<std::string> taggable_key_for_arn(const EcsContext& ctx, std::string_view arn);
std::optional<std::string> task_definition_key_for_arn(const EcsContext& ctx, std::string_view arn);
/// The TaskDefinition a reference names ("family" = latest ACTIVE, "family:rev", or an ARN).
Result<std::optional<json::object>> find_task_definition(EcsContext& ctx, std::string_view ref);
/// A task reference (id or ARN) resolved within a cluster.
Result<std::string> task_id_from(const EcsContext& ctx, std::string_view cluster,
                                 std::string_view ref);

}  // namespace berth::server::ecs
