// compile(): validates a placement request the way ECS does before any placement is attempted,
// so that bad input is an InvalidParameterException rather than a failed placement.

#include <algorithm>
#include <cctype>

#include "scheduler/scheduler.h"

namespace berth::scheduler {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Result<CompiledRequest::Step> compile_strategy(const Strategy& s, size_t position) {
  using Kind = CompiledRequest::StepKind;
  const std::string where = "Placement strategy " + std::to_string(position) + ": ";
  if (s.type == "random") return CompiledRequest::Step{Kind::random, {}};
  if (s.type == "binpack") {
    const std::string field = lower(s.field);
    if (field == "cpu") return CompiledRequest::Step{Kind::binpack_cpu, {}};
    if (field == "memory") return CompiledRequest::Step{Kind::binpack_memory, {}};
    return Error(Errc::invalid_strategy,
                 where + "binpack field must be cpu or memory, got '" + s.field + "'");
  }
  if (s.type == "spread") {
    if (s.field.empty())
      return Error(Errc::invalid_strategy,
                   where + "spread requires a field: instanceId, host or attribute:<name>");
    if (s.field == "instanceId" || s.field == "host")
      return CompiledRequest::Step{Kind::spread_instance, {}};
    constexpr std::string_view kAttribute = "attribute:";
    if (s.field.starts_with(kAttribute) && s.field.size() > kAttribute.size())
      return CompiledRequest::Step{Kind::spread_attribute, s.field.substr(kAttribute.size())};
    return Error(Errc::invalid_strategy, where +
                                             "spread field must be instanceId, host or "
                                             "attribute:<name>, got '" +
                                             s.field + "'");
  }
  return Error(Errc::invalid_strategy,
               where + "unknown type '" + s.type + "' (expected random, spread or binpack)");
}

}  // namespace

Result<CompiledRequest> compile(const PlacementRequest& request) {
  using Kind = CompiledRequest::StepKind;
  if (request.count < 1) return Error(Errc::invalid_request, "count must be at least 1");
  if (request.cpu < 0 || request.memory < 0)
    return Error(Errc::invalid_request, "cpu and memory must not be negative");
  for (const auto& a : request.required_attributes)
    if (a.name.empty()) return Error(Errc::invalid_request, "required attribute without a name");

  CompiledRequest out;
  if (request.strategies.size() > kMaxStrategies)
    return Error(Errc::invalid_strategy, "At most " + std::to_string(kMaxStrategies) +
                                             " placement strategies are allowed; got " +
                                             std::to_string(request.strategies.size()));
  bool after_random = false;
  for (size_t i = 0; i < request.strategies.size(); ++i) {
    BERTH_TRY(auto step, compile_strategy(request.strategies[i], i + 1));
    // Random picks one candidate, so strategies after it are validated but never refine anything.
    if (!after_random) out.steps_.push_back(std::move(step));
    after_random = after_random || out.steps_.back().kind == Kind::random;
  }
  if (request.strategies.empty()) {
    out.steps_.push_back({Kind::spread_attribute, "ecs.availability-zone"});
    out.steps_.push_back({Kind::spread_instance, {}});
  }

  if (request.constraints.size() > kMaxConstraints)
    return Error(Errc::invalid_constraint, "At most " + std::to_string(kMaxConstraints) +
                                               " placement constraints are allowed; got " +
                                               std::to_string(request.constraints.size()));
  for (size_t i = 0; i < request.constraints.size(); ++i) {
    const Constraint& c = request.constraints[i];
    const std::string where = "Placement constraint " + std::to_string(i + 1) + ": ";
    if (c.type == "distinctInstance") {
      if (!c.expression.empty())
        return Error(Errc::invalid_constraint,
                     where + "an expression cannot be specified for distinctInstance");
      out.rules_.push_back({});
      out.distinct_instance_ = true;
    } else if (c.type == "memberOf") {
      if (c.expression.empty())
        return Error(Errc::invalid_constraint, where + "memberOf requires an expression");
      auto expression = Expression::parse(c.expression);
      if (!expression.ok())
        return Error(Errc::invalid_constraint, where + expression.error().message);
      out.rules_.push_back({std::move(expression).value()});
    } else {
      return Error(Errc::invalid_constraint,
                   where + "unknown type '" + c.type + "' (expected memberOf or distinctInstance)");
    }
  }
  out.request_ = request;
  return out;
}

}  // namespace berth::scheduler
