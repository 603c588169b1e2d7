#include "api/errors.h"

#include "api/credentials.h"
#include "api/sigv4.h"
#include "model/errors.h"

namespace berth::api {

namespace {

AwsError model_error(model::Errc e) {
  using model::Errc;
  switch (e) {
    case Errc::invalid_parameter:
      return {"InvalidParameterException", 400};
    case Errc::client:
      return {"ClientException", 400};
    case Errc::server:
      return {"ServerException", 500};
    case Errc::unknown_operation:
      return {"UnknownOperationException", 400};
    case Errc::serialization:
      return {"SerializationException", 400};
    case Errc::cluster_not_found:
      return {"ClusterNotFoundException", 400};
    case Errc::cluster_contains_container_instances:
      return {"ClusterContainsContainerInstancesException", 400};
    case Errc::cluster_contains_services:
      return {"ClusterContainsServicesException", 400};
    case Errc::cluster_contains_tasks:
      return {"ClusterContainsTasksException", 400};
    case Errc::resource_not_found:
      return {"ResourceNotFoundException", 400};
    case Errc::target_not_found:
      return {"TargetNotFoundException", 400};
    case Errc::attribute_limit_exceeded:
      return {"AttributeLimitExceededException", 400};
    case Errc::limit_exceeded:
      return {"LimitExceededException", 400};
    case Errc::resource_in_use:
      return {"ResourceInUseException", 400};
    case Errc::unsupported_feature:
      return {"UnsupportedFeatureException", 400};
    case Errc::access_denied:
      return {"AccessDeniedException", 400};
    case Errc::service_not_found:
      return {"ServiceNotFoundException", 400};
    case Errc::service_not_active:
      return {"ServiceNotActiveException", 400};
    case Errc::platform_unknown:
      return {"PlatformUnknownException", 400};
    case Errc::update_in_progress:
      return {"UpdateInProgressException", 400};
  }
  return {"ServerException", 500};
}

AwsError auth_error(AuthErrc e) {
  // AWS JSON services answer all authentication failures with 400 (DynamoDB documents the same
  // table); the CLI only retries 5xx and throttling, so none of these is retried.
  switch (e) {
    case AuthErrc::missing_authentication_token:
      return {"MissingAuthenticationTokenException", 400};
    case AuthErrc::incomplete_signature:
      return {"IncompleteSignatureException", 400};
    case AuthErrc::unrecognized_client:
      return {"UnrecognizedClientException", 400};
    case AuthErrc::invalid_signature:
      return {"InvalidSignatureException", 400};
    case AuthErrc::signature_expired:
      return {"InvalidSignatureException", 400};
  }
  return {"ServerException", 500};
}

}  // namespace

AwsError to_aws_error(const std::error_code& code) {
  if (code.category() == model::category())
    return model_error(static_cast<model::Errc>(code.value()));
  if (code.category() == auth_category()) return auth_error(static_cast<AuthErrc>(code.value()));
  return {"ServerException", 500};
}

}  // namespace berth::api
