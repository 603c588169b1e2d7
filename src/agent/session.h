#pragma once
// Session: the agent's link to the server. register_instance() makes the signed
// RegisterContainerInstance call (again with the saved ARN after a restart); run() holds the
// WebSocket push channel, reconnecting with jittered exponential backoff (capped at
// max_backoff), hands each desired-state message to the TaskEngine and acknowledges it, sends
// heartbeats, and delivers task state reports. Reports are kept per task (the latest one
// carries the whole task state, so older ones are redundant) until the server acknowledges them
// with a state_ack, and are sent again after every reconnect.

#include <atomic>
#include <boost/json/object.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>

#include "agent/api_client.h"
#include "agent/task_engine.h"
#include "agent/ws_client.h"

namespace berth::agent {

struct SessionConfig {
  std::string cluster{};
  boost::json::object registration{};  // RegisterContainerInstance body without the ARN
  std::chrono::milliseconds min_backoff{100};
  // Kept short so a restarted server gets its agents back within seconds.
  std::chrono::milliseconds max_backoff{5'000};
  // Well inside the server's 30 s liveness window.
  std::chrono::milliseconds heartbeat{10'000};
};

class Session {
 public:
  Session(ApiClient& api, SessionConfig config);
  void set_engine(TaskEngine* engine) { engine_ = engine; }

  /// Registers (re-registers with `arn` when not empty) and returns the instance ARN.
  Result<std::string> register_instance(const std::string& arn);
  /// Holds the channel until `stop` becomes true.
  void run(const std::atomic<bool>& stop, std::string instance_arn);
  /// Queues a task state report (thread-safe; sent at once when connected).
  void submit(const boost::json::object& report);
  size_t pending_reports();

 private:
  struct Pending {
    boost::json::object report;
    uint64_t seq = 0;  // 0 = not sent on the current connection
  };
  Result<std::unique_ptr<WebSocketClient>> connect(const std::string& arn);
  void handle(const std::string& text);
  void send_locked(const std::string& arn, Pending& p);
  std::chrono::milliseconds jitter(std::chrono::milliseconds d);

  ApiClient& api_;
  SessionConfig config_;
  TaskEngine* engine_ = nullptr;
  std::mt19937_64 rng_{std::random_device{}()};

  std::mutex mu_;
  std::shared_ptr<WebSocketClient> ws_;
  uint64_t next_seq_ = 0;
  std::map<std::string, Pending> outbox_;     // by task ARN
  std::map<uint64_t, std::string> inflight_;  // report seq -> task ARN
};

}  // namespace berth::agent
