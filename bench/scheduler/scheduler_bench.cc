// Placement throughput of the indexed engine (ClusterIndex) against the naive linear scan, on one
// core. The cluster: 10,000 instances in 3 AZs, 5 instance types, a custom "workload" attribute
// (general 60% / batch 25% / gpu 15%), two agent versions, 2% draining and 1% disconnected, the
// ECS agent's reserved ports taken. The load: 10,000 RunTask requests of count 10 (100,000 tasks)
// from 500 task families of mixed sizes, each with memberOf(attribute:workload in [general, gpu]).
// Each request is placed and its plan applied, as the server does. Requests are compiled once per
// family up front (RunTask would compile per call; compile() is ~1 µs without regexes).
//
// The naive engine copies the snapshot and scans every instance per task, so it runs only the
// first kNaiveRequests requests; the indexed engine's rate over the same requests is printed
// beside it (and both engines' plans are checked to be identical there).
//
// Usage: scheduler_bench [requests=10000] [naive_requests=100]

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "scheduler/cluster_index.h"
#include "scheduler/prng.h"
#include "scheduler/scheduler.h"

namespace sched = berth::scheduler;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kInstances = 10'000;
constexpr int kFamilies = 500;
constexpr int kTasksPerRequest = 10;

struct Type {
  const char* name;
  int64_t cpu, memory;
};
constexpr Type kTypes[] = {{"m5.large", 2048, 7680},
                           {"m5.xlarge", 4096, 15616},
                           {"m5.2xlarge", 8192, 31744},
                           {"c5.xlarge", 4096, 7424},
                           {"r5.large", 2048, 15872}};

sched::Snapshot make_cluster() {
  sched::Prng rng(1);
  sched::Snapshot s;
  for (size_t i = 0; i < kInstances; ++i) {
    const Type& t = kTypes[rng.below(std::size(kTypes))];
    sched::InstanceView v;
    v.id = "ci-" + std::to_string(i);
    v.arn = "arn:aws:ecs:us-east-1:123456789012:container-instance/bench/" + v.id;
    v.ec2_instance_id = "i-" + std::to_string(1000000 + i);
    v.cpu_remaining = t.cpu;
    v.memory_remaining = t.memory;
    v.tcp_ports_used = {22, 2375, 2376, 51678, 51679};
    const uint64_t w = rng.below(100);
    v.attributes = {{"ecs.availability-zone", std::string("us-east-1") + "abc"[rng.below(3)]},
                    {"ecs.instance-type", t.name},
                    {"ecs.os-type", "linux"},
                    {"ecs.cpu-architecture", "x86_64"},
                    {"ecs.ami-id", "ami-0123456789abcdef0"},
                    {"com.amazonaws.ecs.capability.docker-remote-api.1.44", std::nullopt},
                    {"workload", w < 60 ? "general" : (w < 85 ? "batch" : "gpu")}};
    v.agent_version = rng.below(2) ? "1.68.2" : "1.70.1";
    v.active = rng.below(100) >= 2;
    v.agent_connected = rng.below(100) >= 1;
    v.registered_at = 1.7e9 + static_cast<double>(i);
    s.instances.push_back(std::move(v));
  }
  return s;
}

std::vector<sched::CompiledRequest> make_families(const std::vector<sched::Strategy>& strategies) {
  sched::Prng rng(2);
  std::vector<sched::CompiledRequest> out;
  for (int f = 0; f < kFamilies; ++f) {
    sched::PlacementRequest r;
    r.count = kTasksPerRequest;
    r.cpu = int64_t{64} << rng.below(4);                                  // 64..512
    r.memory = std::vector<int64_t>{256, 512, 1024, 1536}[rng.below(4)];  // MiB
    r.group = "family:app-" + std::to_string(f);
    r.constraints = {{"memberOf", "attribute:workload in [general, gpu]"}};
    r.strategies = strategies;
    auto c = sched::compile(r);
    if (!c.ok()) {
      std::fprintf(stderr, "compile: %s\n", c.error().message.c_str());
      std::exit(1);
    }
    out.push_back(std::move(c).value());
  }
  return out;
}

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

