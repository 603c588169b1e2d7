#pragma once
// ManagedTask: the one owner of one task on this host, as the ECS agent's managedTask. Its own
// thread is the only code that changes the task's containers or its known status; everything
// else (new desired state from the server, engine events, report acknowledgements) only posts
// to its inbox and wakes it. The loop drives the containers toward the desired status:
//
//   PENDING   pull when absent, create and start containers as their dependsOn conditions
//             allow (START, COMPLETE, SUCCESS, HEALTHY; a dependency's startTimeout bounds the
//             wait), run health checks (the agent runs them: Podman does not here);
//   RUNNING   once every container was started; an essential container's exit stops the task;
//   STOPPED   containers stopped in reverse dependency order (SIGTERM, SIGKILL after their
//             stopTimeout); reported; containers removed only once the server acknowledged the
//             STOPPED report, so their exit codes stay inspectable until the server has them.
//
// Every change is checkpointed (TaskHost::persist) before it is acted on further, so a restarted
// agent re-adopts the task from its snapshot (restore()).

#include <boost/json/object.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/task_spec.h"
#include "runtime/driver.h"

namespace berth::agent {

/// What a task needs from its engine. Called from the task's thread.
class TaskHost {
 public:
  virtual ~TaskHost() = default;
  /// Queues a task_state report for the server (coalesced per task, retried until acknowledged).
  virtual void report(const boost::json::object& report) = 0;
  /// Checkpoints the task's snapshot; nullptr forgets the task.
  virtual void persist(const std::string& task_arn, const boost::json::object* snapshot) = 0;
};

struct TaskConfig {
  std::string cluster{};
  std::string instance_arn{};
  SafetyPolicy safety{};
  /// Fallback poll of running containers, in case an engine event was lost (the event stream
  /// reconnects, but a die between two streams would otherwise go unnoticed).
  std::chrono::milliseconds poll_interval{5'000};
  int create_attempts = 3;  // retriable create failures (engine timeouts) before giving up
  /// Credentials for pulls, by registry host (runtime::registry_host of the image). The
  /// operator's, not the task's: they go to the engine only, never into a container.
  std::map<std::string, runtime::RegistryAuth> registry_auth{};
};

class ManagedTask {
 public:
  /// A task the server just assigned: `desired` is its entry of the server's "tasks" message.
  ManagedTask(runtime::Driver& driver, TaskHost& host, const TaskConfig& config,
              const boost::json::object& desired);
  /// A task from the checkpoint: containers are inspected and re-adopted, not restarted.
  static std::unique_ptr<ManagedTask> restore(runtime::Driver& driver, TaskHost& host,
                                              const TaskConfig& config,
                                              const boost::json::object& snapshot);
  ~ManagedTask();  // joins the thread (stop() first to make that quick)

  void start();  // starts the owner thread
  const std::string& arn() const { return arn_; }

  /// New desired state from the server (desiredStatus STOPPED stops the task).
  void update(const boost::json::object& desired);
  /// The server no longer lists the task: stop it.
  void stop_requested(const std::string& reason);
  /// The engine reported something about container `id` (die, health): re-check.
  void poke(const std::string& id);
  /// The server acknowledged a STOPPED report: containers may go.
  void stopped_acked();
  /// True once the task ended (reported, acknowledged, containers removed, forgotten).
  bool done();
  /// Snapshot for the checkpoint, as persisted last.
  boost::json::object snapshot();
  /// Makes the thread exit at its next wake-up without touching the containers (agent shutdown).
  void abandon();

 private:
  struct Container {
    ContainerPlan plan{};
    std::string runtime_id{};
    bool created = false, started = false, exited = false;
    std::optional<int> exit_code{};
    std::string reason{};
    std::string image_digest{};
    std::vector<runtime::PortBinding> bindings{};
    std::string health = "UNKNOWN";
    int failures = 0;
    std::chrono::steady_clock::time_point started_at{}, next_check{};
  };
  enum class Phase { starting, running, stopping, stopped, done };

  ManagedTask(runtime::Driver& driver, TaskHost& host, const TaskConfig& config);
  void run();
  void plan_containers();
  void readopt();
  void step(bool acked);  // one pass of the state machine; called on the owner thread
  bool start_ready_containers();
  Status launch(Container& c);
  void check_exits(bool all);
  void run_health_checks();
  void stop_all();
  void remove_all();
  void fail(std::string stop_code, std::string reason);
  std::string task_health() const;
  void send_report();
  void persist();
  boost::json::object snapshot_locked() const;
  std::chrono::steady_clock::time_point next_wake() const;

  runtime::Driver& driver_;
  TaskHost& host_;
  TaskConfig config_;
  std::string arn_;
  boost::json::object task_definition_, overrides_;

  // Owner-thread state (the snapshot copy below is what other threads read).
  std::vector<Container> containers_;
  Phase phase_ = Phase::starting;
  bool restored_ = false;
  std::string stop_code_, stop_reason_;
  std::optional<double> pull_started_, pull_stopped_, started_at_, stopped_at_;
  std::string reported_;  // last report sent, to skip duplicates
  std::chrono::steady_clock::time_point next_poll_{};
  std::set<std::string> poked_now_;  // container ids the engine reported on since the last step

  // Inbox, guarded by mu_. wake_ starts true: the first step runs at once.
  std::mutex mu_;
  std::condition_variable cv_;
  bool wake_ = true, desired_stop_ = false, acked_ = false, abandon_ = false, done_ = false;
  std::string desired_stop_reason_;
  std::set<std::string> poked_;
  boost::json::object snapshot_;
  std::thread thread_;
};

}  // namespace berth::agent
