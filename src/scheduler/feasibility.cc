#include "scheduler/feasibility.h"

#include <algorithm>

namespace berth::scheduler {
namespace {

bool port_taken(const std::vector<uint16_t>& used, uint16_t port) {
  return std::find(used.begin(), used.end(), port) != used.end();
}

}  // namespace

bool has_required_attributes(const InstanceView& v, const PlacementRequest& r) {
  return std::all_of(
      r.required_attributes.begin(), r.required_attributes.end(), [&](const Attribute& want) {
        return std::any_of(v.attributes.begin(), v.attributes.end(), [&](const Attribute& have) {
          return have.name == want.name && (!want.value || have.value == want.value);
        });
      });
}

std::optional<std::string_view> rejection(const InstanceView& v, const CompiledRequest& cr,
                                          int64_t group_tasks) {
  const PlacementRequest& r = cr.request();
  if (!v.agent_connected) return kReasonAgent;
  if (!has_required_attributes(v, r)) return kReasonAttribute;
  if (v.cpu_remaining < r.cpu) return kReasonCpu;
  if (v.memory_remaining < r.memory) return kReasonMemory;
  for (uint16_t p : r.tcp_ports)
    if (port_taken(v.tcp_ports_used, p)) return kReasonPorts;
  for (uint16_t p : r.udp_ports)
    if (port_taken(v.udp_ports_used, p)) return kReasonPortsUdp;
  for (const auto& rule : cr.rules()) {
    if (rule.distinct_instance()) {
      if (group_tasks > 0) return kReasonDistinctInstance;
    } else if (!rule.member_of->matches(v)) {
      return kReasonMemberOf;
    }
  }
  return std::nullopt;
}

std::optional<std::string_view> bucket_of(const InstanceView& v, std::string_view attribute) {
  for (const auto& a : v.attributes)
    if (a.name == attribute)
      return a.value ? std::optional<std::string_view>(*a.value) : std::nullopt;
  return std::nullopt;
}

}  // namespace berth::scheduler
