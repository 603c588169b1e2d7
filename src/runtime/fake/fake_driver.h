#pragma once
// FakeDriver: an in-memory container engine for the agent's unit tests. It behaves like the
// engines DockerDriver talks to, as far as the agent can observe (status transitions, exit codes
// 137/143 for kill and stop, dynamic host ports assigned at create like Podman, name conflicts,
// events), and is scriptable where real engines fail: pull errors, a call failing (optionally
// after taking effect, like a create that timed out but happened), containers exiting after a
// fake delay, health results, exec results, stats. Every call is recorded for assertions.
//
// Deterministic: ids and ports come from counters, time is fake and moves only in advance().
// Events are delivered on each subscription's own thread, as with the real driver, in emission
// order; flush_events() waits until all emitted events were handled.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runtime/driver.h"

namespace berth::runtime {

class FakeDriver final : public Driver {
 public:
  enum class Op {
    ping,
    version,
    image_present,
    inspect_image,
    pull,
    create,
    start,
    stop,
    kill,
    remove,
    inspect,
    list,
    exec_check,
    stats,
    events
  };
  struct Call {
    Op op{};
    std::string target{};  // image, container name as given by the caller, or ""
    std::string detail{};  // signal, "grace=10", exec command joined by ' ', "force"
  };

  /// How a container named `name` behaves once created (set before or after creating it).
  struct Script {
    std::optional<std::chrono::milliseconds> exit_after{};  // after start, in fake time
    int exit_code = 0;
    bool ignores_sigterm = false;        // stop then waits out the grace period and SIGKILLs (137)
    int sigterm_exit_code = 143;         // exit code when SIGTERM ends it (128 + 15)
    std::optional<Error> start_error{};  // start fails; the container stays created
    std::deque<Result<ExecResult>> exec_results{};  // consumed in order, then exit 0
    std::optional<StatsSample> stats{};
  };

  /// Starts at a fixed fake time (2026-01-01T00:00:00Z) so timestamps are reproducible.
  FakeDriver();
  ~FakeDriver() override;

  // ---- Scripting ----
  /// Makes `image` present locally (as if pulled earlier).
  void add_image(const std::string& image);
  /// Every pull of `image` fails with `e` (e.g. Errc::pull_failed) until cleared with nullopt.
  void set_pull_error(const std::string& image, std::optional<Error> e);
  /// The next call of `op` fails with `e`. With `apply`, the operation takes effect first (a
  /// create that made the container although the caller saw a timeout).
  void fail_next(Op op, Error e, bool apply = false);
  void script(const std::string& name, Script s);
  /// The main process of a running container ends now with `exit_code`.
  Status exit_now(const std::string& id_or_name, int exit_code, bool oom_killed = false);
  /// Moves fake time forward, ending containers whose exit_after came due, in due order.
  void advance(std::chrono::milliseconds d);
  /// Sets the health the engine reports in inspect and emits a health_status event.
  Status set_health(const std::string& id_or_name, HealthStatus h);
  /// While false every call fails with Errc::unavailable (an engine restart).
  void set_available(bool available);
  /// Ends every open event stream with `e`, as when the engine restarts.
  void break_event_streams(Error e);

  // ---- Observation ----
  std::vector<Call> calls() const;
  size_t count(Op op) const;
  void clear_calls();
  /// The spec a container was created from.
  std::optional<ContainerSpec> spec(const std::string& id_or_name) const;
  /// Blocks until every event emitted so far was handed to its subscribers' handlers.
  void flush_events();
  std::chrono::system_clock::time_point now() const;

  // ---- Driver ----
  Status ping() override;
  Result<EngineVersion> version() override;
  Result<bool> image_present(const std::string& image) override;
  Result<ImageInfo> inspect_image(const std::string& image) override;
  Result<ImageInfo> pull(const std::string& image,
                         const std::optional<RegistryAuth>& auth) override;
  Result<std::string> create(const ContainerSpec& spec) override;
  Status start(const std::string& id) override;
  Status stop(const std::string& id, std::chrono::seconds grace) override;
  Status kill(const std::string& id, const std::string& signal) override;
  Status remove(const std::string& id, bool force) override;
  Result<ContainerState> inspect(const std::string& id_or_name) override;
  Result<std::vector<ContainerState>> list(const ListFilter& filter) override;
  Result<ExecResult> exec_check(const std::string& id, const std::vector<std::string>& cmd,
                                std::chrono::milliseconds timeout, size_t max_output) override;
  Result<StatsSample> stats(const std::string& id) override;
  Result<std::unique_ptr<EventSubscription>> events(const EventFilter& filter,
                                                    EventHandlers handlers) override;

  struct Subscriber;  // shared with the subscription objects (fake_driver.cc)

 private:
  struct Container {
    ContainerSpec spec{};
    ContainerState state{};
    uint64_t run = 0;  // start generation, so a stale exit_after timer does not fire
  };
  struct Timer {
    TimePoint due{};
    uint64_t seq{};
    std::string id{};
    uint64_t run{};
  };
  struct Failure {
    Error error{};
    bool apply{};
  };

  template <class F>
  auto run_call(Op op, std::string target, std::string detail, F&& body) -> decltype(body());
  std::unique_ptr<EventSubscription> subscribe_locked(const EventFilter& f, EventHandlers h);
  // Records the call and returns the scripted failure for it, if any. Requires mu_.
  std::optional<Failure> begin(Op op, std::string target, std::string detail = {});
  Container* find(const std::string& id_or_name);  // requires mu_
  Script& script_for(const std::string& name);     // requires mu_
  void exit_locked(Container& c, int code, bool oom);
  void emit(const Container& c, std::string action, std::optional<int> exit_code = {});

  mutable std::mutex mu_;
  std::vector<Call> calls_{};
  std::map<Op, std::deque<Failure>> failures_{};
  std::map<std::string, std::string> images_{};  // ref -> id
  std::map<std::string, Error> pull_errors_{};
  std::map<std::string, Script> scripts_{};        // by container name
  std::map<std::string, Container> containers_{};  // by id
  std::vector<Timer> timers_{};
  std::vector<std::shared_ptr<Subscriber>> subscribers_{};
  TimePoint now_{};
  uint64_t next_id_ = 1, next_seq_ = 1;
  uint16_t next_port_ = 32768;  // the engines' dynamic range starts here
  bool available_ = true;
};

}  // namespace berth::runtime
