#pragma once
// JSON member access for stored documents and validated requests, header-only so every module
// (ECS and ELBv2 actions, records, controllers) shares one definition. The members are typed by
// the service model before actions see them, so "absent" and "not of that type" read the same.
// Modules bring the helpers in with using-declarations (server/ecs/context.h,
// server/elbv2/context.h).

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace berth::json_util {

/// `text` parsed as a JSON object; nullopt if it is not valid JSON or not an object.
inline std::optional<boost::json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

/// Member `name` if it is a string.
inline std::optional<std::string_view> opt_string(const boost::json::object& o,
                                                  std::string_view name) {
  auto* v = o.if_contains(name);
  if (v == nullptr || !v->is_string()) return std::nullopt;
  return std::string_view(v->as_string());
}

/// Member `name` if it is a string, else "" (for comparisons and defaults).
inline std::string_view string_or_empty(const boost::json::object& o, std::string_view name) {
  return opt_string(o, name).value_or(std::string_view());
}

/// Member `name` if it is a number (a double is truncated).
inline std::optional<int64_t> opt_int(const boost::json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->as_double());
  return std::nullopt;
}

/// Member `name` if it is a boolean.
inline std::optional<bool> opt_bool(const boost::json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  if (v == nullptr || !v->is_bool()) return std::nullopt;
  return v->as_bool();
}

/// Member `name` if it is an array, else null.
inline const boost::json::array* opt_array(const boost::json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  return v != nullptr && v->is_array() ? &v->as_array() : nullptr;
}

/// Member `name` if it is an object, else null.
inline const boost::json::object* opt_object(const boost::json::object& o, std::string_view name) {
  auto* v = o.if_contains(name);
  return v != nullptr && v->is_object() ? &v->as_object() : nullptr;
}

}  // namespace berth::json_util
