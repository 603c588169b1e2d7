#pragma once
// TaskSpec: turns an ECS task definition (with RunTask overrides) into the runtime::ContainerSpec
// of each container, and enforces the agent's safety policy on the way. Pure functions, no I/O
// except realpath() for host volumes, so every rule is unit-testable without an engine.
//
// Safety: a task definition comes from anyone allowed to call RegisterTaskDefinition, so what
// would give a container the host (privileged, host PID/IPC namespaces, added capabilities,
// devices, bind mounts outside the allowed roots) is refused unless the operator opted in. The
// container environment is built only from the task definition: nothing of the agent's own
// environment or credentials is ever copied in.

#include <boost/json/object.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "runtime/driver.h"

namespace berth::agent {

struct SafetyPolicy {
  bool allow_privileged = false;  // privileged, pid/ipc host, capabilities.add, devices
  /// Host paths that bind mounts may use (realpath'd prefixes). Empty: no host volumes at all.
  std::vector<std::string> allowed_host_paths{};
};

/// One container of a task, ready for the engine.
struct ContainerPlan {
  std::string name{};  // the container definition's name
  bool essential = true;
  runtime::ContainerSpec spec{};
  struct Dependency {
    std::string container{};
    std::string condition{};  // START, COMPLETE, SUCCESS, HEALTHY
  };
  std::vector<Dependency> depends_on{};
  std::optional<std::chrono::seconds> start_timeout{};
  std::chrono::seconds stop_timeout{30};  // ECS_CONTAINER_STOP_TIMEOUT default
  std::optional<runtime::HealthCheck> health{};
  std::vector<uint16_t> host_network_ports{};  // networkMode host: ports reported as bound
  std::vector<runtime::Protocol> host_network_protocols{};
};

struct TaskPlan {
  std::vector<ContainerPlan> containers{};  // in task-definition order
};

/// Engine name of a task's container: "berth-<task id>-<name>", characters Docker rejects
/// replaced, so names are unique per host and traceable to the task.
std::string container_engine_name(const std::string& task_arn, const std::string& container);

/// Builds the plan, or the reason the task must not run (the text reported to the user).
/// `labels` are added to every container (task ARN, cluster, ...).
Result<TaskPlan> plan_task(const std::string& task_arn, const boost::json::object& task_definition,
                           const boost::json::object& overrides, const SafetyPolicy& policy,
                           const runtime::Labels& labels);

/// Whether a host path may be bind-mounted: absolute, no "..", and its realpath (symlinks
/// resolved) under one of the allowed roots. Returns the resolved path.
Result<std::string> check_host_path(const std::string& path, const SafetyPolicy& policy);

}  // namespace berth::agent
