#pragma once
// The ECS cluster query language, used by memberOf placement constraints (and later by the filter
// of ListContainerInstances). An expression is `subject operator [argument]`, combined with
// && (and), || (or), ! (not) and parentheses; && binds tighter than ||.
//   subjects:  attribute:<name>, agentConnected, agentVersion, ec2InstanceId, registeredAt,
//              runningTasksCount, task:group
//   operators: == != > >= < <= exists !exists in !in =~ !~, and ECS's word forms
//              (equals, not_equals, greater_than, greater_than_equal, less_than, less_than_equal,
//              exists, not_exists, in, not_in, matches, not_matches)
//   arguments: a bare or quoted ('..' or "..") value; lists for in/!in as [a, b] or (a, b);
//              an unquoted value containing * is a wildcard for ==, !=, in and !in.
// Each subject accepts the operators ECS documents for it. Values are checked at parse time
// (dates, numbers, true/false) and regular expressions are compiled once, here, so evaluation is
// allocation-free and cannot fail. Syntax errors name the 1-based character position.

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "scheduler/errc.h"

namespace berth::scheduler {

struct InstanceView;

/// ECS's limit on the length of a constraint expression.
inline constexpr size_t kMaxExpressionLength = 2000;

class Expression {
 public:
  ~Expression();
  Expression(Expression&&) noexcept;
  Expression& operator=(Expression&&) noexcept;

  /// Parses `text`. Errors are Errc::invalid_expression with a message such as
  /// "Invalid expression at position 12: expected operator".
  static Result<Expression> parse(std::string_view text);

  /// True when the instance satisfies the expression (see query_eval.cc for the semantics of
  /// missing attributes and of task:group).
  bool matches(const InstanceView& instance) const;

  /// True when the expression reads a per-instance subject (ec2InstanceId, registeredAt,
  /// runningTasksCount, task:group). Otherwise its value depends only on the instance's
  /// attributes, agent version and agent connection, and the placement index evaluates it once per
  /// class of identical instances rather than once per instance.
  bool per_instance() const { return per_instance_; }

  const std::string& text() const { return text_; }

  struct Node;

 private:
  Expression(std::unique_ptr<Node> root, bool per_instance, std::string text);
  std::unique_ptr<Node> root_;
  bool per_instance_ = false;
  std::string text_;
};

}  // namespace berth::scheduler
