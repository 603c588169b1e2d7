#pragma once
// ECS domain errors. Each has one AWS exception name and HTTP status, mapped in api/errors.cc.

#include <system_error>

namespace berth::model {

enum class Errc {
  invalid_parameter = 1,  // InvalidParameterException
  client,                 // ClientException
  server,                 // ServerException (500)
  unknown_operation,      // UnknownOperationException
  serialization,          // SerializationException (body is not JSON / not an object)
  cluster_not_found,      // ClusterNotFoundException
  cluster_contains_container_instances,
  cluster_contains_services,
  cluster_contains_tasks,
  resource_not_found,  // ResourceNotFoundException
  target_not_found,    // TargetNotFoundException
  attribute_limit_exceeded,
  limit_exceeded,
  resource_in_use,
  unsupported_feature,
  access_denied,
  service_not_found,
  service_not_active,
  platform_unknown,
  update_in_progress,
};
const std::error_category& category();
inline std::error_code make_error_code(Errc e) { return {static_cast<int>(e), category()}; }

}  // namespace berth::model

template <>
struct std::is_error_code_enum<berth::model::Errc> : std::true_type {};
