#pragma once
// SimFleet: N simulated container instances (SimAgent) in one process against a real server.
// Registers each instance with a signed RegisterContainerInstance (a few threads in parallel),
// then holds one WebSocket session per instance on a shared Asio pool of a few threads — no thread
// per instance or per task, so 1,000 instances cost a handful of threads and ~1,000 sockets. Each
// instance runs on its own strand (its SimAgent is touched by one coroutine at a time); a lost
// session is reopened after a jittered second, re-sending unacknowledged reports.
//
// Used by `berth sim-agents`, the services benchmark and the simulation tests.

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "agent/api_client.h"
#include "agent/sim/sim_agent.h"
#include "common/clock.h"
#include "common/result.h"

namespace berth::agent::sim {

struct FleetOptions {
  Endpoint endpoint;
  api::AccessKey key;
  std::string cluster = "default";
  size_t count = 1;
  int threads = 2;               // session I/O threads
  int register_parallelism = 8;  // concurrent RegisterContainerInstance calls
  SimOptions sim;
};

class SimFleet {
 public:
  /// `clock` drives the agents' timing (start latency, heartbeats); signatures always use the
  /// system clock, as the server checks them against its own.
  SimFleet(FleetOptions options, const Clock& clock);
  ~SimFleet();  // stop()s

  /// Registers every instance; fails on the first permanent error.
  Status register_all();
  /// Opens the sessions (returns at once; they connect in the background).
  void start();
  /// Closes every session and joins the I/O threads. Idempotent.
  void stop();

  size_t registered() const;
  size_t connected() const;
  size_t running_tasks() const;
  uint64_t reports_sent() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace berth::agent::sim
