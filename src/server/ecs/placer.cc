#include "server/ecs/placer.h"

#include <boost/json/parse.hpp>

#include "server/ecs/task_records.h"

namespace berth::server::ecs {

namespace {

constexpr std::string_view kInstances = "instances/";
constexpr std::string_view kTasks = "tasks/";

// "instances/<cluster>/<id>" -> {cluster, id}
std::pair<std::string, std::string> split_key(std::string_view key, std::string_view prefix) {
  std::string_view rest = key.substr(prefix.size());
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return {};
  return {std::string(rest.substr(0, slash)), std::string(rest.substr(slash + 1))};
}

std::vector<uint16_t> port_set(const json::object& r) {
  std::vector<uint16_t> out;
  if (const json::array* a = opt_array(r, "stringSetValue")) {
    for (const auto& v : *a) {
      if (v.is_string()) out.push_back(static_cast<uint16_t>(std::atoi(v.as_string().c_str())));
    }
  }
  return out;
}

scheduler::InstanceView to_view(const std::string& id, const json::object& o) {
  scheduler::InstanceView v;
  v.arn = std::string(opt_string(o, "containerInstanceArn").value_or(""));
  v.id = id;
  v.ec2_instance_id = std::string(opt_string(o, "ec2InstanceId").value_or(""));
  // Registered resources here; what tasks hold is subtracted in full_view().
  if (const json::array* rem = opt_array(o, "registeredResources")) {
    for (const auto& rv : *rem) {
      const auto& r = rv.as_object();
      auto name = opt_string(r, "name").value_or("");
      if (name == "CPU") v.cpu_remaining = opt_int(r, "integerValue").value_or(0);
      if (name == "MEMORY") v.memory_remaining = opt_int(r, "integerValue").value_or(0);
      if (name == "PORTS") v.tcp_ports_used = port_set(r);
      if (name == "PORTS_UDP") v.udp_ports_used = port_set(r);
    }
  }
  if (const json::array* attrs = opt_array(o, "attributes")) {
    for (const auto& av : *attrs) {
      const auto& a = av.as_object();
      scheduler::Attribute attr;
      attr.name = std::string(opt_string(a, "name").value_or(""));
      if (auto val = opt_string(a, "value")) attr.value = std::string(*val);
      v.attributes.push_back(std::move(attr));
    }
  }
  v.agent_connected = opt_bool(o, "agentConnected").value_or(false);
  v.active = opt_string(o, "status") == "ACTIVE";
  if (auto* r = o.if_contains("registeredAt"); r && r->is_number())
    v.registered_at = r->to_number<double>();
  if (const json::object* vi = opt_object(o, "versionInfo")) {
    v.agent_version = std::string(opt_string(*vi, "agentVersion").value_or(""));
  }
  return v;
}

}  // namespace

Placer::Placer(store::Store& store) : store_(store) {
  // Watch first, then load: events at or below the load's revision are already in the load.
  watch_ = store_.watch("", [this](const std::vector<store::Event>& events, int64_t revision) {
    apply(events, revision);
  });
  for (std::string_view prefix : {kInstances, kTasks}) {
    auto r = store_.range({std::string(prefix), "", 0});
    if (!r.ok()) continue;  // an unreadable store fails every request anyway
    std::lock_guard lock(mu_);
    for (const auto& kv : r->kvs) apply_one(kv, false);
    applied_ = std::max(applied_, r->revision);
  }
}

Placer::~Placer() { watch_.reset(); }

Placer::ClusterState& Placer::state(const std::string& cluster) {
  auto& s = clusters_[cluster];
  if (!s) s = std::make_unique<ClusterState>();
  return *s;
}

void Placer::apply_one(const store::KeyValue& kv, bool deleted) {
  std::string_view key = kv.key;
  bool is_instance = key.starts_with(kInstances);
  bool is_task = key.starts_with(kTasks);
  if (!is_instance && !is_task) return;
  auto [cluster, id] = split_key(key, is_instance ? kInstances : kTasks);
  if (cluster.empty()) return;
  ClusterState& s = state(cluster);
  json::object doc;
  if (!deleted) {
    boost::system::error_code ec;
    json::value v = json::parse(kv.value, ec);
    if (ec || !v.is_object()) return;
    doc = std::move(v.as_object());
  }
  if (is_instance) {
    if (deleted) {
      // Records are never deleted today; treat it as gone for placement.
      s.instances[id].active = false;
    } else {
      s.instances[id] = to_view(id, doc);
    }
    s.revisions[id] = kv.mod_revision;
    s.dirty.insert(id);
    return;
  }
  // A task: take its old contribution away, then add the new one if it has not stopped.
  if (auto old = s.tasks.find(id); old != s.tasks.end()) {
    account(s, old->second, -1);
    s.dirty.insert(old->second.instance_id);
    s.tasks.erase(old);
  }
  if (deleted || opt_string(doc, "lastStatus") == "STOPPED") return;
  ClusterState::Task t;
  std::string arn(opt_string(doc, "containerInstanceArn").value_or(""));
  t.instance_id = arn.substr(arn.rfind('/') + 1);
  t.group = std::string(opt_string(doc, "group").value_or(""));
  TaskNeeds needs = needs_of_record(doc);
  t.cpu = needs.cpu;
  t.memory = needs.memory;
  t.tcp = std::move(needs.tcp_ports);
  t.udp = std::move(needs.udp_ports);
  auto last = opt_string(doc, "lastStatus").value_or("PENDING");
  t.pending = last == "PROVISIONING" || last == "PENDING" || last == "ACTIVATING";
  account(s, t, +1);
  s.dirty.insert(t.instance_id);
  s.tasks[id] = std::move(t);
}

void Placer::account(ClusterState& s, const ClusterState::Task& t, int sign) {
  auto& g = s.groups[t.instance_id];
  if ((g[t.group] += sign) <= 0) g.erase(t.group);
  InstanceUsage& u = s.usage[t.instance_id];
  u.cpu += sign * t.cpu;
  u.memory += sign * t.memory;
  for (auto p : t.tcp) {
    if ((u.tcp_ports[p] += sign) <= 0) u.tcp_ports.erase(p);
  }
  for (auto p : t.udp) {
    if ((u.udp_ports[p] += sign) <= 0) u.udp_ports.erase(p);
  }
  (t.pending ? u.pending : u.running) += sign;
}

void Placer::apply(const std::vector<store::Event>& events, int64_t revision) {
  std::lock_guard lock(mu_);
  if (revision <= applied_) return;  // already part of the initial load
  for (const auto& e : events) apply_one(e.kv, e.deleted);
  applied_ = revision;
  caught_up_.notify_all();
}

void Placer::wait_caught_up(int64_t revision) {
  std::unique_lock lock(mu_);
  // The watch covers every key, so each commit produces a callback and the applied revision
  // always reaches the store's.
  caught_up_.wait(lock, [&] { return applied_ >= revision; });
}

scheduler::InstanceView Placer::full_view(const ClusterState& s, const std::string& id) const {
  scheduler::InstanceView v;
  if (auto it = s.instances.find(id); it != s.instances.end()) v = it->second;
  if (auto g = s.groups.find(id); g != s.groups.end()) {
    for (const auto& [group, n] : g->second) {
      for (int i = 0; i < n; ++i) v.task_groups.push_back(group);
    }
  }
  if (auto u = s.usage.find(id); u != s.usage.end()) {
    v.cpu_remaining -= u->second.cpu;
    v.memory_remaining -= u->second.memory;
    for (const auto& [p, _] : u->second.tcp_ports) v.tcp_ports_used.push_back(p);
    for (const auto& [p, _] : u->second.udp_ports) v.udp_ports_used.push_back(p);
    // The query language's runningTasksCount counts every task the instance holds (pending and
    // running), so it means the same for tasks placed earlier in the same plan as for older ones.
    v.running_tasks_count = u->second.pending + u->second.running;
  }
  return v;
}

InstanceUsage Placer::usage(const std::string& cluster, const std::string& instance_id) {
  wait_caught_up(store_.revision());
  std::lock_guard lock(mu_);
  ClusterState& s = state(cluster);
  auto it = s.usage.find(instance_id);
  return it == s.usage.end() ? InstanceUsage{} : it->second;
}

void Placer::sync_index(ClusterState& s) {
  if (!s.index) {
    scheduler::Snapshot snap;
    for (const auto& [id, _] : s.instances) {
      s.slot_of[id] = snap.instances.size();
      s.ids.push_back(id);
      s.revisions_by_slot.push_back(s.revisions[id]);
      snap.instances.push_back(full_view(s, id));
    }
    s.index = std::make_unique<scheduler::ClusterIndex>(std::move(snap));
    s.dirty.clear();
    return;
  }
  for (const auto& id : s.dirty) {
    if (!s.instances.contains(id)) continue;  // a task on an instance we have not seen yet
    auto slot = s.slot_of.find(id);
    if (slot == s.slot_of.end()) {
      size_t index = s.index->add_instance(full_view(s, id));
      s.slot_of[id] = index;
      s.ids.push_back(id);
      s.revisions_by_slot.push_back(s.revisions[id]);
    } else {
      s.index->update_instance(slot->second, full_view(s, id));
      s.revisions_by_slot[slot->second] = s.revisions[id];
    }
  }
  s.dirty.clear();
}

std::vector<scheduler::InstanceView> Placer::instances(const std::string& cluster) {
  wait_caught_up(store_.revision());
  std::lock_guard lock(mu_);
  ClusterState& s = state(cluster);
  std::vector<scheduler::InstanceView> out;
  for (const auto& [id, _] : s.instances) out.push_back(full_view(s, id));
  return out;
}

Result<json::value> Placer::run(const std::string& cluster,
                                const std::function<Result<json::value>(PlacementView&)>& fn) {
  ClusterState* s;
  {
    std::lock_guard lock(mu_);
    s = &state(cluster);  // states are never removed
  }
  std::lock_guard placing(s->placement_mu);
  constexpr int kMaxAttempts = 16;
  for (int i = 0; i < kMaxAttempts; ++i) {
    wait_caught_up(store_.revision());
    {
      std::lock_guard lock(mu_);
      sync_index(*s);
    }
    PlacementView view{*s->index, s->ids, s->revisions_by_slot};
    Result<json::value> r = fn(view);
    if (r.ok() || r.error().code != store::Errc::conflict) return r;
  }
  return Error(model::Errc::server, "placement kept conflicting with concurrent updates; retry");
}

}  // namespace berth::server::ecs
