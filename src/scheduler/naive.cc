// place_naive(): the specification of placement written as directly as possible — every task
// scans every instance, evaluates every check and recomputes every spread count. It is the
// baseline of bench/scheduler and the oracle the property tests compare ClusterIndex with, so it
// must stay simple rather than fast.

#include <algorithm>
#include <map>

#include "scheduler/feasibility.h"
#include "scheduler/prng.h"

namespace berth::scheduler {

Plan place_naive(const Snapshot& snapshot, const CompiledRequest& cr, uint64_t seed) {
  using Kind = CompiledRequest::StepKind;
  const PlacementRequest& req = cr.request();
  std::vector<InstanceView> work = snapshot.instances;
  const size_t n = work.size();
  auto group_tasks = [&](const InstanceView& v) {
    return static_cast<int64_t>(std::count(v.task_groups.begin(), v.task_groups.end(), req.group));
  };

  Prng rng(seed);
  Plan plan;
  for (int task = 0; task < req.count; ++task) {
    const size_t start = n == 0 ? 0 : rng.below(n);
    std::vector<size_t> candidates;
    for (size_t i = 0; i < n; ++i)
      if (work[i].active && !rejection(work[i], cr, group_tasks(work[i]))) candidates.push_back(i);
    if (candidates.empty()) {
      for (size_t i = 0; i < n; ++i)
        if (work[i].active)
          if (auto reason = rejection(work[i], cr, group_tasks(work[i])))
            plan.failures.push_back({work[i].arn, std::string(*reason)});
      break;
    }

    for (const auto& step : cr.steps()) {
      if (step.kind == Kind::random) {
        candidates = {candidates[rng.below(candidates.size())]};
        break;
      }
      std::map<std::optional<std::string_view>, int64_t> buckets;
      if (step.kind == Kind::spread_attribute)
        for (const auto& v : work) buckets[bucket_of(v, step.attribute)] += group_tasks(v);
      auto score = [&](size_t i) -> int64_t {
        switch (step.kind) {
          case Kind::spread_attribute:
            return buckets[bucket_of(work[i], step.attribute)];
          case Kind::spread_instance:
            return group_tasks(work[i]);
          case Kind::binpack_cpu:
            return work[i].cpu_remaining;
          case Kind::binpack_memory:
            return work[i].memory_remaining;
          case Kind::random:
            break;
        }
        return 0;
      };
      int64_t best = INT64_MAX;
      for (size_t i : candidates) best = std::min(best, score(i));
      std::erase_if(candidates, [&](size_t i) { return score(i) != best; });
    }

    const size_t chosen = *std::min_element(
        candidates.begin(), candidates.end(),
        [&](size_t a, size_t b) { return (a + n - start) % n < (b + n - start) % n; });
    InstanceView& v = work[chosen];
    v.cpu_remaining -= req.cpu;
    v.memory_remaining -= req.memory;
    v.tcp_ports_used.insert(v.tcp_ports_used.end(), req.tcp_ports.begin(), req.tcp_ports.end());
    v.udp_ports_used.insert(v.udp_ports_used.end(), req.udp_ports.begin(), req.udp_ports.end());
    v.task_groups.push_back(req.group);
    ++v.running_tasks_count;
    plan.placements.push_back(chosen);
  }
  return plan;
}

}  // namespace berth::scheduler
