#pragma once
// Placer: the server side of placement. It keeps a typed, always-current view of every cluster's
// container instances and their tasks (fed only by the store's watch, so it is a function of the
// store) and one scheduler::ClusterIndex per cluster, updated incrementally. Placements in a
// cluster are serialized: a RunTask takes the cluster's lock, waits until the view has caught up
// with every commit acknowledged so far, asks the index for a plan, and commits the tasks together
// with the instances' new remaining resources in one transaction that compares each chosen
// instance's revision. So two RunTasks never double-book an instance, and a write that raced the
// plan (a drain, an attribute change) becomes a retry, never an overcommit.

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "scheduler/cluster_index.h"
#include "server/ecs/context.h"

namespace berth::server::ecs {

/// What the non-stopped tasks on one instance hold: derived from the task records, never
/// stored, so it cannot drift from them.
struct InstanceUsage {
  int64_t cpu = 0;
  int64_t memory = 0;
  std::map<uint16_t, int> tcp_ports;  // port -> tasks holding it (more than 1 only if forced)
  std::map<uint16_t, int> udp_ports;
  int64_t pending = 0;  // tasks not yet RUNNING
  int64_t running = 0;
};

/// What a placement callback works with: the cluster's index and, per index slot, the container
/// instance id and the store revision of its record.
struct PlacementView {
  scheduler::ClusterIndex& index;
  const std::vector<std::string>& ids;
  const std::vector<int64_t>& revisions;
};

class Placer {
 public:
  explicit Placer(store::Store& store);
  ~Placer();

  /// Runs `fn` under the cluster's placement lock with a view that reflects every commit
  /// acknowledged before the call. A store conflict from `fn` retries with a fresh view.
  Result<json::value> run(const std::string& cluster,
                          const std::function<Result<json::value>(PlacementView&)>& fn);

  /// The cluster's instances (with their task groups) as of every acknowledged commit, in id
  /// order, for read-only queries such as ListContainerInstances filters.
  std::vector<scheduler::InstanceView> instances(const std::string& cluster);

  /// What the instance's tasks hold, as of every acknowledged commit.
  InstanceUsage usage(const std::string& cluster, const std::string& instance_id);

 private:
  struct ClusterState {
    std::map<std::string, scheduler::InstanceView> instances;  // by id, task_groups empty
    std::map<std::string, int64_t> revisions;
    // Non-stopped tasks by id, and what they add up to on each instance.
    struct Task {
      std::string instance_id, group;
      int64_t cpu = 0, memory = 0;
      std::vector<uint16_t> tcp, udp;
      bool pending = true;
    };
    std::unordered_map<std::string, Task> tasks;
    std::unordered_map<std::string, std::map<std::string, int>> groups;
    std::unordered_map<std::string, InstanceUsage> usage;
    std::set<std::string> dirty;  // instance ids whose index slot is stale

    std::mutex placement_mu;  // serializes placements (and the index) in this cluster
    std::unique_ptr<scheduler::ClusterIndex> index;
    std::unordered_map<std::string, size_t> slot_of;
    std::vector<std::string> ids;
    std::vector<int64_t> revisions_by_slot;
  };

  void apply(const std::vector<store::Event>& events, int64_t revision);
  void apply_one(const store::KeyValue& kv, bool deleted);
  void wait_caught_up(int64_t revision);
  ClusterState& state(const std::string& cluster);  // requires mu_
  scheduler::InstanceView full_view(const ClusterState& s, const std::string& id) const;
  static void account(ClusterState& s, const ClusterState::Task& t, int sign);
  void sync_index(ClusterState& s);  // requires mu_ and s.placement_mu

  store::Store& store_;
  std::mutex mu_;  // guards the typed views, dirty sets and applied_
  std::condition_variable caught_up_;
  std::map<std::string, std::unique_ptr<ClusterState>> clusters_;
  int64_t applied_ = 0;
  std::unique_ptr<store::Subscription> watch_;
};

/// Places and commits up to `count` tasks described by a RunTask-shaped request (cluster,
/// taskDefinition, group, startedBy, placementStrategy, placementConstraints, tags) with no limit
/// on count and no error for an empty cluster: the answer is {tasks, failures} as RunTask's, so
/// callers such as the service controller see why tasks could not be placed.
Result<json::value> launch_tasks(EcsContext& ctx, Placer& placer, const json::object& request,
                                 int count);

/// Places one task of a RunTask-shaped request on each of the named instances (ids or ARNs), as
/// StartTask does but with no limit on their number: {tasks, failures}.
Result<json::value> launch_tasks_on(EcsContext& ctx, Placer& placer, const json::object& request,
                                    const std::vector<std::string>& instance_ids);

/// Stops a task as StopTask does: a task no agent has taken stops at once; one an agent took gets
/// desiredStatus STOPPED and its agent reports STOPPED. Returns the stored task after the change
/// (unchanged if it was already stopping); a missing task is InvalidParameterException.
Result<json::object> stop_task_record(EcsContext& ctx, const std::string& cluster,
                                      const std::string& task_id, const std::string& stop_code,
                                      const std::string& reason);

}  // namespace berth::server::ecs
