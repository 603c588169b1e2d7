// One test per strategy, constraint and failure reason, plus compile() validation and the
// incremental ClusterIndex API. Every placement runs through both engines (place_both).

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <tuple>

#include "scheduler/prng.h"
#include "scheduler/resource_order.h"
#include "scheduler/tests/test_cluster.h"

namespace berth::scheduler {
namespace {

using testing::instance;
using testing::must_compile;
using testing::place_both;
using testing::tasks_per_instance;

PlacementRequest request(int count, int64_t cpu, int64_t memory, std::vector<Strategy> strategies,
                         std::vector<Constraint> constraints = {}) {
  PlacementRequest r;
  r.count = count;
  r.cpu = cpu;
  r.memory = memory;
  r.group = "family:web";
  r.strategies = std::move(strategies);
  r.constraints = std::move(constraints);
  return r;
}

TEST(Binpack, MemoryPicksLeastRemainingThatStillFits) {
  Snapshot s{{instance("a", "z1", 4096, 1000), instance("b", "z1", 4096, 300),
              instance("c", "z1", 4096, 400), instance("d", "z1", 4096, 600)}};
  Plan p = place_both(s, must_compile(request(1, 0, 350, {{"binpack", "memory"}})));
  EXPECT_EQ(p.placements, std::vector<size_t>{2});
}

TEST(Binpack, CpuFillsOneInstanceBeforeTheNext) {
  Snapshot s{{instance("a", "z1", 2048, 8000), instance("b", "z1", 1024, 8000)}};
  Plan p = place_both(s, must_compile(request(3, 512, 10, {{"binpack", "cpu"}})));
  EXPECT_EQ(p.placements, (std::vector<size_t>{1, 1, 0}));
}

TEST(Binpack, TiesCarryOverToTheNextStrategy) {
  Snapshot s{{instance("a", "z1", 1024, 512), instance("b", "z2", 1024, 512),
              instance("c", "z3", 1024, 2048)}};
  s.instances[0].task_groups = {"family:web"};
  auto r = must_compile(
      request(1, 0, 256, {{"binpack", "memory"}, {"spread", "attribute:ecs.availability-zone"}}));
  EXPECT_EQ(place_both(s, r).placements, std::vector<size_t>{1});
}

TEST(Spread, AttributeBalancesZones) {
  Snapshot s;
  for (int i = 0; i < 9; ++i)
    s.instances.push_back(instance(std::to_string(i), "z" + std::to_string(i % 3), 4096, 8192));
  auto r = must_compile(request(7, 128, 128, {{"spread", "attribute:ecs.availability-zone"}}));
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Plan p = place_both(s, r, seed);
    int zones[3] = {};
    for (size_t i : p.placements) ++zones[i % 3];
    EXPECT_LE(*std::max_element(zones, zones + 3) - *std::min_element(zones, zones + 3), 1);
  }
}

TEST(Spread, CountsExistingTasksOfTheGroupOnly) {
  Snapshot s{{instance("a", "z1", 4096, 8192), instance("b", "z2", 4096, 8192),
              instance("c", "z3", 4096, 8192)}};
  s.instances[0].task_groups = {"family:web", "family:web"};
  s.instances[1].task_groups = {"family:other", "family:other", "family:other"};
  auto r = must_compile(request(3, 1, 1, {{"spread", "attribute:ecs.availability-zone"}}));
  Plan p = place_both(s, r);
  EXPECT_EQ(tasks_per_instance(p, 3), (std::vector<size_t>{0, 2, 1}));
}

TEST(Spread, InstancesWithoutTheAttributeShareOneBucket) {
  Snapshot s{{instance("a", "z1", 4096, 8192), instance("b", "z1", 4096, 8192),
              instance("c", "", 4096, 8192), instance("d", "", 4096, 8192)}};
  auto r = must_compile(request(2, 1, 1, {{"spread", "attribute:ecs.availability-zone"}}));
  Plan p = place_both(s, r);
  const auto per = tasks_per_instance(p, 4);
  EXPECT_EQ(per[0] + per[1], 1u);
  EXPECT_EQ(per[2] + per[3], 1u);
}

TEST(Spread, InstanceIdAndHostPreferInstancesWithoutTheGroup) {
  Snapshot s{{instance("a", "z1", 4096, 8192), instance("b", "z1", 4096, 8192),
              instance("c", "z1", 4096, 8192)}};
  s.instances[0].task_groups = {"family:web"};
  s.instances[2].task_groups = {"family:web", "family:web"};
  for (const char* field : {"instanceId", "host"}) {
    Plan p = place_both(s, must_compile(request(3, 1, 1, {{"spread", field}})));
    EXPECT_EQ(tasks_per_instance(p, 3), (std::vector<size_t>{1, 2, 0})) << field;
  }
}

TEST(Spread, ThenBinpackWithinTheZone) {
  Snapshot s{{instance("a", "z1", 4096, 4000), instance("b", "z1", 4096, 1000),
              instance("c", "z2", 4096, 3000), instance("d", "z2", 4096, 2000)}};
  auto r = must_compile(
      request(4, 1, 500, {{"spread", "attribute:ecs.availability-zone"}, {"binpack", "memory"}}));
  Plan p = place_both(s, r);
  std::multiset<size_t> got(p.placements.begin(), p.placements.end());
  EXPECT_EQ(got, (std::multiset<size_t>{1, 1, 3, 3}));
}

TEST(DefaultStrategy, SpreadsAcrossZonesThenInstances) {
  Snapshot s;
  for (int i = 0; i < 6; ++i)
    s.instances.push_back(instance(std::to_string(i), "z" + std::to_string(i % 3), 4096, 8192));
  Plan p = place_both(s, must_compile(request(6, 1, 1, {})));
  EXPECT_EQ(tasks_per_instance(p, 6), std::vector<size_t>(6, 1));
}

TEST(Random, DeterministicForASeedAndVariesAcrossSeeds) {
  Snapshot s;
  for (int i = 0; i < 8; ++i) s.instances.push_back(instance(std::to_string(i), "z1", 4096, 8192));
  auto r = must_compile(request(1, 1, 1, {{"random", ""}}));
  std::set<size_t> chosen;
  for (uint64_t seed = 0; seed < 64; ++seed) {
    Plan p = place_both(s, r, seed);
    EXPECT_EQ(p, place(s, r, seed));
    chosen.insert(p.placements.at(0));
  }
  EXPECT_EQ(chosen.size(), 8u);
}

TEST(MemberOf, FiltersAndExplains) {
  Snapshot s{{instance("a", "z1", 4096, 10000, {{"stack", "dev"}}),
              instance("b", "z1", 4096, 100, {{"stack", "prod"}}),
              instance("c", "z1", 4096, 8192, {{"stack", "prod"}})}};
  auto r = must_compile(
      request(2, 1, 500, {{"binpack", "memory"}}, {{"memberOf", "attribute:stack == prod"}}));
  Plan p = place_both(s, r);
  EXPECT_EQ(p.placements, (std::vector<size_t>{2, 2}));
  EXPECT_TRUE(p.failures.empty());

  auto big = must_compile(request(1, 1, 9000, {}, {{"memberOf", "attribute:stack == prod"}}));
  p = place_both(s, big);
  EXPECT_TRUE(p.placements.empty());
  ASSERT_EQ(p.failures.size(), 3u);
  EXPECT_EQ(p.failures[0].reason, kReasonMemberOf);
  EXPECT_EQ(p.failures[1].reason, kReasonMemory);  // resources are checked before constraints
  EXPECT_EQ(p.failures[2].reason, kReasonMemory);
}

TEST(MemberOf, TaskGroupSeesThisPlansPlacements) {
  Snapshot s{{instance("a", "z1", 4096, 8192), instance("b", "z1", 4096, 8192)}};
  auto r = must_compile(
      request(3, 1, 1, {{"binpack", "memory"}}, {{"memberOf", "not task:group == family:web"}}));
  Plan p = place_both(s, r);
  EXPECT_EQ(p.placements.size(), 2u);
  EXPECT_NE(p.placements[0], p.placements[1]);
  ASSERT_EQ(p.failures.size(), 2u);
  EXPECT_EQ(p.failures[0].reason, kReasonMemberOf);
}

TEST(DistinctInstance, OneTaskOfTheGroupPerInstance) {
  Snapshot s{{instance("a", "z1", 4096, 8192), instance("b", "z1", 4096, 8192),
              instance("c", "z1", 4096, 8192)}};
  s.instances[2].task_groups = {"family:web"};  // an existing task of the group counts
  auto r = must_compile(request(3, 1, 1, {{"binpack", "memory"}}, {{"distinctInstance", ""}}));
  Plan p = place_both(s, r);
  EXPECT_EQ(tasks_per_instance(p, 3), (std::vector<size_t>{1, 1, 0}));
  ASSERT_EQ(p.failures.size(), 3u);
  for (const auto& f : p.failures) EXPECT_EQ(f.reason, kReasonDistinctInstance);
}

TEST(Failures, FirstReasonPerActiveInstanceInSnapshotOrder) {
  Snapshot s{{instance("agent", "z1", 4096, 8192), instance("attr", "z1", 4096, 8192),
              instance("cpu", "z1", 100, 8192, {{"gpu", "yes"}}),
              instance("mem", "z1", 4096, 100, {{"gpu", "yes"}}),
              instance("tcp", "z1", 4096, 8192, {{"gpu", "yes"}}),
              instance("udp", "z1", 4096, 8192, {{"gpu", "yes"}}),
              instance("drain", "z1", 4096, 8192, {{"gpu", "yes"}})}};
  s.instances[0].agent_connected = false;
  s.instances[0].attributes.push_back({"gpu", "yes"});
  s.instances[2].memory_remaining = 0;  // CPU is reported first
  s.instances[4].tcp_ports_used = {22, 80};
  s.instances[5].udp_ports_used = {53};
  s.instances[6].active = false;  // draining: neither a candidate nor listed
  PlacementRequest req = request(1, 512, 512, {});
  req.tcp_ports = {80};
  req.udp_ports = {53};
  req.required_attributes = {{"gpu", "yes"}};
  Plan p = place_both(s, must_compile(req));
  EXPECT_TRUE(p.placements.empty());
  std::vector<Failure> want;
  for (auto [id, reason] :
       std::vector<std::pair<std::string, std::string_view>>{{"agent", kReasonAgent},
                                                             {"attr", kReasonAttribute},
                                                             {"cpu", kReasonCpu},
                                                             {"mem", kReasonMemory},
                                                             {"tcp", kReasonPorts},
                                                             {"udp", kReasonPortsUdp}})
    want.push_back(
        {"arn:aws:ecs:us-east-1:123456789012:container-instance/test/" + id, std::string(reason)});
  EXPECT_EQ(p.failures, want);
}

TEST(Failures, PortsAreConsumedWithinAPlan) {
  Snapshot s{{instance("a", "z1", 4096, 8192)}};
  PlacementRequest req = request(2, 1, 1, {});
  req.tcp_ports = {8080};
  Plan p = place_both(s, must_compile(req));
  EXPECT_EQ(p.placements, std::vector<size_t>{0});
  ASSERT_EQ(p.failures.size(), 1u);
  EXPECT_EQ(p.failures[0].reason, kReasonPorts);
}

TEST(RequiredAttributes, ValueMustMatchWhenGiven) {
  Snapshot s{{instance("a", "z1", 4096, 8192, {{"ecs.os-type", "windows"}}),
              instance("b", "z1", 4096, 8192, {{"ecs.os-type", "linux"}})}};
  PlacementRequest req = request(1, 1, 1, {});
  req.required_attributes = {{"ecs.os-type", "linux"}};
  EXPECT_EQ(place_both(s, must_compile(req)).placements, std::vector<size_t>{1});
  req.required_attributes = {{"ecs.os-type", std::nullopt}};
  EXPECT_EQ(place_both(s, must_compile(req)).placements.size(), 1u);
}

struct CompileCase {
  PlacementRequest request;
  Errc code;
  std::string message;
};

TEST(Compile, RejectsInvalidRequestsWithMessages) {
  auto with_strategies = [](std::vector<Strategy> s) {
    PlacementRequest r;
    r.strategies = std::move(s);
    return r;
  };
  auto with_constraints = [](std::vector<Constraint> c) {
    PlacementRequest r;
    r.constraints = std::move(c);
    return r;
  };
  PlacementRequest zero;
  zero.count = 0;
  const std::vector<CompileCase> cases = {
      {zero, Errc::invalid_request, "count must be at least 1"},
      {with_strategies(std::vector<Strategy>(6, {"random", ""})), Errc::invalid_strategy,
       "At most 5 placement strategies are allowed; got 6"},
      {with_strategies({{"binpack", "disk"}}), Errc::invalid_strategy,
       "Placement strategy 1: binpack field must be cpu or memory, got 'disk'"},
      {with_strategies({{"random", ""}, {"spread", ""}}), Errc::invalid_strategy,
       "Placement strategy 2: spread requires a field: instanceId, host or attribute:<name>"},
      {with_strategies({{"spread", "attribute:"}}), Errc::invalid_strategy,
       "Placement strategy 1: spread field must be instanceId, host or attribute:<name>, got "
       "'attribute:'"},
      {with_strategies({{"pack", "cpu"}}), Errc::invalid_strategy,
       "Placement strategy 1: unknown type 'pack' (expected random, spread or binpack)"},
      {with_constraints(std::vector<Constraint>(11, {"distinctInstance", ""})),
       Errc::invalid_constraint, "At most 10 placement constraints are allowed; got 11"},
      {with_constraints({{"memberOf", ""}}), Errc::invalid_constraint,
       "Placement constraint 1: memberOf requires an expression"},
      {with_constraints({{"distinctInstance", "attribute:a exists"}}), Errc::invalid_constraint,
       "Placement constraint 1: an expression cannot be specified for distinctInstance"},
      {with_constraints({{"memberOf", "attribute:a exists"}, {"memberOf", "attribute:stack prod"}}),
       Errc::invalid_constraint,
       "Placement constraint 2: Invalid expression at position 17: expected operator"},
      {with_constraints({{"memberOf", std::string(2001, 'x')}}), Errc::invalid_constraint,
       "Placement constraint 1: Invalid expression: longer than 2000 characters"},
      {with_constraints({{"sameHost", ""}}), Errc::invalid_constraint,
       "Placement constraint 1: unknown type 'sameHost' (expected memberOf or distinctInstance)"},
  };
  for (const auto& c : cases) {
    auto r = compile(c.request);
    ASSERT_FALSE(r.ok()) << c.message;
    EXPECT_EQ(r.error().code, make_error_code(c.code)) << c.message;
    EXPECT_EQ(r.error().message, c.message);
  }
}

TEST(Compile, DefaultsAndCaseInsensitiveBinpackField) {
  auto none = must_compile(PlacementRequest{});
  ASSERT_EQ(none.steps().size(), 2u);
  EXPECT_EQ(none.steps()[0].kind, CompiledRequest::StepKind::spread_attribute);
  EXPECT_EQ(none.steps()[0].attribute, "ecs.availability-zone");
  EXPECT_EQ(none.steps()[1].kind, CompiledRequest::StepKind::spread_instance);
  PlacementRequest r;
  r.strategies = {{"binpack", "MEMORY"}, {"random", ""}, {"spread", "instanceId"}};
  auto c = must_compile(r);
  ASSERT_EQ(c.steps().size(), 2u);  // nothing after random can refine a single pick
  EXPECT_EQ(c.steps()[0].kind, CompiledRequest::StepKind::binpack_memory);
}

TEST(ClusterIndex, PlaceLeavesTheIndexUnchangedAndApplyCommits) {
  Snapshot s{{instance("a", "z1", 1024, 1024), instance("b", "z2", 1024, 1024)}};
  ClusterIndex index(s);
  auto r = must_compile(request(2, 512, 512, {{"binpack", "memory"}}));
  Plan first = index.place(r, 7);
  EXPECT_EQ(index.place(r, 7), first);
  EXPECT_EQ(index.instance(0).memory_remaining, 1024);
  index.apply(first, r);
  EXPECT_EQ(index.instance(first.placements[0]).memory_remaining, 0);
  EXPECT_EQ(index.instance(first.placements[0]).task_groups.size(), 2u);
  Plan second = index.place(r, 7);
  EXPECT_EQ(second.placements.size(), 2u);
  index.apply(second, r);
  Plan third = index.place(r, 7);
  EXPECT_TRUE(third.placements.empty());
  EXPECT_EQ(third.failures.size(), 2u);

  // A task stops on instance 0: the owner replaces the instance's view.
  InstanceView freed = index.instance(0);
  freed.memory_remaining += 512;
  freed.cpu_remaining += 512;
  freed.task_groups.pop_back();
  --freed.running_tasks_count;
  index.update_instance(0, freed);
  EXPECT_EQ(index.place(r, 7).placements.size(), 1u);

  // A new instance registers.
  EXPECT_EQ(index.add_instance(instance("c", "z3", 4096, 4096)), 2u);
  EXPECT_EQ(index.place(r, 7).placements.size(), 2u);

  // Draining removes an instance from consideration without changing indexes.
  InstanceView drained = index.instance(2);
  drained.active = false;
  index.update_instance(2, drained);
  EXPECT_EQ(index.place(r, 7).placements, std::vector<size_t>{0});
}

}  // namespace
}  // namespace berth::scheduler

