#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string_view>

#include <boost/json.hpp>

#include "model/errors.h"
#include "model/shape_table.h"

namespace berth::model::detail {
namespace {

namespace json = boost::json;

// Real ECS shapes nest about 8 levels deep; the cap keeps a hostile body from exhausting the stack
// once a model has recursive shapes.
constexpr std::size_t kMaxDepth = 64;
// Messages echo the offending value; the cut stops an error from reflecting a huge body back.
constexpr std::size_t kMaxEchoedValue = 100;

std::string_view json_type(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "integer";
    case json::kind::double_:
      return "number";
    case json::kind::string:
      return "string";
    case json::kind::array:
      return "array";
    case json::kind::object:
      return "object";
  }
  return "unknown";
}

std::string_view expected_type(ShapeKind k) {
  switch (k) {
    case ShapeKind::structure:
    case ShapeKind::map:
      return "object";
    case ShapeKind::list:
      return "array";
    case ShapeKind::string:
      return "string";
    case ShapeKind::integer:
    case ShapeKind::long_:
      return "integer";
    case ShapeKind::boolean:
      return "boolean";
    case ShapeKind::double_:
    case ShapeKind::float_:
      return "number";
    case ShapeKind::timestamp:
      return "number (epoch seconds), string (ISO-8601)";
    case ShapeKind::blob:
      return "string (base64)";
  }
  return "unknown";
}

std::string number_text(double d) {
  if (std::trunc(d) == d && std::fabs(d) < 1e18) return std::to_string(static_cast<long long>(d));
  std::array<char, 32> buf;
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), d);
  return std::string(buf.data(), ec == std::errc{} ? end : buf.data());
}

std::string echo(const json::value& v) {
  // Boost.JSON writes doubles as 1.5E0; people wrote 1.5.
  if (v.is_double()) return number_text(v.get_double());
  std::string s = json::serialize(v);
  if (s.size() > kMaxEchoedValue) {
    s.resize(kMaxEchoedValue);
    s += "...";
  }
  return s;
}

std::string bounds_text(const Shape& s) {
  if (s.min && s.max) return "between " + number_text(*s.min) + " and " + number_text(*s.max);
  if (s.min) return "at least " + number_text(*s.min);
  return "at most " + number_text(s.max.value_or(0));
}

bool out_of_bounds(const Shape& s, double n) {
  return (s.min && n < *s.min) || (s.max && n > *s.max);
}

// AWS counts string lengths in characters: UTF-8 bytes that do not continue a sequence.
std::size_t char_count(std::string_view s) {
  return std::count_if(s.begin(), s.end(),
                       [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; });
}

bool number_at(std::string_view s, std::size_t pos, std::size_t n, int lo, int hi) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  return v >= lo && v <= hi;
}

// The forms SDKs and people send: 2024-05-01, 2024-05-01T12:00:00Z, with optional fraction and a
// +hh:mm / +hhmm / +hh offset. No offset means UTC, as AWS reads it.
bool is_iso8601(std::string_view s) {
  if (!number_at(s, 0, 4, 0, 9999) || s.size() < 10 || s[4] != '-' || !number_at(s, 5, 2, 1, 12) ||
      s[7] != '-' || !number_at(s, 8, 2, 1, 31))
    return false;
  if (s.size() == 10) return true;
  if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !number_at(s, 11, 2, 0, 23) ||
      s.size() < 19 || s[13] != ':' || !number_at(s, 14, 2, 0, 59) || s[16] != ':' ||
      !number_at(s, 17, 2, 0, 60))
    return false;
  std::size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    std::size_t j = i + 1;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') ++j;
    if (j == i + 1) return false;
    i = j;
  }
  if (i == s.size()) return true;
  if (s[i] == 'Z' || s[i] == 'z') return i + 1 == s.size();
  if (s[i] != '+' && s[i] != '-') return false;
  std::string_view off = s.substr(i + 1);
  if (off.size() == 2) return number_at(off, 0, 2, 0, 23);
  if (off.size() == 4) return number_at(off, 0, 2, 0, 23) && number_at(off, 2, 2, 0, 59);
  return off.size() == 5 && number_at(off, 0, 2, 0, 23) && off[2] == ':' &&
         number_at(off, 3, 2, 0, 59);
}

bool is_base64(std::string_view s) {
  if (s.size() % 4 != 0) return false;
  std::size_t pad = 0;
  for (char c : s) {
    if (c == '=') {
      ++pad;
    } else if (pad > 0 || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '+' || c == '/')) {
      return false;
    }
  }
  return pad <= 2;
}

