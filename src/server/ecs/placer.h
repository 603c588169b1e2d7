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

 private:
  struct ClusterState {
    std::map<std::string, scheduler::InstanceView> instances;  // by id, task_groups empty
    std::map<std::string, int64_t> revisions;
    // Non-stopped tasks: id -> {instance id, group}; and the groups on each instance.
    std::unordered_map<std::string, std::pair<std::string, std::string>> tasks;
    std::unordered_map<std::string, std::map<std::string, int>> groups;
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
  void sync_index(ClusterState& s);  // requires mu_ and s.placement_mu

  store::Store& store_;
  std::mutex mu_;  // guards the typed views, dirty sets and applied_
  std::condition_variable caught_up_;
  std::map<std::string, std::unique_ptr<ClusterState>> clusters_;
  int64_t applied_ = 0;
  std::unique_ptr<store::Subscription> watch_;
};

}  // namespace berth::server::ecs
