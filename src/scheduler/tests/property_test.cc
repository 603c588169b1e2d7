// Property tests over random clusters and requests (fixed seeds, a few thousand cases):
//  - the indexed engine and the naive oracle produce identical plans (placements and failures);
//  - the same seed gives the same plan;
//  - replaying a plan never overcommits CPU, memory or ports and never breaks a constraint;
//  - spread is balanced within one request where capacity allows;
//  - an index kept current with apply()/update_instance() plans like a fresh snapshot does.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "scheduler/feasibility.h"
#include "scheduler/prng.h"
#include "scheduler/tests/test_cluster.h"

namespace berth::scheduler {
namespace {

const std::vector<std::string> kGroups = {"family:web", "family:api", "service:db"};

template <class T>
const T& pick(Prng& rng, const std::vector<T>& v) {
  return v[rng.below(v.size())];
}
bool chance(Prng& rng, int percent) { return rng.below(100) < static_cast<uint64_t>(percent); }

InstanceView random_instance(Prng& rng, size_t i) {
  // Coarse resource steps make ties common, which is where engines are most likely to disagree.
  InstanceView v =
      testing::instance(std::to_string(i), "", static_cast<int64_t>(rng.below(9)) * 256,
                        static_cast<int64_t>(rng.below(9)) * 512);
  if (chance(rng, 85))
    v.attributes.push_back(
        {"ecs.availability-zone",
         pick(rng, std::vector<std::string>{"us-east-1a", "us-east-1b", "us-east-1c"})});
  v.attributes.push_back(
      {"ecs.instance-type",
       pick(rng, std::vector<std::string>{"t2.micro", "m5.large", "c5.xlarge"})});
  if (chance(rng, 70))
    v.attributes.push_back({"tier", pick(rng, std::vector<std::string>{"web", "batch"})});
  for (uint16_t p : {22, 80, 443, 8080})
    if (chance(rng, 20)) v.tcp_ports_used.push_back(p);
  if (chance(rng, 20)) v.udp_ports_used.push_back(53);
  v.agent_connected = chance(rng, 90);
  v.active = chance(rng, 90);
  v.agent_version = chance(rng, 50) ? "1.60.0" : "1.70.1";
  v.registered_at = 1.5e9 + static_cast<double>(rng.below(100000000));
  for (uint64_t k = rng.below(4); k > 0; --k) v.task_groups.push_back(pick(rng, kGroups));
  v.running_tasks_count = static_cast<int64_t>(v.task_groups.size() + rng.below(2));
  return v;
}

Snapshot random_cluster(Prng& rng, size_t max_instances = 30) {
  Snapshot s;
  const size_t n = 1 + rng.below(max_instances);
  for (size_t i = 0; i < n; ++i) s.instances.push_back(random_instance(rng, i));
  return s;
}

PlacementRequest random_request(Prng& rng) {
  static const std::vector<Constraint> kConstraints = {
      {"distinctInstance", ""},
      {"memberOf", "attribute:tier == web"},
      {"memberOf", "attribute:ecs.instance-type =~ (t2|m5).*"},
      {"memberOf", "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]"},
      {"memberOf", "runningTasksCount < 4"},
      {"memberOf", "not task:group == service:db"},
      {"memberOf", "attribute:tier !exists or agentVersion >= 1.70.0"},
      {"memberOf", "ec2InstanceId != i-3 && registeredAt > 2017-08-01"},
  };
  static const std::vector<Strategy> kStrategies = {
      {"binpack", "cpu"},
      {"binpack", "memory"},
      {"spread", "attribute:ecs.availability-zone"},
      {"spread", "instanceId"},
      {"spread", "host"},
      {"spread", "attribute:tier"},
      {"spread", "attribute:nope"},
      {"random", ""},
  };
  PlacementRequest r;
  r.count = 1 + static_cast<int>(rng.below(8));
  r.cpu = static_cast<int64_t>(rng.below(5)) * 128;
  r.memory = static_cast<int64_t>(rng.below(5)) * 256;
  if (chance(rng, 25)) r.tcp_ports = {chance(rng, 50) ? uint16_t{80} : uint16_t{8080}};
  if (chance(rng, 15)) r.udp_ports = {53};
  r.group = pick(rng, kGroups);
  for (uint64_t k = rng.below(3); k > 0; --k) r.constraints.push_back(pick(rng, kConstraints));
  for (uint64_t k = rng.below(4); k > 0; --k) r.strategies.push_back(pick(rng, kStrategies));
  if (chance(rng, 10))
    r.required_attributes = {chance(rng, 50) ? Attribute{"tier", std::nullopt}
                                             : Attribute{"ecs.instance-type", "m5.large"}};
  return r;
}

void consume(InstanceView& v, const PlacementRequest& r) {
  v.cpu_remaining -= r.cpu;
  v.memory_remaining -= r.memory;
  v.tcp_ports_used.insert(v.tcp_ports_used.end(), r.tcp_ports.begin(), r.tcp_ports.end());
  v.udp_ports_used.insert(v.udp_ports_used.end(), r.udp_ports.begin(), r.udp_ports.end());
  v.task_groups.push_back(r.group);
  ++v.running_tasks_count;
}

bool has(const std::vector<uint16_t>& v, uint16_t p) {
  return std::find(v.begin(), v.end(), p) != v.end();
}

// Checks a plan by replaying it, independently of both engines' search code.
void expect_valid(const Snapshot& s, const CompiledRequest& cr, const Plan& plan) {
  const PlacementRequest& r = cr.request();
  std::vector<InstanceView> work = s.instances;
  for (size_t i : plan.placements) {
    ASSERT_LT(i, work.size());
    InstanceView& v = work[i];
    EXPECT_TRUE(v.active);
    EXPECT_TRUE(v.agent_connected);
    EXPECT_TRUE(has_required_attributes(v, r));
    for (uint16_t p : r.tcp_ports) EXPECT_FALSE(has(v.tcp_ports_used, p)) << "tcp " << p;
    for (uint16_t p : r.udp_ports) EXPECT_FALSE(has(v.udp_ports_used, p)) << "udp " << p;
    for (const auto& rule : cr.rules()) {
      if (rule.distinct_instance())
        EXPECT_EQ(std::count(v.task_groups.begin(), v.task_groups.end(), r.group), 0);
      else
        EXPECT_TRUE(rule.member_of->matches(v)) << rule.member_of->text();
    }
    consume(v, r);
    EXPECT_GE(v.cpu_remaining, 0);
    EXPECT_GE(v.memory_remaining, 0);
  }
  const size_t active = std::count_if(work.begin(), work.end(), [](auto& v) { return v.active; });
  if (plan.placements.size() == static_cast<size_t>(r.count)) {
    EXPECT_TRUE(plan.failures.empty());
  } else {
    EXPECT_EQ(plan.failures.size(), active);  // every active instance explains its refusal
  }
}

TEST(Property, IndexAgreesWithNaiveOracleAndPlansAreValid) {
  Prng rng(20240601);
  int partial = 0, full = 0;
  for (int c = 0; c < 3000; ++c) {
    const Snapshot s = random_cluster(rng);
    const PlacementRequest r = random_request(rng);
    const CompiledRequest cr = testing::must_compile(r);
    const uint64_t seed = rng.next();
    const Plan fast = place(s, cr, seed);
    const Plan naive = place_naive(s, cr, seed);
    ASSERT_EQ(fast.placements, naive.placements) << "case " << c;
    ASSERT_EQ(fast.failures, naive.failures) << "case " << c;
    ASSERT_EQ(place(s, cr, seed), fast) << "same seed, same plan; case " << c;
    expect_valid(s, cr, fast);
    if (HasFailure()) FAIL() << "case " << c;
    (fast.placements.size() == static_cast<size_t>(r.count) ? full : partial)++;
  }
  // The generator must exercise both outcomes for the comparison to mean anything.
  EXPECT_GT(full, 500);
  EXPECT_GT(partial, 500);
}

TEST(Property, SpreadIsBalancedWithinARequestWhereCapacityAllows) {
  Prng rng(77);
  for (int c = 0; c < 1000; ++c) {
    Snapshot s = random_cluster(rng);
    for (auto& v : s.instances) {  // ample capacity, no conflicts, no tasks of the group yet
      v.cpu_remaining = v.memory_remaining = 1 << 20;
      v.task_groups.clear();
    }
    PlacementRequest r;
    r.count = 1 + static_cast<int>(rng.below(12));
    r.group = "family:web";
    const int which = static_cast<int>(rng.below(3));
    if (which == 0) r.strategies = {{"spread", "attribute:ecs.availability-zone"}};
    if (which == 1) r.strategies = {{"spread", "instanceId"}};
    const CompiledRequest cr = testing::must_compile(r);
    const Plan p = place(s, cr, rng.next());

    std::map<std::optional<std::string_view>, int> zones;  // eligible buckets start at 0
    std::map<size_t, int> instances;
    for (size_t i = 0; i < s.instances.size(); ++i) {
      if (!s.instances[i].active || !s.instances[i].agent_connected) continue;
      zones[bucket_of(s.instances[i], "ecs.availability-zone")] += 0;
      instances[i] += 0;
    }
    if (instances.empty()) continue;
    ASSERT_EQ(p.placements.size(), static_cast<size_t>(r.count));
    for (size_t i : p.placements) {
      ++zones[bucket_of(s.instances[i], "ecs.availability-zone")];
      ++instances[i];
    }
    auto spread = [](const auto& m) {
      auto [lo, hi] = std::minmax_element(m.begin(), m.end(),
                                          [](auto& a, auto& b) { return a.second < b.second; });
      return hi->second - lo->second;
    };
    if (which != 1) {
      EXPECT_LE(spread(zones), 1) << "case " << c;
    }
    if (which == 1) {
      EXPECT_LE(spread(instances), 1) << "case " << c;
    }
    if (which == 2) {  // the default: zones first, then instances within each zone
      std::map<std::optional<std::string_view>, std::map<size_t, int>> by_zone;
      for (auto [i, n] : instances)
        by_zone[bucket_of(s.instances[i], "ecs.availability-zone")][i] = n;
      for (const auto& [zone, counts] : by_zone) EXPECT_LE(spread(counts), 1) << "case " << c;
    }
  }
}

TEST(Property, IncrementalIndexPlansLikeAFreshSnapshot) {
  Prng rng(99);
  for (int c = 0; c < 150; ++c) {
    Snapshot s = random_cluster(rng, 40);
    ClusterIndex index(s);
    for (int step = 0; step < 20; ++step) {
      if (chance(rng, 20)) {  // an instance changes: tasks stop, it drains or reconnects
        const size_t i = rng.below(s.instances.size());
        InstanceView v = s.instances[i];
        v.cpu_remaining += static_cast<int64_t>(rng.below(4)) * 256;
        v.memory_remaining += static_cast<int64_t>(rng.below(4)) * 512;
        if (!v.task_groups.empty() && chance(rng, 50)) v.task_groups.pop_back();
        if (chance(rng, 20)) v.active = !v.active;
        if (chance(rng, 20)) v.agent_connected = !v.agent_connected;
        s.instances[i] = v;
        index.update_instance(i, v);
      }
      if (chance(rng, 5)) {
        s.instances.push_back(random_instance(rng, s.instances.size()));
        ASSERT_EQ(index.add_instance(s.instances.back()), s.instances.size() - 1);
      }
      const CompiledRequest cr = testing::must_compile(random_request(rng));
      const uint64_t seed = rng.next();
      const Plan plan = index.place(cr, seed);
      ASSERT_EQ(plan, place_naive(s, cr, seed)) << "case " << c << " step " << step;
      index.apply(plan, cr);
      for (size_t i : plan.placements) consume(s.instances[i], cr.request());
      for (size_t i = 0; i < s.instances.size(); ++i) {
        ASSERT_EQ(index.instance(i).memory_remaining, s.instances[i].memory_remaining);
        ASSERT_EQ(index.instance(i).task_groups, s.instances[i].task_groups);
      }
    }
  }
}

}  // namespace
}  // namespace berth::scheduler
