#pragma once
// Shared plumbing for the ELBv2 actions: ARNs and ids, loading records by ARN, rendering (the
// stored document minus "_berth"), multi-key transactions, Marker/PageSize paging, and the
// validation shared by listeners and rules (actions, tags). Actions live one resource type per
// file and register themselves into the QueryService through register_*_actions().
//
// Concurrency: every action is an optimistic transaction (with_retries). A write that depends on
// another record without changing it "touches" that record (rewrites it unchanged) so that a
// concurrent delete or conflicting create of it fails its compare and retries: CreateListener
// touches its load balancer, CreateRule its listener, both the target groups they forward to.
// Host ports are claimed through their own records (claim_port), compared like any other.

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "api/query_service.h"
#include "common/json_util.h"
#include "model/elbv2_errors.h"
#include "server/ecs/context.h"
#include "server/elbv2/elbv2_service.h"
#include "server/elbv2/records.h"

namespace berth::server::elbv2 {

namespace json = boost::json;
using ecs::Doc;
using ecs::dump;
using ecs::load_doc;
using ecs::store_failure;
using ecs::with_retries;
// JSON member access: the helpers records.cc uses too.
using json_util::opt_array;
using json_util::opt_bool;
using json_util::opt_int;
using json_util::opt_object;
using json_util::opt_string;
using json_util::parse_object;

class ElbContext {
 public:
  ElbContext(store::Store& store, const Clock& clock, Random& rng, ElbConfig config)
      : store_(store), clock_(clock), rng_(rng), config_(std::move(config)) {}

  store::Store& store() const { return store_; }
  const ElbConfig& config() const { return config_; }
  double now() const { return epoch_seconds(clock_.now()); }
  /// A resource id: 16 lowercase hex digits, as AWS's.
  std::string new_id() const;

  /// arn:aws:elasticloadbalancing:REGION:ACCOUNT:<resource>
  std::string arn(std::string_view resource) const;
  std::string load_balancer_arn(std::string_view name, std::string_view id) const;
  std::string target_group_arn(std::string_view name, std::string_view id) const;
  std::string listener_arn(std::string_view lb_name, std::string_view lb_id,
                           std::string_view id) const;
  std::string rule_arn(std::string_view lb_name, std::string_view lb_id,
                       std::string_view listener_id, std::string_view id) const;

 private:
  store::Store& store_;
  const Clock& clock_;
  Random& rng_;
  ElbConfig config_;
};

inline Error validation(std::string message) {
  return Error(model::ElbErrc::validation, std::move(message));
}

/// `s` in single quotes, as AWS's messages quote names and ARNs.
inline std::string quoted(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  out += '\'';
  out += s;
  out += '\'';
  return out;
}

/// A record read for a compare-and-swap write.
struct Record {
  std::string key;
  json::object obj;
  int64_t mod_revision = 0;
};

/// All records under `prefix`, in key order; unparseable ones are skipped.
Result<std::vector<Record>> scan(store::Store& store, const std::string& prefix);

/// Records by ARN. find_* answer nullopt when the resource does not exist (also for a well-formed
/// ARN of another region/account or of a deleted-and-recreated resource); load_* turn that into
/// the action's NotFound error. A malformed ARN is a ValidationError either way.
Result<std::optional<Record>> find_load_balancer(const ElbContext& ctx, std::string_view arn);
Result<std::optional<Record>> find_target_group(const ElbContext& ctx, std::string_view arn);
Result<std::optional<Record>> find_listener(const ElbContext& ctx, std::string_view arn);
Result<std::optional<Record>> find_rule(const ElbContext& ctx, std::string_view arn);
Result<Record> load_load_balancer(const ElbContext& ctx, std::string_view arn);
Result<Record> load_target_group(const ElbContext& ctx, std::string_view arn);
Result<Record> load_listener(const ElbContext& ctx, std::string_view arn);
Result<Record> load_rule(const ElbContext& ctx, std::string_view arn);
/// Any taggable resource (load balancer, target group, listener, rule) by ARN.
Result<Record> load_resource(const ElbContext& ctx, std::string_view arn);

Error load_balancer_not_found();
Error target_group_not_found();
Error listener_not_found();
Error rule_not_found();

/// The stored document as the API shows it: without "_berth".
json::object render(const json::object& stored);

/// The write set of one transaction: compare-and-put, compare-and-delete, and touch.
class Writes {
 public:
  /// Writes `obj` at `key` if it is still at `expected_revision` (0: must not exist).
  void put(const std::string& key, const json::object& obj, int64_t expected_revision);
  void put(const Record& r) { put(r.key, r.obj, r.mod_revision); }
  void del(const Record& r);
  /// Rewrites `r` unchanged so that concurrent writers of it conflict.
  void touch(const Record& r) { put(r); }
  /// Commits; store::Errc::conflict (retried by with_retries) if any compare failed.
  Status commit(store::Store& store) const;

