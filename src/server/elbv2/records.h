#pragma once
// ELBv2 state in the store. The API (elbv2_service) writes load balancers, listeners, rules,
// target groups and target registrations; the LB controller reads them, drives the data plane,
// writes observed health back into the target records and deletes draining targets once their
// deregistration delay has passed. The ECS service controller registers and deregisters its
// tasks' targets through the same records (register_target / deregister_target below).
//
// Every document is the model's output shape (PascalCase members, as DescribeX returns them) plus
// an internal "_berth" object that is stripped when rendered.
//
// Keys (ids are the last path element of the ARN, 16 hex digits):
//   elb/lb/<name>                       LoadBalancer + _berth{id, address}
//   elb/tg/<name>                       TargetGroup  + _berth{id, attributes{key: value}}
//   elb/listener/<lb-id>/<listener-id>  Listener     + _berth{lb_name}
//   elb/rule/<listener-id>/<rule-id>    Rule (default rule included, IsDefault=true)
//   elb/target/<tg-id>/<target-key>     Target record (below); target-key = "<Id>!<Port>"
//
// Target record:
//   {"Id": "i-..." | "10.0.0.5", "Port": 32768, "AvailabilityZone"?: "...",
//    "state": "registered" | "draining",
//    "registeredAt": <epoch s>, "drainingSince"?: <epoch s>,
//    "owner"?: "<ECS task ARN>",              // set when an ECS service registered it
//    "health": {"State": "initial|healthy|unhealthy|draining|unavailable|unused",
//               "Reason"?: "...", "Description"?: "..."}}   // written by the LB controller
// DescribeTargetHealth reports a registered target whose target group has no listener as
// "unused" (Target.NotInUse), a draining one as "draining" (Target.DeregistrationInProgress),
// otherwise the stored health ("initial"/Elb.RegistrationInProgress until first observed).

#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include "common/result.h"
#include "store/store.h"

namespace berth::server::elbv2 {

namespace keys {
inline constexpr std::string_view kLoadBalancers = "elb/lb/";
inline constexpr std::string_view kTargetGroups = "elb/tg/";
inline constexpr std::string_view kListeners = "elb/listener/";
inline constexpr std::string_view kRules = "elb/rule/";
inline constexpr std::string_view kTargets = "elb/target/";
inline std::string load_balancer(std::string_view name) { return "elb/lb/" + std::string(name); }
inline std::string target_group(std::string_view name) { return "elb/tg/" + std::string(name); }
inline std::string listener(std::string_view lb_id, std::string_view id) {
  return "elb/listener/" + std::string(lb_id) + "/" + std::string(id);
}
inline std::string rule_prefix(std::string_view listener_id) {
  return "elb/rule/" + std::string(listener_id) + "/";
}
inline std::string rule(std::string_view listener_id, std::string_view id) {
  return rule_prefix(listener_id) + std::string(id);
}
inline std::string target_prefix(std::string_view tg_id) {
  return "elb/target/" + std::string(tg_id) + "/";
}
inline std::string target(std::string_view tg_id, std::string_view id, int64_t port) {
  return target_prefix(tg_id) + std::string(id) + "!" + std::to_string(port);
}
}  // namespace keys

/// What an ARN names. Target group ARN:
///   arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID
/// load balancer: loadbalancer/app/NAME/ID; listener: listener/app/LBNAME/LBID/ID;
/// rule: listener-rule/app/LBNAME/LBID/LISTENERID/ID.
struct ArnParts {
  std::string kind;  // "targetgroup", "loadbalancer", "listener", "listener-rule"
  std::string name;  // target group or load balancer name
  std::string lb_id;
  std::string listener_id;
  std::string id;  // the resource's own id (last element)
};
std::optional<ArnParts> parse_arn(std::string_view arn);

/// Registers (or re-registers, clearing a drain) target `id`:`port` in the target group with ARN
/// `tg_arn`, recording `owner` (a task ARN). TargetGroupNotFound if the group does not exist.
Status register_target(store::Store& store, double now, std::string_view tg_arn,
                       std::string_view id, int64_t port, std::string_view owner);
/// Starts draining the target; a no-op if it is not registered. The LB controller deletes it once
/// the group's deregistration_delay.timeout_seconds has passed.
Status deregister_target(store::Store& store, double now, std::string_view tg_arn,
                         std::string_view id, int64_t port);

}  // namespace berth::server::elbv2
