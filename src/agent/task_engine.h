#pragma once
// TaskEngine: the agent's tasks on this host. It takes the server's full desired state, starts a
// ManagedTask (one owner thread) per new task, tells the others about desired-state changes,
// stops tasks the server no longer lists, forwards engine events to the task that owns the
// container, and keeps the checkpoint: one document with the instance ARN and every task's
// latest snapshot, rewritten atomically after each change. restore() brings the tasks back after
// a restart; containers labelled for this instance that no task claims are removed once the
// server's first desired state arrived (they belong to tasks stopped while the agent was away).

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "agent/checkpoint.h"
#include "agent/managed_task.h"

namespace berth::agent {

class TaskEngine final : public TaskHost {
 public:
  using Reporter = std::function<void(const boost::json::object&)>;

  TaskEngine(runtime::Driver& driver, Checkpoint& checkpoint, TaskConfig config, Reporter reporter);
  ~TaskEngine() override;  // abandons (does not stop) the tasks: containers outlive the agent

  /// Loads the checkpoint (instance ARN and tasks) and restarts the owner of each saved task.
  Status restore();
  /// The ARN saved by a previous run ("" if none).
  std::string saved_instance_arn();
  /// Saves the ARN (and labels new containers with it).
  Status set_instance_arn(const std::string& arn);

  /// Subscribes to engine events (die, health) for this cluster; resubscribes when the stream
  /// breaks. Optional: the tasks also poll.
  void watch_events();

  /// Applies the server's full desired state; returns the ARNs taken (to acknowledge).
  std::vector<std::string> apply(const boost::json::array& tasks);
  /// The server acknowledged a STOPPED report for `arn`.
  void stopped_acked(const std::string& arn);
  /// Joins the owners of finished tasks.
  void reap();
  size_t size();

  // TaskHost
  void report(const boost::json::object& report) override;
  void persist(const std::string& task_arn, const boost::json::object* snapshot) override;

 private:
  void save_locked();
  void remove_orphans();

  runtime::Driver& driver_;
  Checkpoint& checkpoint_;
  TaskConfig config_;
  Reporter reporter_;

  std::mutex mu_;  // guards tasks_ (the map, not the tasks)
  std::map<std::string, std::unique_ptr<ManagedTask>> tasks_;
  bool first_apply_ = true;

  std::mutex ckpt_mu_;  // guards doc_ and the file
  boost::json::object doc_;

  std::mutex events_mu_;
  std::condition_variable events_cv_;
  bool stopping_ = false;
  std::thread events_thread_;
};

}  // namespace berth::agent
