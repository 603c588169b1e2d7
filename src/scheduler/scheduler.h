#pragma once
// The placement engine: a pure function from (a snapshot of container instances, a compiled
// placement request, a seed) to a Plan that names an instance for each task or, when some task
// cannot be placed, the reason each instance refused it. No I/O, no clock, no random source of its
// own, no logging: the same inputs always give the same plan, so it is tested with properties and
// can run inside simulations. Two engines share these semantics exactly:
//  - ClusterIndex (cluster_index.h): a persistent index, updated incrementally, for the server;
//    place(snapshot, ...) below is a one-shot wrapper around it.
//  - place_naive(): a linear scan kept as the benchmark baseline and the property-test oracle.
//
// Semantics (ECS: "Amazon ECS task placement", "...strategies", "...constraints",
// "API failure reasons"):
//  - Each task is placed in turn; a placed task updates the working view (resources, ports, group
//    counts, task:group, runningTasksCount) before the next task of the same plan is placed.
//  - Candidates: ACTIVE instances (DRAINING/INACTIVE ones are not candidates and are not listed
//    in failures), agent connected, required attributes present, enough CPU and memory, static
//    TCP/UDP host ports free, then every constraint in request order: distinctInstance (no task
//    of the request's group on the instance, counting existing tasks and this plan's) and memberOf.
//  - Ranking: strategies in order, each keeping only the best candidates of the previous one:
//    binpack cpu|memory keeps the least remaining; spread keeps the bucket with the fewest tasks
//    of the request's group (existing + placed by this plan), buckets being the instance
//    (instanceId, and host, which ECS documents as having the same effect) or the attribute value
//    (instances without it share one bucket; counts include instances that are not candidates);
//    random picks uniformly among the remaining candidates with the seeded PRNG, ending the chain.
//    No strategy: ECS's RunTask default, spread(attribute:ecs.availability-zone),
//    spread(instanceId).
//  - Final tie-break: for each task a start position is drawn from the seed and the first tied
//    candidate at or after it (in snapshot order, wrapping) wins, so equal candidates are used
//    evenly across calls yet deterministically for a seed.
//  - Failures: when a task cannot be placed, planning stops and every ACTIVE instance is listed in
//    snapshot order with the first reason it refuses that task, checked in this order: AGENT,
//    ATTRIBUTE, RESOURCE:CPU, RESOURCE:MEMORY, RESOURCE:PORTS, RESOURCE:PORTS_UDP, then the
//    constraints in request order ("DistinctInstance placement constraint unsatisfied." /
//    "MemberOf placement constraint unsatisfied.", ECS's wording).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "scheduler/errc.h"
#include "scheduler/query.h"