 private:
  store::Txn txn_;
  std::set<std::string, std::less<>> keys_;
};

/// Marker/PageSize paging of an already sorted list. `sort_keys[i]` orders `items[i]`; the
/// Marker is the (base64) sort key of the last item returned. Returns {list_name: page,
/// NextMarker?}.
Result<json::object> page(const json::object& in, std::vector<std::string> sort_keys,
                          json::array items, std::string_view list_name);

/// A dotted-quad IPv4 address (no leading zeros).
bool valid_ipv4(std::string_view s);

/// ELBv2 tags ([{Key, Value}], at most 50, no "aws:" keys, no duplicate keys).
Result<json::array> validate_tags(const json::array* tags);
/// Merges `add` into `tags` by Key (a later value wins).
json::array merge_tags(const json::array& tags, const json::array& add);

/// Listener default actions and rule actions, checked and normalised to what DescribeListeners /
/// DescribeRules return. `target_groups` receives every target group ARN the actions forward to.
/// Supported: one forward to one target group (TargetGroupArn, or a ForwardConfig with one
/// weighted group and stickiness disabled) or one fixed-response action.
Result<json::array> normalize_actions(const json::array& actions,
                                      std::vector<std::string>& target_groups);

/// Loads the target groups named by `arns` (TargetGroupNotFound if one is missing) and checks
/// that none is used by a load balancer other than `lb_arn` (TargetGroupAssociationLimit).
Result<std::vector<Record>> load_forward_targets(const ElbContext& ctx,
                                                 const std::vector<std::string>& arns,
                                                 std::string_view lb_arn);

/// Host ports (keys::port, see records.h): every load balancer listens on the one host, so a
/// listener claims its port at its load balancer's address in the transaction that writes the
/// listener. claim_port adds to `w` the claim of listener `listener_arn` (of the load balancer
/// with id `lb_id`, at `address`) on `port`, or fails with InvalidConfigurationRequest when a
/// listener of another load balancer holds the port at an overlapping address (the same one, or
/// either being 0.0.0.0). release_ports adds to `w` the removal of the claims of `listeners`
/// (stored listener documents). Both compare the port record, so concurrent claims conflict.
Status claim_port(const ElbContext& ctx, Writes& w, int64_t port, std::string_view listener_arn,
                  std::string_view lb_id, std::string_view address);
Status release_ports(const ElbContext& ctx, Writes& w, const std::vector<Record>& listeners);
/// A load balancer's listening address (0.0.0.0 when it has none of its own).
std::string address_of(const json::object& load_balancer);

/// Registrations; `ctx` outlives the service.
void register_load_balancer_actions(api::QueryService& s, ElbContext& ctx);
void register_target_group_actions(api::QueryService& s, ElbContext& ctx);
void register_listener_actions(api::QueryService& s, ElbContext& ctx);
void register_rule_actions(api::QueryService& s, ElbContext& ctx);
void register_target_actions(api::QueryService& s, ElbContext& ctx);
void register_tag_actions(api::QueryService& s, ElbContext& ctx);

}  // namespace berth::server::elbv2
