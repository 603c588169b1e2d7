#pragma once
// The agent's own error codes (engine and network failures keep theirs: runtime::Errc,
// ClientErrc, WebSocketErrc).

#include <system_error>

#include "common/result.h"

namespace berth::agent {

enum class AgentErrc {
  refused = 1,  // the task asks for something the safety policy forbids: permanent
  invalid,      // the task definition cannot be turned into containers: permanent
};
const std::error_category& agent_category();
inline std::error_code make_error_code(AgentErrc e) {
  return {static_cast<int>(e), agent_category()};
}

}  // namespace berth::agent

template <>
struct std::is_error_code_enum<berth::agent::AgentErrc> : std::true_type {};