namespace berth::scheduler {

struct Attribute {
  std::string name;
  std::optional<std::string> value;
  bool operator==(const Attribute&) const = default;
};

/// One container instance as the scheduler sees it. Resources are what remains for new tasks.
struct InstanceView {
  std::string arn;              // container instance ARN (reported in failures)
  std::string id;               // container instance id
  std::string ec2_instance_id;  // subject ec2InstanceId
  int64_t cpu_remaining = 0;
  int64_t memory_remaining = 0;
  std::vector<uint16_t> tcp_ports_used;  // reserved by the host and by running tasks
  std::vector<uint16_t> udp_ports_used;
  std::vector<Attribute> attributes;  // includes ecs.availability-zone, ecs.instance-type, ...
  bool agent_connected = true;
  bool active = true;         // false while DRAINING (or INACTIVE)
  double registered_at = 0;   // epoch seconds (subject registeredAt)
  std::string agent_version;  // subject agentVersion
  int64_t running_tasks_count = 0;
  std::vector<std::string> task_groups;  // the group of each non-stopped task (one entry per task)
};

struct Snapshot {
  std::vector<InstanceView> instances;
};

/// As in the API: type "binpack" (field cpu|memory), "spread" (field instanceId|host|
/// attribute:<name>) or "random" (field ignored).
struct Strategy {
  std::string type;
  std::string field;
};

/// As in the API: type "memberOf" (expression required) or "distinctInstance" (no expression).
struct Constraint {
  std::string type;
  std::string expression;
};

struct PlacementRequest {
  int count = 1;
  int64_t cpu = 0;                  // per task, CPU units
  int64_t memory = 0;               // per task, MiB
  std::vector<uint16_t> tcp_ports;  // static host ports per task
  std::vector<uint16_t> udp_ports;
  std::string group;                    // the tasks' group, e.g. "family:web" or "service:api"
  std::vector<Constraint> constraints;  // at most kMaxConstraints
  std::vector<Strategy> strategies;     // at most kMaxStrategies; empty -> RunTask default
  std::vector<Attribute> required_attributes;  // requiresAttributes (value checked when given)
};

inline constexpr size_t kMaxStrategies = 5;
inline constexpr size_t kMaxConstraints = 10;

// Failure reasons, as ECS reports them.
inline constexpr std::string_view kReasonAgent = "AGENT";
inline constexpr std::string_view kReasonAttribute = "ATTRIBUTE";
inline constexpr std::string_view kReasonCpu = "RESOURCE:CPU";
inline constexpr std::string_view kReasonMemory = "RESOURCE:MEMORY";
inline constexpr std::string_view kReasonPorts = "RESOURCE:PORTS";
inline constexpr std::string_view kReasonPortsUdp = "RESOURCE:PORTS_UDP";
inline constexpr std::string_view kReasonDistinctInstance =
    "DistinctInstance placement constraint unsatisfied.";
inline constexpr std::string_view kReasonMemberOf = "MemberOf placement constraint unsatisfied.";

/// A validated request with its expressions parsed and its strategies resolved; reusable for any
/// number of placements. Move-only (it owns compiled regular expressions).
class CompiledRequest {
 public:
  enum class StepKind { spread_attribute, spread_instance, binpack_cpu, binpack_memory, random };
  struct Step {
    StepKind kind;
    std::string attribute;  // spread_attribute only
  };
  /// A constraint: distinctInstance, or memberOf with its expression.
  struct Rule {
    std::optional<Expression> member_of;
    bool distinct_instance() const { return !member_of; }
  };

  const PlacementRequest& request() const { return request_; }
  /// The ranking chain (the defaults when the request has none), cut after the first random.
  const std::vector<Step>& steps() const { return steps_; }
  const std::vector<Rule>& rules() const { return rules_; }
  bool distinct_instance() const { return distinct_instance_; }

 private:
  friend Result<CompiledRequest> compile(const PlacementRequest& request);
  CompiledRequest() = default;

  PlacementRequest request_;
  std::vector<Step> steps_;
  std::vector<Rule> rules_;
  bool distinct_instance_ = false;
};

/// Validates and compiles a request. Errors (Errc) carry messages for InvalidParameterException
/// that name the strategy or constraint (1-based) and, for syntax errors, the character position:
/// "Placement constraint 1: Invalid expression at position 12: expected operator".
Result<CompiledRequest> compile(const PlacementRequest& request);

/// Why one instance could not take a task.
struct Failure {
  std::string arn;
  std::string reason;
  bool operator==(const Failure&) const = default;
};

struct Plan {
  std::vector<size_t> placements;  // snapshot index of the instance for each placed task, in order
  std::vector<Failure> failures;   // when fewer than count were placed: per active instance
  bool operator==(const Plan&) const = default;
};

/// Places request.count tasks on a snapshot. Never overcommits, never violates a constraint.
/// Builds a ClusterIndex; callers placing repeatedly on one cluster should keep one instead.
Plan place(const Snapshot& snapshot, const CompiledRequest& request, uint64_t seed);

/// The same semantics by a linear scan per task (slow; the oracle for the indexed engine).
Plan place_naive(const Snapshot& snapshot, const CompiledRequest& request, uint64_t seed);

}  // namespace berth::scheduler
