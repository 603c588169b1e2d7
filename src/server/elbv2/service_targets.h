#pragma once
// StoreLoadBalancing: the ECS services' view of ELBv2 (server/ecs/load_balancing.h) over the
// ELBv2 records, so ECS registers and drains its tasks' targets exactly as RegisterTargets and
// DeregisterTargets would.

#include "common/clock.h"
#include "server/ecs/load_balancing.h"
#include "store/store.h"

namespace berth::server::elbv2 {

class StoreLoadBalancing final : public ecs::LoadBalancing {
 public:
  StoreLoadBalancing(store::Store& store, const Clock& clock) : store_(store), clock_(clock) {}

  Result<std::optional<ecs::TargetGroupInfo>> target_group(std::string_view arn) override;
  Result<std::map<std::string, ecs::TargetState>> targets(std::string_view tg_arn) override;
  Result<std::vector<ecs::OwnedTarget>> targets_owned_by(
      const std::set<std::string>& task_arns) override;
  std::string target_key(const ecs::TargetGroupInfo& tg,
                         const ecs::TaskEndpoint& endpoint) override;
  Status register_task(const ecs::TargetGroupInfo& tg, const ecs::TaskEndpoint& endpoint,
                       std::string_view task_arn) override;
  Status deregister(std::string_view tg_arn, std::string_view target_key) override;
  std::string targets_prefix() const override;

 private:
  store::Store& store_;
  const Clock& clock_;
};

}  // namespace berth::server::elbv2
