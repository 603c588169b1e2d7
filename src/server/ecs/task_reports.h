#pragma once
// Task state reports from agents: the one place where a task's lastStatus moves on, containers
// get their runtime ids, exit codes, host ports and health, and a stopped task gives its
// resources back to its instance. Reached through SubmitTaskStateChange /
// SubmitContainerStateChange (as the ECS agent does) and the agent session.

#include "server/ecs/context.h"

namespace berth::server::ecs {

/// Applies a report shaped like SubmitTaskStateChange, plus Berth's extra members: stopCode,
/// healthStatus (task and per container), startedAt. Status only moves forward
/// (PROVISIONING < PENDING < ACTIVATING < RUNNING < DEACTIVATING < STOPPING < DEPROVISIONING <
/// STOPPED). Marks the task as taken by an agent.
Result<json::value> apply_task_report(EcsContext& ctx, const std::string& cluster,
                                      const json::object& report);

/// Marks tasks as taken by the instance's agent (the agent acknowledged receiving them).
Status mark_acked(EcsContext& ctx, const std::string& cluster,
                  const std::vector<std::string>& task_ids);

void register_task_report_actions(api::JsonService& service, EcsContext& ctx);

}  // namespace berth::server::ecs