// Walks a value against a shape, keeping the member path as views on a fixed stack so that a valid
// request costs no allocation; the path becomes a string only for an error message.
class Walker {
 public:
  Walker(const std::vector<Shape>& shapes, Direction direction)
      : shapes_(shapes), direction_(direction) {}

  bool check(std::uint32_t shape_index, const json::value& v) {
    const Shape& s = shapes_[shape_index];
    switch (s.kind) {
      case ShapeKind::structure:
        return v.is_object() ? check_structure(s, v.get_object()) : type_error(s, v);
      case ShapeKind::list:
        return v.is_array() ? check_list(s, v.get_array()) : type_error(s, v);
      case ShapeKind::map:
        return v.is_object() ? check_map(s, v.get_object()) : type_error(s, v);
      case ShapeKind::string:
        return v.is_string() ? check_string(s, v.get_string(), "value") : type_error(s, v);
      case ShapeKind::integer:
      case ShapeKind::long_:
        return check_integer(s, v);
      case ShapeKind::boolean:
        return v.is_bool() || type_error(s, v);
      case ShapeKind::double_:
      case ShapeKind::float_:
        if (!v.is_number()) return type_error(s, v);
        return !out_of_bounds(s, v.to_number<double>()) || bounds_error(s, v);
      case ShapeKind::timestamp:
        if (v.is_string() && !is_iso8601(v.get_string()))
          return fail("Invalid timestamp for parameter " + path() + ", value: " + echo(v) +
                      ": expected epoch seconds or an ISO-8601 string");
        return v.is_number() || v.is_string() || type_error(s, v);
      case ShapeKind::blob:
        if (!v.is_string()) return type_error(s, v);
        return is_base64(v.get_string()) ||
               fail("Invalid base64 for parameter " + path() + ", value: " + echo(v));
    }
    return true;
  }

  Error take_error() { return std::move(error_); }

 private:
  struct Segment {
    std::string_view name;
    std::size_t index;
    bool is_index;
  };

  bool descend(Segment segment, std::uint32_t shape_index, const json::value& v) {
    if (depth_ == kMaxDepth)
      return fail("parameter " + path() + ": nested deeper than " + std::to_string(kMaxDepth) +
                  " levels");
    path_[depth_++] = segment;
    bool ok = check(shape_index, v);
    --depth_;
    return ok;
  }

  bool check_structure(const Shape& s, const json::object& obj) {
    std::uint32_t required_seen = 0;
    for (const json::key_value_pair& kv : obj) {
      auto it = std::lower_bound(s.members.begin(), s.members.end(), kv.key(),
                                 [](const Member& m, std::string_view key) {
                                   return std::string_view(m.wire_name) < key;
                                 });
      if (it == s.members.end() || it->wire_name != kv.key()) {
        if (direction_ == Direction::output) return unknown_member(s, kv.key());
        continue;  // AWS ignores members it does not know, so newer SDKs keep working.
      }
      if (kv.value().is_null()) continue;  // SDKs and hand-written JSON send null for "unset".
      if (it->required) ++required_seen;
      if (!descend({it->wire_name, 0, false}, it->shape, kv.value())) return false;
    }
    if (direction_ == Direction::input && required_seen < s.required_count) {
      for (std::uint32_t i : s.required) {
        const json::value* v = obj.if_contains(s.members[i].wire_name);
        if (v == nullptr || v->is_null()) {
          std::string p = path();
          return fail("Missing required parameter: " + p + (p.empty() ? "" : ".") +
                      s.members[i].wire_name);
        }
      }
    }
    return true;
  }

  bool check_list(const Shape& s, const json::array& arr) {
    if (out_of_bounds(s, static_cast<double>(arr.size())))
      return fail("Invalid length for parameter " + path() + ": " + std::to_string(arr.size()) +
                  " elements, must be " + bounds_text(s));
    for (std::size_t i = 0; i < arr.size(); ++i)
      if (!descend({{}, i, true}, s.element, arr[i])) return false;
    return true;
  }

  bool check_map(const Shape& s, const json::object& obj) {
    if (out_of_bounds(s, static_cast<double>(obj.size())))
      return fail("Invalid length for parameter " + path() + ": " + std::to_string(obj.size()) +
                  " entries, must be " + bounds_text(s));
    for (const json::key_value_pair& kv : obj) {
      if (s.key != kNoShape && !check_string(shapes_[s.key], kv.key(), "key")) return false;
      if (!descend({kv.key(), 0, false}, s.element, kv.value())) return false;
    }
    return true;
  }

