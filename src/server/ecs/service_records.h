#pragma once
// Service records: services/<cluster>/<name> holds the Service shape ECS returns (deployments and
// the last 100 events included) plus an internal "_berth" member, never returned, with the
// clientToken and request of CreateService (idempotency), the last COMPLETED deployment (for
// circuit-breaker rollback) and when the last steady-state event was written. The service
// controller derives everything else from the tasks whose group is "service:NAME"; a deployment's
// tasks are those whose startedBy is its id.

#include <string>

#include "server/ecs/context.h"

namespace berth::server::ecs {

/// ECS keeps a service's latest 100 events.
inline constexpr size_t kMaxServiceEvents = 100;

/// "ecs-svc/" followed by 19 digits, as ECS deployment ids.
std::string new_deployment_id(Random& rng);

/// A new PRIMARY deployment (rolloutState IN_PROGRESS) of the service's current task definition.
json::object new_deployment(const EcsContext& ctx, const json::object& service);

/// Prepends an event (newest first) and keeps at most kMaxServiceEvents.
void add_service_event(const EcsContext& ctx, json::object& service, std::string message);

/// The Service shape for clients (internal members removed; tags only when asked).
json::object render_service(const json::object& stored, bool include_tags);

/// The service name from a name or an ARN (arn:...:service/CLUSTER/NAME or service/NAME).
Result<std::string> service_name_from_ref(const EcsContext& ctx, std::string_view ref);

}  // namespace berth::server::ecs
