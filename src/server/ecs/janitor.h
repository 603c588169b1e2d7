#pragma once
// Janitor: removes what ECS forgets — STOPPED tasks stay describable for a retention period
// (an hour by default), then their records are deleted. sweep() is driven by the server's timer;
// tests drive it with a ManualClock.

#include <chrono>

#include "server/ecs/context.h"

namespace berth::server::ecs {

class Janitor {
 public:
  Janitor(EcsContext& ctx, std::chrono::seconds retention = std::chrono::hours(1))
      : ctx_(ctx), retention_(retention) {}

  /// Deletes STOPPED tasks whose stoppedAt is older than the retention. Returns how many.
  Result<size_t> sweep();

 private:
  EcsContext& ctx_;
  std::chrono::seconds retention_;
};

}  // namespace berth::server::ecs