  // `what` is "value" or "key" (map keys are checked against the map's key shape).
  bool check_string(const Shape& s, std::string_view str, std::string_view what) {
    if (!s.enum_sorted.empty() &&
        !std::binary_search(s.enum_sorted.begin(), s.enum_sorted.end(), str,
                            [](std::string_view a, std::string_view b) { return a < b; }))
      return fail("Invalid " + std::string(what) + " " + echo(json::string_view(str)) +
                  " for parameter " + path() + ": must be one of " + s.enum_text);
    if (s.min || s.max) {
      std::size_t n = char_count(str);
      if (out_of_bounds(s, static_cast<double>(n)))
        return fail("Invalid length of " + std::string(what) + " for parameter " + path() + ": " +
                    std::to_string(n) + " characters, must be " + bounds_text(s));
    }
    return true;
  }

  bool check_integer(const Shape& s, const json::value& v) {
    const bool is32 = s.kind == ShapeKind::integer;
    std::int64_t n = 0;
    if (v.is_int64()) {
      n = v.get_int64();
    } else if (v.is_uint64()) {
      return range_error(v, is32);  // Boost.JSON uses uint64 only above INT64_MAX.
    } else if (v.is_double()) {
      // A whole number written as 512.0 is an integer to a person; accept it.
      double d = v.get_double();
      if (!std::isfinite(d) || std::trunc(d) != d) return type_error(s, v);
      if (d < -0x1p63 || d >= 0x1p63) return range_error(v, is32);
      n = static_cast<std::int64_t>(d);
    } else {
      return type_error(s, v);
    }
    if (is32 && (n < std::numeric_limits<std::int32_t>::min() ||
                 n > std::numeric_limits<std::int32_t>::max()))
      return range_error(v, true);
    return !out_of_bounds(s, static_cast<double>(n)) || bounds_error(s, v);
  }

  bool type_error(const Shape& s, const json::value& v) {
    return fail("Invalid type for parameter " + path() + ", value: " + echo(v) + ", type: " +
                std::string(json_type(v)) + ", valid types: " + std::string(expected_type(s.kind)));
  }

  bool range_error(const json::value& v, bool is32) {
    return fail("parameter " + path() + ": value " + echo(v) + " is out of range for a " +
                (is32 ? "32" : "64") + "-bit integer");
  }

  bool bounds_error(const Shape& s, const json::value& v) {
    return fail("parameter " + path() + ": value " + echo(v) + " is out of range, must be " +
                bounds_text(s));
  }

  bool unknown_member(const Shape& s, std::string_view key) {
    std::string names;
    for (const Member& m : s.members) names += (names.empty() ? "" : ", ") + m.wire_name;
    std::string p = path();
    return fail("Unknown parameter in " + (p.empty() ? std::string("output") : p) + ": " +
                echo(json::string_view(key)) + ", must be one of: " + names);
  }

  std::string path() const {
    std::string out;
    for (std::size_t i = 0; i < depth_; ++i) {
      const Segment& seg = path_[i];
      if (seg.is_index) {
        out += '[' + std::to_string(seg.index) + ']';
      } else {
        if (i > 0) out += '.';
        out += seg.name;
      }
    }
    return out;
  }

  bool fail(std::string message) {
    error_ = Error{Errc::invalid_parameter, std::move(message)};
    return false;
  }

  const std::vector<Shape>& shapes_;
  Direction direction_;
  std::array<Segment, kMaxDepth> path_;
  std::size_t depth_ = 0;
  Error error_;
};

}  // namespace

Status validate_shape(const std::vector<Shape>& shapes, std::uint32_t root,
                      const json::value& value, Direction direction) {
  // A body that is not an object never reached member validation on AWS either: it is a
  // SerializationException there, so callers can map it the same way.
  if (!value.is_object())
    return Error{Errc::serialization,
                 std::string(direction == Direction::input ? "Request" : "Response") +
                     " body must be a JSON object, got " + std::string(json_type(value))};
  if (root == kNoShape) {
    if (direction == Direction::output && !value.get_object().empty())
      return Error{Errc::invalid_parameter,
                   "Unknown parameter in output: the operation declares no output members"};
    return {};
  }
  Walker walker(shapes, direction);
  if (!walker.check(root, value)) return walker.take_error();
  return {};
}

}  // namespace berth::model::detail
