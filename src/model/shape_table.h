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
#include "model/service_model.h"

namespace berth::model::detail {

inline constexpr std::uint32_t kNoShape = UINT32_MAX;

// The public ShapeType, under the name the validator has always used.
using ShapeKind = ShapeType;

struct Member {
  std::string wire_name;  // locationName if the model sets one, else the member name
  std::uint32_t shape = kNoShape;
  bool required = false;
  std::string name;        // the member's name in the model
  bool flattened = false;  // set on the member reference (the target shape may also say so)
};

struct Shape {
  std::string name;
  ShapeKind kind = ShapeKind::string;
  std::vector<Member> members;             // structure: sorted by wire_name
  std::uint32_t required_count = 0;        // structure: members with required == true
  std::vector<std::uint32_t> required;     // structure: indices into members, in model order
  std::vector<std::uint32_t> model_order;  // structure: indices into members, in model order
  std::uint32_t element = kNoShape;        // list member, or map value
  std::uint32_t key = kNoShape;            // map key
  std::string element_name;                // locationName of the list member / map value, if any
  std::string key_name;                    // locationName of the map key, if any
  bool flattened = false;                  // list/map without a wrapping element (XML protocols)
  std::string error_code;                  // error shapes: error.code, else the shape name
  int error_status = 0;                    // error shapes: error.httpStatusCode (400 if unset)
  std::vector<std::string> enum_sorted;    // string enum, sorted for binary search
  std::string enum_text;                   // the same values in model order, for messages
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
