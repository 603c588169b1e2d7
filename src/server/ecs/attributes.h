#pragma once
// Container-instance attributes: validation and merging shared by RegisterContainerInstance and
// PutAttributes/DeleteAttributes/ListAttributes.

#include "server/ecs/context.h"

namespace berth::server::ecs {

/// Validates name/value syntax and returns [{name, value}] (value omitted when absent).
Result<json::array> validate_attribute_list(const json::array* attributes);

/// Sets each attribute of `updates` in `attrs` by name. With `limit_custom`, fails with
/// AttributeLimitExceededException when more than 10 custom (non-"ecs.") attributes would result.
Status merge_attributes(json::array& attrs, const json::array& updates, bool limit_custom);

}  // namespace berth::server::ecs
