#include "model/errors.h"

#include <string>

namespace berth::model {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "berth.model"; }

  // Messages lead with the AWS exception name so a logged std::error_code reads like what the
  // client saw; api/errors.cc owns the authoritative name and HTTP status mapping.
  std::string message(int code) const override {
    switch (static_cast<Errc>(code)) {
      case Errc::invalid_parameter:
        return "InvalidParameterException: a request parameter is invalid";
      case Errc::client:
        return "ClientException: the request cannot be served as sent";
      case Errc::server:
        return "ServerException: internal server error";
      case Errc::unknown_operation:
        return "UnknownOperationException: the operation is not known";
      case Errc::serialization:
        return "SerializationException: the request body could not be read";
      case Errc::cluster_not_found:
        return "ClusterNotFoundException: the cluster was not found";
      case Errc::cluster_contains_container_instances:
        return "ClusterContainsContainerInstancesException: the cluster has container instances";
      case Errc::cluster_contains_services:
        return "ClusterContainsServicesException: the cluster has active services";
      case Errc::cluster_contains_tasks:
        return "ClusterContainsTasksException: the cluster has running tasks";
      case Errc::resource_not_found:
        return "ResourceNotFoundException: the resource was not found";
      case Errc::target_not_found:
        return "TargetNotFoundException: the target was not found";
      case Errc::attribute_limit_exceeded:
        return "AttributeLimitExceededException: too many attributes on the resource";
      case Errc::limit_exceeded:
        return "LimitExceededException: a limit was exceeded";
      case Errc::resource_in_use:
        return "ResourceInUseException: the resource is in use";
      case Errc::unsupported_feature:
        return "UnsupportedFeatureException: the feature is not supported";
      case Errc::access_denied:
        return "AccessDeniedException: access denied";
      case Errc::service_not_found:
        return "ServiceNotFoundException: the service was not found";
      case Errc::service_not_active:
        return "ServiceNotActiveException: the service is not active";
      case Errc::platform_unknown:
        return "PlatformUnknownException: the platform version is not known";
      case Errc::update_in_progress:
        return "UpdateInProgressException: an update is already in progress";
    }
    return "berth.model error " + std::to_string(code);
  }
};

}  // namespace

const std::error_category& category() {
  static const Category instance;
  return instance;
}

}  // namespace berth::model
