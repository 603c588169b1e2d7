#pragma once
// The load-balancer data plane's error codes. The LB controller calls apply() about every second,
// so most failures only need to say whether the next pass may fix them (retriable() below) or
// whether the desired state itself is wrong and will fail the same way until it changes.

#include <system_error>

#include "common/result.h"

namespace berth::lb {

enum class Errc {
  invalid_config = 1,  // the desired state cannot be expressed (bad id, pattern, matcher)
  unavailable,         // the proxy's socket refused or broke the connection
  timeout,             // a socket exchange, start or reload did not finish in time
  rejected,            // the runtime API answered a command with an error
  start_failed,        // the proxy process could not be started
  reload_failed,       // the new configuration did not come up; the old one keeps serving
  io,                  // reading or writing a file in the run directory failed
};

const std::error_category& category();
inline std::error_code make_error_code(Errc e) { return {static_cast<int>(e), category()}; }

/// True when the next apply() may succeed with the same input: the proxy was unreachable, slow,
/// starting, or refused one runtime command. invalid_config is permanent for that input.
bool retriable(const Error& e);

}  // namespace berth::lb

template <>
struct std::is_error_code_enum<berth::lb::Errc> : std::true_type {};
