#pragma once
// LoadBalancing: what the ECS side needs from the load balancers (ELBv2) to run services with
// `loadBalancers`: validate a target group at CreateService, register a task's host port as a
// target once the task runs, read the targets' health, and deregister (drain) before a task is
// stopped. The ELBv2 module implements it over its store records; ECS depends only on this role,
// so the two APIs stay separate modules.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace berth::server::ecs {

struct TargetGroupInfo {
  std::string arn;
  std::string target_type;  // "instance" | "ip"
  bool has_load_balancer = false;
  double deregistration_delay = 300;  // seconds
};

/// Where a task's container port is reachable.
struct TaskEndpoint {
  std::string ec2_instance_id;  // the container instance's; the target id of "instance" groups
  std::string host_address;     // the instance's address; the target id of "ip" groups
  int64_t port = 0;             // the host port (dynamic mapping)
};

struct TargetState {
  std::string id;
  int64_t port = 0;
  std::string owner;  // the task ARN that registered it, if any
  bool draining = false;
  std::string health;  // initial | healthy | unhealthy | unavailable | "" (not observed yet)
  std::string reason;  // e.g. Target.FailedHealthChecks
};

/// A target some task registered, in whichever group (the service may have left that group since).
struct OwnedTarget {
  std::string tg_arn;
  std::string key;  // as in targets()
  TargetState state;
  double deregistration_delay = 300;
};

class LoadBalancing {
 public:
  virtual ~LoadBalancing() = default;
  /// The target group, or nullopt if it does not exist.
  virtual Result<std::optional<TargetGroupInfo>> target_group(std::string_view arn) = 0;
  /// Every target of a group, keyed by "<id>!<port>".
  virtual Result<std::map<std::string, TargetState>> targets(std::string_view tg_arn) = 0;
  /// Every target registered by one of `task_arns`, in any target group.
  virtual Result<std::vector<OwnedTarget>> targets_owned_by(
      const std::set<std::string>& task_arns) = 0;
  /// The key under which `targets()` lists `endpoint` for this group.
  virtual std::string target_key(const TargetGroupInfo& tg, const TaskEndpoint& endpoint) = 0;
  virtual Status register_task(const TargetGroupInfo& tg, const TaskEndpoint& endpoint,
                               std::string_view task_arn) = 0;
  /// Starts draining; the target disappears from targets() once the group's deregistration delay
  /// has passed.
  virtual Status deregister(std::string_view tg_arn, std::string_view target_key) = 0;
  /// The store prefix under which targets (and their health) change, so the service controller
  /// reacts to a target turning healthy or finishing its drain without waiting for its tick.
  virtual std::string targets_prefix() const = 0;
};

}  // namespace berth::server::ecs
