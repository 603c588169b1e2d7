#pragma once
// Internal to model/: the compiled form of a botocore model's shapes. ServiceModel::parse() turns
// the JSON shape map into a flat vector addressed by index, so validating a request walks plain
// structs (binary searches over sorted member names) instead of re-reading the model JSON; the
// walk allocates only when it has an error message to build.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/fwd.hpp>

#include "common/result.h"

namespace berth::model::detail {

inline constexpr std::uint32_t kNoShape = UINT32_MAX;

enum class ShapeKind : std::uint8_t {
  structure,
  list,
  map,
  string,
  integer,
  long_,
  boolean,
  double_,
  float_,
  timestamp,
  blob,
};

struct Member {
  std::string wire_name;  // locationName if the model sets one, else the member name
  std::uint32_t shape = kNoShape;
  bool required = false;
};

struct Shape {
  std::string name;
  ShapeKind kind = ShapeKind::string;
  std::vector<Member> members;           // structure: sorted by wire_name
  std::uint32_t required_count = 0;      // structure: members with required == true
  std::vector<std::uint32_t> required;   // structure: indices into members, in model order
  std::uint32_t element = kNoShape;      // list member, or map value
  std::uint32_t key = kNoShape;          // map key
  std::vector<std::string> enum_sorted;  // string enum, sorted for binary search
  std::string enum_text;                 // the same values in model order, for messages
  // Length for strings (characters), lists and maps (elements); value for numbers.
  std::optional<double> min;
  std::optional<double> max;
};

enum class Direction { input, output };

/// Validates `value` against shapes[root]. Output mode also rejects undeclared members and does
/// not enforce required ones (responses omit empty members, as AWS's do).
Status validate_shape(const std::vector<Shape>& shapes, std::uint32_t root,
                      const boost::json::value& value, Direction direction);

}  // namespace berth::model::detail
