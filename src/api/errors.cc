#include "api/errors.h"

#include "api/credentials.h"
#include "api/sigv4.h"
#include "model/elbv2_errors.h"
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

// Query-protocol names of the auth failures, as STS and ELB answer them (403 except a malformed
// header). The CLI does not retry any of them.
AwsError query_auth_error(AuthErrc e) {
  switch (e) {
    case AuthErrc::missing_authentication_token:
      return {"MissingAuthenticationToken", 403};
    case AuthErrc::incomplete_signature:
      return {"IncompleteSignature", 400};
    case AuthErrc::unrecognized_client:
      return {"InvalidClientTokenId", 403};
    case AuthErrc::invalid_signature:
    case AuthErrc::signature_expired:
      return {"SignatureDoesNotMatch", 403};
  }
  return {"InternalFailure", 500};
}

// Codes from the ELBv2 model's error shapes (error.code, httpStatusCode); ValidationError,
// InvalidAction, MissingAction and NoSuchVersion are the codes every query service shares.
AwsError elb_error(model::ElbErrc e) {
  using model::ElbErrc;
  switch (e) {
    case ElbErrc::validation:
      return {"ValidationError", 400};
    case ElbErrc::load_balancer_not_found:
      return {"LoadBalancerNotFound", 400};
    case ElbErrc::target_group_not_found:
      return {"TargetGroupNotFound", 400};
    case ElbErrc::listener_not_found:
      return {"ListenerNotFound", 400};
    case ElbErrc::rule_not_found:
      return {"RuleNotFound", 400};
    case ElbErrc::duplicate_load_balancer_name:
      return {"DuplicateLoadBalancerName", 400};
    case ElbErrc::duplicate_target_group_name:
      return {"DuplicateTargetGroupName", 400};
    case ElbErrc::duplicate_listener:
      return {"DuplicateListener", 400};
    case ElbErrc::priority_in_use:
      return {"PriorityInUse", 400};
    case ElbErrc::invalid_target:
      return {"InvalidTarget", 400};
    case ElbErrc::resource_in_use:
      return {"ResourceInUse", 400};
    case ElbErrc::invalid_configuration_request:
      return {"InvalidConfigurationRequest", 400};
    case ElbErrc::too_many_targets:
      return {"TooManyTargets", 400};
    case ElbErrc::too_many_rules:
      return {"TooManyRules", 400};
    case ElbErrc::unsupported_protocol:
      return {"UnsupportedProtocol", 400};
    case ElbErrc::operation_not_permitted:
      return {"OperationNotPermitted", 400};
    case ElbErrc::target_group_association_limit:
      return {"TargetGroupAssociationLimit", 400};
    case ElbErrc::health_unavailable:
      return {"HealthUnavailable", 500};
    case ElbErrc::invalid_action:
      return {"InvalidAction", 400};
    case ElbErrc::missing_action:
      return {"MissingAction", 400};
    case ElbErrc::no_such_version:
      return {"NoSuchVersion", 400};
    case ElbErrc::too_many_tags:
      return {"TooManyTags", 400};
    case ElbErrc::duplicate_tag_keys:
      return {"DuplicateTagKeys", 400};
    case ElbErrc::too_many_listeners:
      return {"TooManyListeners", 400};
    case ElbErrc::too_many_load_balancers:
      return {"TooManyLoadBalancers", 400};
    case ElbErrc::too_many_target_groups:
      return {"TooManyTargetGroups", 400};
    case ElbErrc::too_many_actions:
      return {"TooManyActions", 400};
    case ElbErrc::too_many_certificates:
      return {"TooManyCertificates", 400};
    case ElbErrc::too_many_registrations_for_target_id:
      return {"TooManyRegistrationsForTargetId", 400};
    case ElbErrc::too_many_unique_target_groups_per_load_balancer:
      return {"TooManyUniqueTargetGroupsPerLoadBalancer", 400};
    case ElbErrc::incompatible_protocols:
      return {"IncompatibleProtocols", 400};
    case ElbErrc::invalid_load_balancer_action:
      return {"InvalidLoadBalancerAction", 400};
    case ElbErrc::invalid_scheme:
      return {"InvalidScheme", 400};
    case ElbErrc::invalid_security_group:
      return {"InvalidSecurityGroup", 400};
    case ElbErrc::invalid_subnet:
      return {"InvalidSubnet", 400};
    case ElbErrc::subnet_not_found:
      return {"SubnetNotFound", 400};
    case ElbErrc::availability_zone_not_supported:
      return {"AvailabilityZoneNotSupported", 400};
    case ElbErrc::allocation_id_not_found:
      return {"AllocationIdNotFound", 400};
    case ElbErrc::certificate_not_found:
      return {"CertificateNotFound", 400};
    case ElbErrc::ssl_policy_not_found:
      return {"SSLPolicyNotFound", 400};
    case ElbErrc::alpn_policy_not_supported:
      return {"ALPNPolicyNotFound", 400};
  }
  return {"InternalFailure", 500};
}

// Generic model errors reaching a query service (a bad form, a store failure) get the query
// protocol's shared codes; the ECS-specific rest keep their names.
AwsError query_model_error(model::Errc e) {
  using model::Errc;
  switch (e) {
    case Errc::invalid_parameter:
    case Errc::serialization:
      return {"ValidationError", 400};
    case Errc::unknown_operation:
      return {"InvalidAction", 400};
    case Errc::server:
      return {"InternalFailure", 500};
    default:
      return model_error(e);
  }
}

}  // namespace

AwsError to_aws_error(const std::error_code& code, Protocol protocol) {
  const bool query = protocol == Protocol::query;
  if (code.category() == model::category()) {
    auto e = static_cast<model::Errc>(code.value());
    return query ? query_model_error(e) : model_error(e);
  }
  if (code.category() == model::elb_category())
    return elb_error(static_cast<model::ElbErrc>(code.value()));
  if (code.category() == auth_category()) {
    auto e = static_cast<AuthErrc>(code.value());
    return query ? query_auth_error(e) : auth_error(e);
  }
  return query ? AwsError{"InternalFailure", 500} : AwsError{"ServerException", 500};
}

}  // namespace berth::api
