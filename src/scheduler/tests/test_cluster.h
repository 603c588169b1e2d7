#pragma once
// Helpers shared by the scheduler tests: building instances and requests tersely, and running
// both engines (every test checks that the index and the naive oracle agree).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "scheduler/cluster_index.h"
#include "scheduler/scheduler.h"

namespace berth::scheduler::testing {

inline InstanceView instance(const std::string& id, const std::string& az, int64_t cpu,
                             int64_t memory, std::vector<Attribute> extra = {}) {
  InstanceView v;
  v.id = id;
  v.arn = "arn:aws:ecs:us-east-1:123456789012:container-instance/test/" + id;
  v.ec2_instance_id = "i-" + id;
  v.cpu_remaining = cpu;
  v.memory_remaining = memory;
  if (!az.empty()) v.attributes.push_back({"ecs.availability-zone", az});
  for (auto& a : extra) v.attributes.push_back(std::move(a));
  v.agent_version = "1.70.0";
  return v;
}

inline CompiledRequest must_compile(const PlacementRequest& r) {
  auto c = compile(r);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  return std::move(c).value();
}

/// Places with both engines, checks they agree, and returns the plan.
inline Plan place_both(const Snapshot& s, const CompiledRequest& r, uint64_t seed = 1) {
  Plan fast = place(s, r, seed);
  Plan naive = place_naive(s, r, seed);
  EXPECT_EQ(fast.placements, naive.placements);
  EXPECT_EQ(fast.failures, naive.failures);
  return fast;
}

inline std::vector<size_t> tasks_per_instance(const Plan& p, size_t n) {
  std::vector<size_t> out(n);
  for (size_t i : p.placements) ++out[i];
  return out;
}

}  // namespace berth::scheduler::testing
