#pragma once
// ClusterIndex: the placement engine the server keeps, one per cluster. It is built once from a
// snapshot and then kept current incrementally — apply() each committed plan, update_instance()
// when an instance changes (task stopped, agent disconnected, drained, re-registered) — so a
// placement costs roughly O(classes * log instances) instead of a scan of the cluster.
//
// How it is fast (the semantics are exactly place_naive's; scheduler.h describes them):
//  - Instances with identical attributes, agent version, agent connection and status form a
//    class. Required attributes and memberOf expressions that read only those fields are decided
//    once per class per request; spread(attribute:X) buckets are per class too.
//  - Each class keeps its instances ordered by remaining CPU and by remaining memory
//    (resource_order.h), so binpack is a lower_bound at the task's size; spread(instanceId) first
//    looks for instances with no task of the group, which is where the minimum almost always is.
//  - Per group, the instances running its tasks and how many: the counts spread and
//    distinctInstance need, without scanning the cluster.
// Shapes the fast paths do not cover (random; binpack followed by spread(instanceId); two
// binpacks) scan the members of the eligible classes, which is still far cheaper than the naive
// engine because the class-level work is not repeated per instance.
//
// Not thread-safe: the owner serialises place/apply/update (one strand per cluster).

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "scheduler/resource_order.h"
#include "scheduler/scheduler.h"

namespace berth::scheduler {

class ClusterIndex {
 public:
  explicit ClusterIndex(Snapshot snapshot);

  size_t size() const { return slots_.size(); }
  /// The instance's current state: the snapshot plus everything applied since.
  const InstanceView& instance(size_t index) const { return slots_[index].view; }

  /// Plans `request` against the current state. Leaves the index unchanged (it simulates the
  /// plan's own placements and undoes them), so a plan that the store then rejects costs nothing.
  Plan place(const CompiledRequest& request, uint64_t seed);

  /// Records a plan's placements (resources, ports, group counts, task:group,
  /// runningTasksCount). The plan must come from place() on this index with no change in between.
  void apply(const Plan& plan, const CompiledRequest& request);

  /// Replaces an instance's state, e.g. after tasks stopped or its status changed. Indexes stay
  /// stable: a deregistered instance is updated to active = false rather than removed.
  void update_instance(size_t index, InstanceView view);
  /// Adds a newly registered instance; returns its index.
  size_t add_instance(InstanceView view);

 private:
  using GroupCounts = std::unordered_map<uint32_t, int32_t>;  // instance -> tasks of the group

  struct Slot {
    InstanceView view;  // ports kept sorted
    uint32_t cls = 0;
  };
  struct Class {
    InstanceView rep;                 // attributes, agent fields, status shared by all members
    std::vector<uint32_t> members;    // sorted
    ResourceOrder by_cpu, by_memory;  // binpack orders (each summarising the other resource)
  };
  struct Search;  // one request being placed (cluster_search.cc)

  void link(uint32_t index);    // into its class, the resource sets and the group counts
  void unlink(uint32_t index);  // the reverse
  uint32_t class_for(const InstanceView& view);
  void consume(uint32_t index, const PlacementRequest& request, GroupCounts& group);
  void release(uint32_t index, const PlacementRequest& request, GroupCounts& group);

  std::vector<Slot> slots_;
  std::vector<Class> classes_;
  std::unordered_map<std::string, uint32_t> class_ids_;
  std::unordered_map<std::string, GroupCounts> groups_;
};

}  // namespace berth::scheduler
