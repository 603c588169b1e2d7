#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace berth {
std::string base64_encode(std::string_view in);
/// Empty optional on malformed input.
std::optional<std::string> base64_decode(std::string_view in);
}  // namespace berth
