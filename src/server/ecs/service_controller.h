#pragma once
// ServiceController: the reconcile loop of REPLICA and DAEMON services. For every ACTIVE or
// DRAINING service it reads the service record and the service's tasks (group "service:NAME"; a
// deployment's tasks are those started by its id) from the store, and moves actual towards desired:
//   - replaces tasks that stopped and stops tasks whose containers report UNHEALTHY;
//   - scales out and in to desiredCount (scale-in stops PENDING tasks first, then tasks on the
//     instance holding the most of the service's tasks, so the spread is kept);
//   - rolls a new deployment out within maximumPercent (RUNNING+PENDING, stopping tasks included)
//     and minimumHealthyPercent (healthy = RUNNING, past healthCheckGracePeriodSeconds and HEALTHY
//     where containers have health checks) of desiredCount;
//   - retires drained deployments, marks the PRIMARY COMPLETED, trips the circuit breaker (and
//     rolls back to the last COMPLETED deployment), and writes ECS's events;
//   - drains a DRAINING (deleted) service and then marks it INACTIVE;
//   - moves service tasks off DRAINING container instances (PENDING ones stop at once, RUNNING
//     ones are replaced elsewhere within minimumHealthyPercent/maximumPercent; standalone tasks
//     stay) and replaces tasks whose instance lost its agent for longer than a grace period
//     (marking them STOPPED once replaced);
//   - DAEMON: one task on each ACTIVE instance meeting the placement constraints (desiredCount is
//     their number), following instances as they join, drain and leave.
// Every decision is recomputed from the store on each pass (the controller keeps no state of its
// own), so a restarted server finishes a deployment where the last one stopped.

#include <chrono>
#include <string>

#include "server/ecs/context.h"
#include "server/ecs/placer.h"
#include "server/reconcile_loop.h"

namespace berth::server::ecs {

class ServiceController {
 public:
  /// `agent_lost_grace`: how long an instance's agent may stay disconnected before its service
  /// tasks count as lost (300 s by default: longer than an agent restart or a network blip).
  ServiceController(EcsContext& ctx, Placer& placer,
                    std::chrono::seconds agent_lost_grace = std::chrono::seconds(300))
      : ctx_(ctx), placer_(placer), agent_lost_grace_(agent_lost_grace) {}
  ~ServiceController() { stop(); }

  /// One pass over every cluster's services. Errors of one service do not stop the others; the
  /// first one is returned.
  Status reconcile_once();

  /// Reconciles one service (exposed for tests).
  Status reconcile_service(const std::string& cluster, const std::string& name);

  /// Runs reconcile_once() on a thread every `period` and soon after any change under
  /// services/ or tasks/.
  void start(std::chrono::milliseconds period = std::chrono::seconds(1));
  void stop();

 private:
  EcsContext& ctx_;
  Placer& placer_;
  std::chrono::seconds agent_lost_grace_;
  ReconcileLoop loop_{"service controller", [this] { return reconcile_once(); }};
};

}  // namespace berth::server::ecs
