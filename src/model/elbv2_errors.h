#pragma once
// ELBv2 domain errors. Each has one query-protocol error code and HTTP status, mapped in
// api/errors.cc (codes from the model's error shapes, e.g. TargetGroupNotFoundException has code
// "TargetGroupNotFound").

#include <system_error>

namespace berth::model {

enum class ElbErrc {
  validation = 1,                  // ValidationError
  load_balancer_not_found,         // LoadBalancerNotFound
  target_group_not_found,          // TargetGroupNotFound
  listener_not_found,              // ListenerNotFound
  rule_not_found,                  // RuleNotFound
  duplicate_load_balancer_name,    // DuplicateLoadBalancerName
  duplicate_target_group_name,     // DuplicateTargetGroupName
  duplicate_listener,              // DuplicateListener
  priority_in_use,                 // PriorityInUse
  invalid_target,                  // InvalidTarget
  resource_in_use,                 // ResourceInUse
  invalid_configuration_request,   // InvalidConfigurationRequest
  too_many_targets,                // TooManyTargets
  too_many_rules,                  // TooManyRules
  unsupported_protocol,            // UnsupportedProtocol
  operation_not_permitted,         // OperationNotPermitted
  target_group_association_limit,  // TargetGroupAssociationLimit
  health_unavailable,              // HealthUnavailable (500)
  invalid_action,                  // InvalidAction (unknown Action=)
  // Protocol-level codes every AWS query service answers with.
  missing_action,   // MissingAction (no Action=)
  no_such_version,  // NoSuchVersion (Version= other than 2015-12-01)
  // The remaining error shapes of the model.
  too_many_tags,                                    // TooManyTags
  duplicate_tag_keys,                               // DuplicateTagKeys
  too_many_listeners,                               // TooManyListeners
  too_many_load_balancers,                          // TooManyLoadBalancers
  too_many_target_groups,                           // TooManyTargetGroups
  too_many_actions,                                 // TooManyActions
  too_many_certificates,                            // TooManyCertificates
  too_many_registrations_for_target_id,             // TooManyRegistrationsForTargetId
  too_many_unique_target_groups_per_load_balancer,  // TooManyUniqueTargetGroupsPerLoadBalancer
  incompatible_protocols,                           // IncompatibleProtocols
  invalid_load_balancer_action,                     // InvalidLoadBalancerAction
  invalid_scheme,                                   // InvalidScheme
  invalid_security_group,                           // InvalidSecurityGroup
  invalid_subnet,                                   // InvalidSubnet
  subnet_not_found,                                 // SubnetNotFound
  availability_zone_not_supported,                  // AvailabilityZoneNotSupported
  allocation_id_not_found,                          // AllocationIdNotFound
  certificate_not_found,                            // CertificateNotFound
  ssl_policy_not_found,                             // SSLPolicyNotFound
  alpn_policy_not_supported,  // ALPNPolicyNotFound (shape ALPNPolicyNotSupportedException)
};
const std::error_category& elb_category();
inline std::error_code make_error_code(ElbErrc e) { return {static_cast<int>(e), elb_category()}; }

}  // namespace berth::model

template <>
struct std::is_error_code_enum<berth::model::ElbErrc> : std::true_type {};
