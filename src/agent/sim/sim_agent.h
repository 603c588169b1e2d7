#pragma once
// SimAgent: the behaviour of one simulated container instance, without any I/O. It builds the
// RegisterContainerInstance body a real agent would send (resources, availability zone, the
// capability attributes of src/agent), answers the server's desired-state messages the way the
// agent's Session does (ack every task it was given), and decides when each task "starts": after
// the configured start latency with seeded jitter it reports RUNNING (fake runtime ids and host
// ports), or — with probability failure_rate — STOPPED with an essential-container exit. A task
// whose desiredStatus turns STOPPED is reported STOPPED at once. Reports are kept until the server
// acknowledges them (state_ack) and re-sent on every reconnect, as the real agent does.
//
// Time comes from the injected Clock and randomness from (seed, instance index) only, so the same
// inputs give the same outputs: SimFleet drives many of these over the network; unit tests drive
// one directly on a ManualClock.

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"

namespace berth::agent::sim {

struct SimOptions {
  int64_t cpu = 4096;      // CPU units each instance registers
  int64_t memory = 16384;  // MiB each instance registers
  // Mean time from a task's arrival to its RUNNING (or failed STOPPED) report; each task draws
  // uniformly from [0.5, 1.5] x this, so starts do not arrive in lockstep.
  std::chrono::milliseconds start_latency{200};
  double failure_rate = 0.0;  // probability that a task exits at start instead of running
  uint64_t seed = 1;
  int az_count = 3;
  std::string region = "us-east-1";
  // Well inside the server's 30 s liveness window, as the real agent's.
  std::chrono::milliseconds heartbeat{10'000};
};

class SimAgent {
 public:
  SimAgent(const SimOptions& options, size_t index, const Clock& clock);

  /// The RegisterContainerInstance body for `cluster` (a fresh registration: no ARN).
  boost::json::object registration(const std::string& cluster) const;
  const std::string& instance_id() const { return instance_id_; }
  const std::string& availability_zone() const { return az_; }

  /// A channel was opened: returns the unacknowledged reports to send again (new seqs).
  std::vector<std::string> on_connected();
  /// Handles one server message ("tasks", "state_ack", ...); returns the messages to send.
  std::vector<std::string> handle(std::string_view text);
  /// Reports whose time has come, and a heartbeat when one is due; messages to send.
  std::vector<std::string> tick();
  /// When tick() has something to do next (the earliest start or heartbeat).
  std::chrono::system_clock::time_point next_due() const;

  size_t running() const;
  size_t pending_reports() const { return outbox_.size(); }

 private:
  enum class Phase { starting, running, stopped };
  struct Port {
    int64_t container = 0, host = 0;
    std::string protocol;
  };
  struct Container {
    std::string name, runtime_id;
    bool health_check = false;
    std::vector<Port> ports;
  };
  struct Task {
    Phase phase = Phase::starting;
    std::chrono::system_clock::time_point due{};
    bool fails = false;
    double started_at = 0;
    std::vector<Container> containers;
  };
  struct Pending {
    boost::json::object report;
    uint64_t seq = 0;
  };

  void add_task(const std::string& arn, const boost::json::object& desired);
  boost::json::object report(const std::string& arn, const Task& t, bool failed) const;
  std::string submit(const std::string& arn, boost::json::object report);
  std::string send(const std::string& arn, Pending& p);

  SimOptions options_;
  size_t index_;
  const Clock& clock_;
  std::mt19937_64 rng_;
  std::string instance_id_, az_;
  std::chrono::system_clock::time_point last_heartbeat_;
  int64_t next_host_port_ = 32768;  // the ephemeral range Docker hands out
  uint64_t next_seq_ = 0;
  std::map<std::string, Task> tasks_;         // by task ARN
  std::map<std::string, Pending> outbox_;     // by task ARN: the latest unacknowledged report
  std::map<uint64_t, std::string> inflight_;  // report seq -> task ARN
};

}  // namespace berth::agent::sim
