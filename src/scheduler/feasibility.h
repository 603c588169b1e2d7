#pragma once
// Per-instance checks shared by both engines: the ordered list of reasons an instance refuses a
// task (used by the naive engine for everything and by the index only to explain failures), and
// the spread bucket of an instance.

#include <optional>
#include <string_view>

#include "scheduler/scheduler.h"

namespace berth::scheduler {

/// True when the instance has every attribute the request requires (with the value, if given).
bool has_required_attributes(const InstanceView& instance, const PlacementRequest& request);

/// The first reason `instance` (ACTIVE, in its current working state, with `group_tasks` tasks of
/// the request's group) refuses one more task of `request`, or nullopt if it can take it.
std::optional<std::string_view> rejection(const InstanceView& instance,
                                          const CompiledRequest& request, int64_t group_tasks);

/// The value of `attribute` on the instance; nullopt (one shared bucket) when it is missing or
/// has no value.
std::optional<std::string_view> bucket_of(const InstanceView& instance, std::string_view attribute);

}  // namespace berth::scheduler
