#pragma once
// Task records: what a task needs from its instance (resources, static host ports) computed from
// its task definition and overrides, the Task shape ECS returns, and the resource bookkeeping on
// container instance records. Stored as tasks/<cluster>/<id> -> Task, plus an internal "_berth"
// member (never returned) holding what the task reserved so it can be given back exactly.

#include <string>
#include <vector>

#include "scheduler/scheduler.h"
#include "server/ecs/context.h"

namespace berth::server::ecs {

/// What one task of a task definition (with overrides) reserves on its container instance.
struct TaskNeeds {
  int64_t cpu = 0;
  int64_t memory = 0;
  std::vector<uint16_t> tcp_ports;
  std::vector<uint16_t> udp_ports;
};

/// Computes needs as ECS does for the EC2 launch type: task-level cpu/memory when set, else the
/// sum over containers (memory: hard limit, else reservation); overrides applied; static host
/// ports from portMappings (bridge: non-zero hostPort; host: containerPort; awsvpc: none).
Result<TaskNeeds> task_needs(const json::object& task_definition, const json::object* overrides);

/// A new task record in its first state (PROVISIONING for awsvpc, else PENDING).
json::object new_task(const EcsContext& ctx, const std::string& cluster, const std::string& task_id,
                      const json::object& task_definition, const scheduler::InstanceView& instance,
                      const TaskNeeds& needs, const json::object& request);

/// The Task shape for clients (internal members removed; tags only when asked).
json::object render_task(const json::object& stored, bool include_tags);
/// A task being drained from its load balancers before it stops (ECS's DEACTIVATING): still
/// RUNNING for its agent, shown as lastStatus DEACTIVATING, desiredStatus STOPPED.
bool deactivating(const json::object& stored);

TaskNeeds needs_of_record(const json::object& task);

/// Marks a task STOPPED now (containers too), with ECS's stop fields.
void mark_stopped(json::object& task, double now, const std::string& stop_code,
                  const std::string& reason);

}  // namespace berth::server::ecs
