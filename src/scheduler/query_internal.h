#pragma once
// The parsed form of a cluster query, shared by the parser (query.cc) and the evaluator
// (query_eval.cc). Not part of the module's interface.

#include <cstdint>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/query.h"

namespace berth::scheduler {

enum class Subject {
  attribute,
  agent_connected,
  agent_version,
  ec2_instance_id,
  registered_at,
  running_tasks_count,
  task_group,
};

enum class Op { eq, ne, gt, ge, lt, le, exists, not_exists, in, not_in, matches, not_matches };

/// One argument, converted at parse time to the form its subject compares with.
struct Literal {
  std::string text;
  bool glob = false;             // unquoted and contains '*': a wildcard pattern
  std::optional<double> number;  // attribute: the text as a number, for numeric ordering
  int64_t integer = 0;           // runningTasksCount
  int64_t instant = 0;           // registeredAt: epoch seconds, or a day number if date_only
  bool date_only = false;        // registeredAt given as YYYY-MM-DD: compared by UTC day
};

struct Expression::Node {
  enum class Kind { all, any, negate, compare };
  Kind kind = Kind::compare;
  std::unique_ptr<Node> lhs, rhs;  // all/any: both; negate: lhs

  Subject subject = Subject::attribute;
  std::string attribute;  // Subject::attribute only
  Op op = Op::eq;
  std::vector<Literal> values;  // one, or the list of in / !in; none for exists / !exists
  std::optional<std::regex> regex;
};

bool evaluate(const Expression::Node& node, const InstanceView& instance);

/// '*' matches any run of characters; the whole text must match.
bool glob_match(std::string_view pattern, std::string_view text);

/// Compares dotted versions numerically component by component ("1.10.0" > "1.9"); a leading 'v'
/// is ignored and missing components count as 0.
int compare_versions(std::string_view a, std::string_view b);

/// Parses the date forms ECS documents for registeredAt: 2018-06-18T22:28:28+00:00,
/// 2018-06-18T22:28:28Z, 2018-06-18T22:28:28 (UTC) and 2018-06-18. Returns epoch seconds, or the
/// day number since 1970-01-01 for a bare date (date_only).
struct Instant {
  int64_t value = 0;
  bool date_only = false;
};
std::optional<Instant> parse_instant(std::string_view text);

std::optional<double> parse_number(std::string_view text);

}  // namespace berth::scheduler
