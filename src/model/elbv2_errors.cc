#include "model/elbv2_errors.h"

#include <string>

namespace berth::model {
namespace {

class ElbCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "berth.model.elbv2"; }

  // Messages lead with the query-protocol code so a logged std::error_code reads like what the
  // client saw; api/errors.cc owns the authoritative code and HTTP status mapping.
  std::string message(int code) const override {
    switch (static_cast<ElbErrc>(code)) {
      case ElbErrc::validation:
        return "ValidationError: a request parameter is invalid";
      case ElbErrc::load_balancer_not_found:
        return "LoadBalancerNotFound: the load balancer was not found";
      case ElbErrc::target_group_not_found:
        return "TargetGroupNotFound: the target group was not found";
      case ElbErrc::listener_not_found:
        return "ListenerNotFound: the listener was not found";
      case ElbErrc::rule_not_found:
        return "RuleNotFound: the rule was not found";
      case ElbErrc::duplicate_load_balancer_name:
        return "DuplicateLoadBalancerName: a load balancer with this name exists";
      case ElbErrc::duplicate_target_group_name:
        return "DuplicateTargetGroupName: a target group with this name exists";
      case ElbErrc::duplicate_listener:
        return "DuplicateListener: a listener on this port exists";
      case ElbErrc::priority_in_use:
        return "PriorityInUse: the rule priority is in use";
      case ElbErrc::invalid_target:
        return "InvalidTarget: the target is invalid";
      case ElbErrc::resource_in_use:
        return "ResourceInUse: the resource is in use";
      case ElbErrc::invalid_configuration_request:
        return "InvalidConfigurationRequest: the requested configuration is not valid";
      case ElbErrc::too_many_targets:
        return "TooManyTargets: too many targets";
      case ElbErrc::too_many_rules:
        return "TooManyRules: too many rules";
      case ElbErrc::unsupported_protocol:
        return "UnsupportedProtocol: the protocol is not supported";
      case ElbErrc::operation_not_permitted:
        return "OperationNotPermitted: the operation is not permitted";
      case ElbErrc::target_group_association_limit:
        return "TargetGroupAssociationLimit: too many load balancers for the target group";
      case ElbErrc::health_unavailable:
        return "HealthUnavailable: target health could not be retrieved";
      case ElbErrc::invalid_action:
        return "InvalidAction: the action is not valid for this service";
      case ElbErrc::missing_action:
        return "MissingAction: the request names no Action";
      case ElbErrc::no_such_version:
        return "NoSuchVersion: the API version is not served";
      case ElbErrc::too_many_tags:
        return "TooManyTags: too many tags";
      case ElbErrc::duplicate_tag_keys:
        return "DuplicateTagKeys: a tag key is repeated";
      case ElbErrc::too_many_listeners:
        return "TooManyListeners: too many listeners";
      case ElbErrc::too_many_load_balancers:
        return "TooManyLoadBalancers: too many load balancers";
      case ElbErrc::too_many_target_groups:
        return "TooManyTargetGroups: too many target groups";
      case ElbErrc::too_many_actions:
        return "TooManyActions: too many actions";
      case ElbErrc::too_many_certificates:
        return "TooManyCertificates: too many certificates";
      case ElbErrc::too_many_registrations_for_target_id:
        return "TooManyRegistrationsForTargetId: the target is registered too many times";
      case ElbErrc::too_many_unique_target_groups_per_load_balancer:
        return "TooManyUniqueTargetGroupsPerLoadBalancer: too many target groups on the load "
               "balancer";
      case ElbErrc::incompatible_protocols:
        return "IncompatibleProtocols: the protocols are not compatible";
      case ElbErrc::invalid_load_balancer_action:
        return "InvalidLoadBalancerAction: the action is not valid";
      case ElbErrc::invalid_scheme:
        return "InvalidScheme: the scheme is not valid";
      case ElbErrc::invalid_security_group:
        return "InvalidSecurityGroup: the security group is not valid";
      case ElbErrc::invalid_subnet:
        return "InvalidSubnet: the subnet is not valid";
      case ElbErrc::subnet_not_found:
        return "SubnetNotFound: the subnet was not found";
      case ElbErrc::availability_zone_not_supported:
        return "AvailabilityZoneNotSupported: the availability zone is not supported";
      case ElbErrc::allocation_id_not_found:
        return "AllocationIdNotFound: the allocation id was not found";
      case ElbErrc::certificate_not_found:
        return "CertificateNotFound: the certificate was not found";
      case ElbErrc::ssl_policy_not_found:
        return "SSLPolicyNotFound: the SSL policy was not found";
      case ElbErrc::alpn_policy_not_supported:
        return "ALPNPolicyNotFound: the ALPN policy is not supported";
    }
    return "berth.model.elbv2 error " + std::to_string(code);
  }
};

}  // namespace

const std::error_category& elb_category() {
  static const ElbCategory instance;
  return instance;
}

}  // namespace berth::model
