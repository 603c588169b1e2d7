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
//   elb/lb/<name>                       LoadBalancer + _berth{id, address, tags}
//   elb/tg/<name>                       TargetGroup  + _berth{id, attributes{key: value}, tags}
//                                       (no LoadBalancerArns: computed from the rules)
//   elb/listener/<lb-id>/<listener-id>  Listener     + _berth{lb_name, tags}
//   elb/rule/<listener-id>/<rule-id>    Rule + _berth{tags}; the listener's default actions are
//                                       also its default rule (IsDefault=true, Priority "default")
//   elb/target/<tg-id>/<target-key>     Target record (below); target-key = "<Id>!<Port>"
//   elb/port/<port>                     {"claims": [{"listener": ARN, "address": "a.b.c.d"}]}:
//                                       the listeners holding the host port (at most one per
//                                       load balancer; several only at non-overlapping
//                                       addresses, 0.0.0.0 overlapping every address). Written
//                                       with compare-and-swap in the transaction that creates,
//                                       re-ports or deletes a listener (or its load balancer),
//                                       so two load balancers can never both take a port.
//
// Actions (DefaultActions, rule Actions) are stored normalised: exactly one action, either
//   {"Type": "forward", "TargetGroupArn"?: (only with one group), "ForwardConfig": {
//      "TargetGroups": [{"TargetGroupArn", "Weight"}], "TargetGroupStickinessConfig":
//      {"Enabled", "DurationSeconds"?}}, "Order"?}
// or {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode", "ContentType"?,
//      "MessageBody"?}, "Order"?}.
// Conditions are path-pattern / host-header only, each with both "Values" and the
// PathPatternConfig / HostHeaderConfig {"Values"} form (the same list).
//
// Target record:
//   {"Id": "i-..." | "10.0.0.5", "Port": 32768, "AvailabilityZone"?: "...",
//    "state": "registered" | "draining",
//    "registeredAt": <epoch s>, "drainingSince"?: <epoch s>,
//    "owner"?: "<ECS task ARN>",              // set when an ECS service registered it
//    "health": {"State": "initial|healthy|unhealthy|draining|unavailable|unused",
//               "Reason"?: "...", "Description"?: "..."}}   // written by the LB controller
// DescribeTargetHealth reports a draining target as "draining" (Target.DeregistrationInProgress),
// a registered target whose target group no rule forwards to as "unused" (Target.NotInUse), one
// of a group with HealthCheckEnabled=false as "unavailable" (Target.HealthCheckDisabled; the API
// refuses to disable the health checks of instance and ip groups, as AWS does), otherwise the
// stored health ("initial"/Elb.RegistrationInProgress until first observed).

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/array.hpp>
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
inline constexpr std::string_view kPorts = "elb/port/";
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
inline std::string port(int64_t port) { return "elb/port/" + std::to_string(port); }
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
/// `availability_zone` is recorded when not empty (RegisterTargets may name one for ip targets).
Status register_target(store::Store& store, double now, std::string_view tg_arn,
                       std::string_view id, int64_t port, std::string_view owner,
                       std::string_view availability_zone = {});
/// Starts draining the target; a no-op if it is not registered. The LB controller deletes it once
/// the group's deregistration_delay.timeout_seconds has passed.
Status deregister_target(store::Store& store, double now, std::string_view tg_arn,
                         std::string_view id, int64_t port);

/// The target group ARNs a stored action list (a rule's Actions, a listener's DefaultActions)
/// forwards to, in order.
std::vector<std::string> forwarded_target_groups(const boost::json::array& actions);

/// For every target group some rule forwards to (listener default rules included), the ARNs of
/// the load balancers those rules belong to. A group absent from the map receives no traffic
/// (its targets are "unused").
Result<std::map<std::string, std::set<std::string>>> target_group_load_balancers(
    store::Store& store);

/// Target group attributes with AWS's defaults for an HTTP group; the stored
/// _berth.attributes override them.
inline constexpr std::pair<std::string_view, std::string_view> kTargetGroupAttributeDefaults[] = {
    {"deregistration_delay.timeout_seconds", "300"},
    {"load_balancing.algorithm.type", "round_robin"},
    {"slow_start.duration_seconds", "0"},
    {"stickiness.enabled", "false"},
    {"stickiness.lb_cookie.duration_seconds", "86400"},
    {"stickiness.type", "lb_cookie"},
};
/// The value of attribute `key` of a stored target group document (its default if not set);
/// empty for a key that is not a supported attribute.
std::string target_group_attribute(const boost::json::object& target_group, std::string_view key);

}  // namespace berth::server::elbv2
