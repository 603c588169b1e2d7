#pragma once
// ECS's validation of RegisterTaskDefinition beyond what the model's types say: names, essential
// containers, CPU and memory rules (per launch type), port mappings per network mode, dependsOn,
// health-check ranges, volumes. On success the request is normalized the way ECS returns it
// (defaults filled in) and its requiresAttributes and compatibilities are computed.

#include <boost/json/object.hpp>
#include <optional>
#include <string_view>

#include "common/result.h"

namespace berth::server::ecs {

struct NormalizedTaskDefinition {
  boost::json::object body;  // the TaskDefinition members taken from the request, normalized
  boost::json::array requires_attributes;
  boost::json::array compatibilities;
};

Result<NormalizedTaskDefinition> check_task_definition(const boost::json::object& request);

/// Parses task-level cpu ("256", "1 vCPU", "0.5 vcpu") into CPU units; nullopt if invalid.
std::optional<int64_t> parse_task_cpu(std::string_view s);
/// Parses task-level memory ("512", "1GB", "2 GB") into MiB; nullopt if invalid.
std::optional<int64_t> parse_task_memory(std::string_view s);

}  // namespace berth::server::ecs