namespace berth::scheduler {
namespace {

// ResourceOrder against a plain sorted reference under random inserts, updates and erases.
TEST(ResourceOrder, MatchesASortedReference) {
  Prng rng(5);
  ResourceOrder order;
  std::map<uint32_t, std::pair<int64_t, int64_t>> ref;  // index -> (key, other)
  for (int op = 0; op < 20000; ++op) {
    const auto i = static_cast<uint32_t>(rng.below(300));
    const auto key = static_cast<int64_t>(rng.below(40)),
               other = static_cast<int64_t>(rng.below(40));
    if (auto it = ref.find(i); it == ref.end()) {
      order.insert(key, other, i);
      ref[i] = {key, other};
    } else if (rng.below(10) == 0) {
      order.erase(it->second.first, i);
      ref.erase(it);
    } else {
      order.update(it->second.first, i, key, other);
      it->second = {key, other};
    }
    if (op % 97 != 0) continue;
    std::vector<std::tuple<int64_t, uint32_t, int64_t>> want;
    for (auto& [index, v] : ref) want.emplace_back(v.first, index, v.second);
    std::sort(want.begin(), want.end());
    ASSERT_EQ(order.size(), want.size());
    for (size_t p = 0; p < want.size(); ++p) {
      ASSERT_EQ(order[p].key, std::get<0>(want[p]));
      ASSERT_EQ(order[p].index, std::get<1>(want[p]));
      ASSERT_EQ(order[p].other, std::get<2>(want[p]));
    }
    const int64_t need = static_cast<int64_t>(rng.below(45));
    const size_t from = rng.below(want.size() + 1);
    size_t expect = from;
    while (expect < want.size() && std::get<2>(want[expect]) < need) ++expect;
    ASSERT_EQ(order.next_with_other(from, need), expect);
  }
}

}  // namespace
}  // namespace berth::scheduler
