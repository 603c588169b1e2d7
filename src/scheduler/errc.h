#pragma once
// The scheduler's error codes. compile() and Expression::parse() return them with a message that
// the API layer passes to the caller unchanged as an InvalidParameterException.

#include <system_error>

namespace berth::scheduler {

enum class Errc {
  invalid_strategy = 1,  // unknown type, bad field, more than 5 strategies
  invalid_constraint,    // unknown type, missing/extra expression, more than 10 constraints
  invalid_request,       // count < 1, negative resources, unnamed required attribute
  invalid_expression,    // cluster query language syntax (message names the position)
};

const std::error_category& category();
inline std::error_code make_error_code(Errc e) { return {static_cast<int>(e), category()}; }

}  // namespace berth::scheduler

template <>
struct std::is_error_code_enum<berth::scheduler::Errc> : std::true_type {};
