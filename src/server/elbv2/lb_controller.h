#pragma once
// LbController: the reconcile loop between the ELBv2 records in the store and the data plane.
// Each pass reads load balancers, listeners, rules, target groups and targets, hands the
// DataPlane the whole desired state (it applies only the difference), copies the servers'
// observed health into the target records (only when it changed), and deletes draining targets
// whose deregistration delay has passed. Like the service controller it keeps no state of its
// own, so a restarted server picks up where the last one stopped, and the proxy keeps serving
// while no controller runs.

#include <boost/json/object.hpp>
#include <chrono>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "lb/data_plane.h"
#include "server/reconcile_loop.h"
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
  // One read of the records: the data plane's desired state, plus per target key where it is
  // served (backend, server name) or the health to record without the proxy (unused groups,
  // unknown instances), and each backend's deregistration delay.
  struct Snapshot {
    lb::DesiredState desired;
    std::vector<store::KeyValue> targets;
    std::map<std::string, std::pair<std::string, std::string>> served;
    std::map<std::string, boost::json::object> forced;
    std::map<std::string, double> delay;
    std::map<std::string, double> first_verdict;  // backend -> seconds before "unhealthy"
  };
  Result<Snapshot> snapshot();

  store::Store& store_;
  const Clock& clock_;
  lb::DataPlane* data_plane_;
  ReconcileLoop loop_{"load balancer controller", [this] { return reconcile_once(); }};
};

}  // namespace berth::server::elbv2
