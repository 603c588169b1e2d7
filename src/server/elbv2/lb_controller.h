#pragma once
// LbController: the reconcile loop between the ELBv2 records in the store and the data plane.
// Each pass reads load balancers, listeners, rules, target groups and targets, hands the
// DataPlane the whole desired state (it applies only the difference), copies the servers'
// observed health into the target records (only when it changed), and deletes draining targets
// whose deregistration delay has passed. Like the service controller it keeps no state of its
// own, so a restarted server picks up where the last one stopped, and the proxy keeps serving
// while no controller runs.

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/result.h"
#include "lb/data_plane.h"
#include "store/store.h"

namespace berth::server::elbv2 {

class LbController {
 public:
  /// `data_plane` may be null: then targets stay in their initial health and only deregistration
  /// delays are enforced.
  LbController(store::Store& store, const Clock& clock, lb::DataPlane* data_plane)
      : store_(store), clock_(clock), data_plane_(data_plane) {}
  ~LbController() { stop(); }

  Status reconcile_once();
  /// The desired data-plane state the store describes (exposed for tests).
  Result<lb::DesiredState> desired_state();

  /// Runs reconcile_once() on a thread every `period` and soon after a change under elb/.
  void start(std::chrono::milliseconds period = std::chrono::milliseconds(500));
  void stop();

 private:
  store::Store& store_;
  const Clock& clock_;
  lb::DataPlane* data_plane_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool dirty_ = false;
  std::thread thread_;
  std::unique_ptr<store::Subscription> watch_;
  std::string last_error_;
};

}  // namespace berth::server::elbv2
