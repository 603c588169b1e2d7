// `berth sim-agents`: N simulated container instances in one process against a real server
// (src/agent/sim), for scale tests and benchmarks.

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <functional>
#include <thread>

#include "agent/sim/sim_fleet.h"
#include "agent_main.h"
#include "sim_main.h"

namespace berth::apps {

namespace {

struct SimFlags {
  std::string server;
  std::string cluster = "default";
  std::string credentials;
  std::string profile;  // empty: the first profile in the file
  std::string region = "us-east-1";
  size_t count = 1;
  int64_t cpu = 4096;
  int64_t memory = 16384;
  int start_latency_ms = 200;
  double failure_rate = 0.0;
  uint64_t seed = 1;
  int az_count = 3;
  int heartbeat_ms = 10'000;
  int threads = 2;
};

// The profile's key (or the first profile's) from an AWS shared-credentials file.
Result<api::AccessKey> read_key(const std::string& path, const std::string& profile) {
  std::ifstream in(path);
  if (!in) return Error(std::make_error_code(std::errc::no_such_file_or_directory), path);
  auto trim = [](std::string s) {
    s.erase(0, s.find_first_not_of(" \t\r"));
    s.erase(s.find_last_not_of(" \t\r") + 1);
    return s;
  };
  api::AccessKey key;
  bool in_section = false, seen_section = false;
  for (std::string line; std::getline(in, line);) {
    line = trim(line);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      if (in_section) break;  // the wanted section is over
      std::string name = trim(line.substr(1, line.size() - 2));
      in_section = profile.empty() ? !seen_section : name == profile;
      seen_section = true;
      if (in_section) key.profile = name;
      continue;
    }
    auto eq = line.find('=');
    if (!in_section || eq == std::string::npos) continue;
    std::string k = trim(line.substr(0, eq)), v = trim(line.substr(eq + 1));
    if (k == "aws_access_key_id") key.access_key_id = v;
    if (k == "aws_secret_access_key") key.secret_access_key = v;
  }
  if (key.access_key_id.empty()) {
    return Error(std::make_error_code(std::errc::invalid_argument), "no usable profile in " + path);
  }
  return key;
}

int run_sim(const SimFlags& f) {
  auto endpoint = agent::Endpoint::parse(f.server);
  if (!endpoint.ok()) {
    std::fprintf(stderr, "berth sim-agents: %s\n", endpoint.error().message.c_str());
    return 2;
  }
  auto key = read_key(f.credentials, f.profile);
  if (!key.ok()) {
    std::fprintf(stderr, "berth sim-agents: %s\n", key.error().message.c_str());
    return 2;
  }
  // One socket per instance: lift the soft descriptor limit to the hard one.
  struct rlimit rl {};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
  agent::sim::FleetOptions o;
  o.endpoint = *endpoint;
  o.key = *key;
  o.cluster = f.cluster;
  o.count = f.count;
  o.threads = f.threads;
  o.sim.cpu = f.cpu;
  o.sim.memory = f.memory;
  o.sim.start_latency = std::chrono::milliseconds(f.start_latency_ms);
  o.sim.failure_rate = f.failure_rate;
  o.sim.seed = f.seed;
  o.sim.az_count = f.az_count;
  o.sim.region = f.region;
  o.sim.heartbeat = std::chrono::milliseconds(f.heartbeat_ms);
  SystemClock clock;
  agent::sim::SimFleet fleet(o, clock);
  auto t0 = std::chrono::steady_clock::now();
  if (auto st = fleet.register_all(); !st.ok()) {
    std::fprintf(stderr, "berth sim-agents: register: %s\n", st.error().message.c_str());
    return 1;
  }
  fleet.start();
  auto& stop = stop_requested();
  bool announced = false;
  auto last_status = std::chrono::steady_clock::now();
  while (!stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto now = std::chrono::steady_clock::now();
    if (!announced && fleet.connected() == f.count) {
      announced = true;
      // Machine-readable: scripts wait for this line.
      std::printf("berth sim-agents: %zu instances registered and connected in %.1f s\n", f.count,
                  std::chrono::duration<double>(now - t0).count());
      std::fflush(stdout);
    }
    if (now - last_status >= std::chrono::seconds(10)) {
      last_status = now;
      std::fprintf(stderr, "berth sim-agents: connected %zu/%zu, running tasks %zu, reports %llu\n",
                   fleet.connected(), f.count, fleet.running_tasks(),
                   static_cast<unsigned long long>(fleet.reports_sent()));
    }
  }
  fleet.stop();
  return 0;
}

}  // namespace

void add_sim_command(CLI::App& app, std::function<int()>& run) {
  static SimFlags f;
  auto* cmd = app.add_subcommand(
      "sim-agents", "Simulate N container instances (no containers) against a server, for scale");
  cmd->add_option("--server", f.server, "Server endpoint, http://HOST:PORT")->required();
  cmd->add_option("--cluster", f.cluster, "Cluster to join")->capture_default_str();
  cmd->add_option("--credentials", f.credentials, "AWS shared-credentials file")->required();
  cmd->add_option("--profile", f.profile, "Profile in the credentials file (default: the first)");
  cmd->add_option("--region", f.region, "Region for signatures and AZ names")
      ->capture_default_str();
  cmd->add_option("--count", f.count, "Number of simulated instances")
      ->capture_default_str()
      ->check(CLI::Range(1, 100'000));
  cmd->add_option("--cpu", f.cpu, "CPU units per instance")->capture_default_str();
  cmd->add_option("--memory", f.memory, "MiB per instance")->capture_default_str();
  cmd->add_option("--start-latency-ms", f.start_latency_ms,
                  "Mean time to RUNNING (each task draws from 0.5x..1.5x)")
      ->capture_default_str()
      ->check(CLI::Range(0, 3'600'000));
  cmd->add_option("--failure-rate", f.failure_rate,
                  "Probability a task exits at start (EssentialContainerExited, exit code 1)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--seed", f.seed, "Seed of every random choice")->capture_default_str();
  cmd->add_option("--az-count", f.az_count, "Availability zones to spread instances over")
      ->capture_default_str()
      ->check(CLI::Range(1, 26));
  cmd->add_option("--heartbeat-ms", f.heartbeat_ms, "Heartbeat period of each session")
      ->capture_default_str()
      ->check(CLI::Range(100, 600'000));
  cmd->add_option("--threads", f.threads, "I/O threads for all sessions")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->callback([&run] {
    run = [] {
      install_stop_handlers();
      return run_sim(f);
    };
  });
}

}  // namespace berth::apps