void consume(sched::InstanceView& v, const sched::PlacementRequest& r) {
  v.cpu_remaining -= r.cpu;
  v.memory_remaining -= r.memory;
  v.tcp_ports_used.insert(v.tcp_ports_used.end(), r.tcp_ports.begin(), r.tcp_ports.end());
  v.task_groups.push_back(r.group);
  ++v.running_tasks_count;
}

void run(const char* name, const std::vector<sched::Strategy>& strategies, int requests,
         int naive_requests) {
  const sched::Snapshot cluster = make_cluster();
  const auto families = make_families(strategies);
  auto family_of = [](int r) { return static_cast<size_t>(r * 7919) % kFamilies; };

  // Indexed engine over the whole load.
  auto t0 = Clock::now();
  sched::ClusterIndex index(cluster);
  const double build = seconds_since(t0);
  size_t placed = 0, failed_requests = 0;
  t0 = Clock::now();
  double first_k = 0;
  size_t placed_first_k = 0;
  for (int r = 0; r < requests; ++r) {
    const auto& cr = families[family_of(r)];
    sched::Plan plan = index.place(cr, static_cast<uint64_t>(r));
    index.apply(plan, cr);
    placed += plan.placements.size();
    failed_requests += plan.failures.empty() ? 0 : 1;
    if (r + 1 == naive_requests) {
      first_k = seconds_since(t0);
      placed_first_k = placed;
    }
  }
  const double indexed = seconds_since(t0);

  // Naive engine over the first requests, on a snapshot advanced by the same plans.
  sched::Snapshot snapshot = cluster;
  sched::ClusterIndex check(cluster);
  size_t naive_placed = 0;
  bool same = true;
  double naive = 0;
  for (int r = 0; r < naive_requests; ++r) {
    const auto& cr = families[family_of(r)];
    auto t = Clock::now();
    sched::Plan plan = sched::place_naive(snapshot, cr, static_cast<uint64_t>(r));
    naive += seconds_since(t);
    sched::Plan fast = check.place(cr, static_cast<uint64_t>(r));
    same = same && fast == plan;
    check.apply(fast, cr);
    for (size_t i : plan.placements) consume(snapshot.instances[i], cr.request());
    naive_placed += plan.placements.size();
  }

  const double indexed_rate = static_cast<double>(placed) / indexed;
  const double first_rate = static_cast<double>(placed_first_k) / first_k;
  const double naive_rate = static_cast<double>(naive_placed) / naive;
  std::printf("%s\n", name);
  std::printf("  index build          %8.1f ms (%zu instances)\n", build * 1e3, kInstances);
  std::printf(
      "  indexed  all         %10.0f placements/s  (%zu tasks, %d requests, %.2f s, %zu "
      "requests partly failed)\n",
      indexed_rate, placed, requests, indexed, failed_requests);
  std::printf("  indexed  first %-5d %10.0f placements/s\n", naive_requests, first_rate);
  std::printf("  naive    first %-5d %10.0f placements/s  (plans identical: %s)\n", naive_requests,
              naive_rate, same ? "yes" : "NO");
  std::printf("  speed-up             %8.0fx same requests, %.0fx whole run vs naive\n",
              first_rate / naive_rate, indexed_rate / naive_rate);
}

}  // namespace

int main(int argc, char** argv) {
  const int requests = argc > 1 ? std::atoi(argv[1]) : 10'000;
  const int naive_requests = argc > 2 ? std::atoi(argv[2]) : 100;
  const sched::Strategy az{"spread", "attribute:ecs.availability-zone"};
  const sched::Strategy memory{"binpack", "memory"};
  run("binpack(memory), spread(az) + memberOf", {memory, az}, requests, naive_requests);
  run("spread(az), binpack(memory) + memberOf", {az, memory}, requests, naive_requests);
  run("default: spread(az), spread(instanceId) + memberOf", {}, requests, naive_requests);
  return 0;
}
