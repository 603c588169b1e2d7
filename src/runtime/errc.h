#pragma once
// The container runtime's error codes. Every Driver call reports failures as one of these, so the
// agent decides "retry" vs "give up and mark the container stopped" from the code alone
// (retriable() below), the way the ECS agent's dockerapi names its errors.

#include <system_error>

#include "common/result.h"

namespace berth::runtime {

enum class Errc {
  timeout = 1,  // the call's deadline passed; the engine may still complete the operation
  not_found,    // no such container, image or exec (HTTP 404)
  conflict,     // name in use, container in the wrong state (HTTP 409, Podman's 500 equivalents)
  bad_request,  // the engine rejected the request as invalid (HTTP 400, unknown executable)
  engine,       // the engine failed (HTTP 5xx, malformed response); may succeed if retried
  unavailable,  // could not connect to the engine socket, or the connection broke
  pull_failed,  // the registry refused or could not serve the image (errorDetail in the stream)
  cancelled,    // the caller cancelled (event subscriptions)
};

const std::error_category& category();
inline std::error_code make_error_code(Errc e) { return {static_cast<int>(e), category()}; }

/// True when repeating the same call later may succeed: the engine was unreachable, slow, or
/// failed internally. Not-found, conflicts, invalid requests and registry refusals are permanent
/// for that input. Errors from other modules are treated as permanent.
bool retriable(const Error& e);

}  // namespace berth::runtime

template <>
struct std::is_error_code_enum<berth::runtime::Errc> : std::true_type {};
