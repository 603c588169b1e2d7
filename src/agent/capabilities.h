#pragma once
// The capability attributes an agent registers. Task definitions' requiresAttributes name them
// (health checks, container ordering, log drivers, task roles), so the real agent and the
// simulator must register the same list for placements to match.

#include <string>
#include <vector>

namespace berth::agent {

inline std::vector<std::string> capability_attributes() {
  std::vector<std::string> out;
  for (int v = 17; v <= 24; ++v) {
    out.push_back("com.amazonaws.ecs.capability.docker-remote-api.1." + std::to_string(v));
  }
  for (const char* c :
       {"ecs.capability.container-health-check", "ecs.capability.container-ordering",
        "com.amazonaws.ecs.capability.logging-driver.json-file",
        "com.amazonaws.ecs.capability.logging-driver.none",
        "com.amazonaws.ecs.capability.task-iam-role"}) {
    out.emplace_back(c);
  }
  return out;
}

}  // namespace berth::agent
