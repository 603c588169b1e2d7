// ClusterIndex maintenance: building, classifying instances, and keeping the per-class resource
// sets and per-group counts current as tasks are placed and instances change.

#include "scheduler/cluster_index.h"

#include <algorithm>
#include <tuple>

namespace berth::scheduler {
namespace {

void normalise(InstanceView& v) {
  std::sort(v.tcp_ports_used.begin(), v.tcp_ports_used.end());
  std::sort(v.udp_ports_used.begin(), v.udp_ports_used.end());
}

// Everything a class shares, in a canonical byte string (attribute order does not matter).
std::string class_key(const InstanceView& v) {
  std::vector<const Attribute*> attrs;
  for (const auto& a : v.attributes) attrs.push_back(&a);
  std::sort(attrs.begin(), attrs.end(), [](const Attribute* a, const Attribute* b) {
    return std::tie(a->name, a->value) < std::tie(b->name, b->value);
  });
  std::string key;
  key += v.active ? 'A' : 'a';
  key += v.agent_connected ? 'C' : 'c';
  key += v.agent_version;
  for (const Attribute* a : attrs) {
    key += '\0';
    key += a->name;
    key += a->value ? '\1' : '\2';
    if (a->value) key += *a->value;
  }
  return key;
}

void add_sorted(std::vector<uint16_t>& v, const std::vector<uint16_t>& add) {
  for (uint16_t p : add) v.insert(std::upper_bound(v.begin(), v.end(), p), p);
}

void remove_sorted(std::vector<uint16_t>& v, const std::vector<uint16_t>& remove) {
  for (uint16_t p : remove) {
    auto it = std::lower_bound(v.begin(), v.end(), p);
    if (it != v.end() && *it == p) v.erase(it);
  }
}

}  // namespace

ClusterIndex::ClusterIndex(Snapshot snapshot) {
  slots_.reserve(snapshot.instances.size());
  for (auto& v : snapshot.instances) {
    normalise(v);
    slots_.push_back({std::move(v), 0});
  }
  for (uint32_t i = 0; i < slots_.size(); ++i) link(i);
}

uint32_t ClusterIndex::class_for(const InstanceView& v) {
  auto [it, inserted] =
      class_ids_.try_emplace(class_key(v), static_cast<uint32_t>(classes_.size()));
  if (inserted) {
    Class c;
    c.rep.attributes = v.attributes;
    c.rep.agent_version = v.agent_version;
    c.rep.agent_connected = v.agent_connected;
    c.rep.active = v.active;
    classes_.push_back(std::move(c));
  }
  return it->second;
}

void ClusterIndex::link(uint32_t i) {
  Slot& s = slots_[i];
  s.cls = class_for(s.view);
  Class& c = classes_[s.cls];
  c.members.insert(std::lower_bound(c.members.begin(), c.members.end(), i), i);
  c.by_cpu.insert(s.view.cpu_remaining, s.view.memory_remaining, i);
  c.by_memory.insert(s.view.memory_remaining, s.view.cpu_remaining, i);
  for (const auto& g : s.view.task_groups) ++groups_[g][i];
}

void ClusterIndex::unlink(uint32_t i) {
  Slot& s = slots_[i];
  Class& c = classes_[s.cls];
  c.members.erase(std::lower_bound(c.members.begin(), c.members.end(), i));
  c.by_cpu.erase(s.view.cpu_remaining, i);
  c.by_memory.erase(s.view.memory_remaining, i);
  for (const auto& g : s.view.task_groups) {
    GroupCounts& counts = groups_[g];
    if (--counts[i] == 0) counts.erase(i);
  }
}

void ClusterIndex::consume(uint32_t i, const PlacementRequest& r, GroupCounts& group) {
  Slot& s = slots_[i];
  Class& c = classes_[s.cls];
  const int64_t cpu = s.view.cpu_remaining, memory = s.view.memory_remaining;
  s.view.cpu_remaining -= r.cpu;
  s.view.memory_remaining -= r.memory;
  c.by_cpu.update(cpu, i, s.view.cpu_remaining, s.view.memory_remaining);
  c.by_memory.update(memory, i, s.view.memory_remaining, s.view.cpu_remaining);
  add_sorted(s.view.tcp_ports_used, r.tcp_ports);
  add_sorted(s.view.udp_ports_used, r.udp_ports);
  s.view.task_groups.push_back(r.group);
  ++s.view.running_tasks_count;
  ++group[i];
}

void ClusterIndex::release(uint32_t i, const PlacementRequest& r, GroupCounts& group) {
  Slot& s = slots_[i];
  Class& c = classes_[s.cls];
  const int64_t cpu = s.view.cpu_remaining, memory = s.view.memory_remaining;
  s.view.cpu_remaining += r.cpu;
  s.view.memory_remaining += r.memory;
  c.by_cpu.update(cpu, i, s.view.cpu_remaining, s.view.memory_remaining);
  c.by_memory.update(memory, i, s.view.memory_remaining, s.view.cpu_remaining);
  remove_sorted(s.view.tcp_ports_used, r.tcp_ports);
  remove_sorted(s.view.udp_ports_used, r.udp_ports);
  auto& groups = s.view.task_groups;
  if (auto it = std::find(groups.rbegin(), groups.rend(), r.group); it != groups.rend())
    groups.erase(std::next(it).base());
  --s.view.running_tasks_count;
  if (--group[i] == 0) group.erase(i);
}

void ClusterIndex::apply(const Plan& plan, const CompiledRequest& request) {
  GroupCounts& group = groups_[request.request().group];
  for (size_t i : plan.placements) consume(static_cast<uint32_t>(i), request.request(), group);
}

void ClusterIndex::update_instance(size_t index, InstanceView view) {
  const auto i = static_cast<uint32_t>(index);
  unlink(i);
  normalise(view);
  slots_[i].view = std::move(view);
  link(i);
}

size_t ClusterIndex::add_instance(InstanceView view) {
  normalise(view);
  slots_.push_back({std::move(view), 0});
  link(static_cast<uint32_t>(slots_.size() - 1));
  return slots_.size() - 1;
}

}  // namespace berth::scheduler
