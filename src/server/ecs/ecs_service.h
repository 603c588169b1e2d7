#pragma once
// EcsService: the Amazon ECS API (JSON 1.1) backed by a Store. Construct one, then hand json() to
// the api::Frontend.

#include <memory>

#include "api/json_service.h"
#include "server/ecs/context.h"
#include "server/ecs/placer.h"

namespace berth::server::ecs {

class EcsService {
 public:
  EcsService(store::Store& store, const Clock& clock, Random& rng, EcsConfig config);
  const api::JsonService& json() const { return json_; }
  EcsContext& context() { return ctx_; }
  /// The placement engine, shared with the controllers that start tasks.
  Placer& placer() { return placer_; }

 private:
  EcsContext ctx_;
  Placer placer_;
  api::JsonService json_;
};

}  // namespace berth::server::ecs
