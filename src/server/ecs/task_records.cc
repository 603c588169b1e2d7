#include "server/ecs/task_records.h"

#include <algorithm>

#include "server/ecs/task_definition_rules.h"

namespace berth::server::ecs {

namespace {

const json::object* container_override(const json::object* overrides, std::string_view name) {
  if (overrides == nullptr) return nullptr;
  const json::array* list = opt_array(*overrides, "containerOverrides");
  if (list == nullptr) return nullptr;
  for (const auto& o : *list) {
    if (o.is_object() && opt_string(o.as_object(), "name") == name) return &o.as_object();
  }
  return nullptr;
}

std::vector<uint16_t> ports_from(const json::object& o, std::string_view key) {
  std::vector<uint16_t> out;
  if (const json::array* a = opt_array(o, key)) {
    for (const auto& v : *a) {
      if (auto i = v.if_int64()) out.push_back(static_cast<uint16_t>(*i));
    }
  }
  return out;
}

}  // namespace

Result<TaskNeeds> task_needs(const json::object& td, const json::object* overrides) {
  TaskNeeds n;
  std::string mode(opt_string(td, "networkMode").value_or("bridge"));
  const json::array* containers = opt_array(td, "containerDefinitions");
  if (containers == nullptr) return Error(model::Errc::server, "task definition has no containers");
  // Container names in overrides must exist, as in ECS.
  if (overrides != nullptr) {
    if (const json::array* list = opt_array(*overrides, "containerOverrides")) {
      for (const auto& o : *list) {
        auto name = opt_string(o.as_object(), "name").value_or("");
        bool found = false;
        for (const auto& c : *containers) found |= opt_string(c.as_object(), "name") == name;
        if (!found) {
          return invalid_parameter("Override for container named " + std::string(name) +
                                   " is not a container in the TaskDefinition.");
        }
      }
    }
  }
  int64_t cpu_sum = 0, mem_sum = 0;
  for (const auto& cv : *containers) {
    const auto& c = cv.as_object();
    const json::object* o = container_override(overrides, opt_string(c, "name").value_or(""));
    int64_t cpu =
        (o && o->contains("cpu")) ? opt_int(*o, "cpu").value_or(0) : opt_int(c, "cpu").value_or(0);
    auto mem = (o && o->contains("memory")) ? opt_int(*o, "memory") : opt_int(c, "memory");
    auto res = (o && o->contains("memoryReservation")) ? opt_int(*o, "memoryReservation")
                                                       : opt_int(c, "memoryReservation");
    cpu_sum += cpu;
    mem_sum += mem ? *mem : res.value_or(0);
    if (mode == "awsvpc" || mode == "none") continue;
    if (const json::array* pm = opt_array(c, "portMappings")) {
      for (const auto& m : *pm) {
        const auto& mo = m.as_object();
        int64_t host = mode == "host" ? opt_int(mo, "containerPort").value_or(0)
                                      : opt_int(mo, "hostPort").value_or(0);
        if (host <= 0) continue;  // dynamic: the agent picks the port
        auto& list = opt_string(mo, "protocol") == "udp" ? n.udp_ports : n.tcp_ports;
        list.push_back(static_cast<uint16_t>(host));
      }
    }
  }
  n.cpu = cpu_sum;
  n.memory = mem_sum;
  auto level = [&](const char* key, auto parse, int64_t& out) -> Status {
    std::optional<std::string_view> text;
    if (overrides && overrides->contains(key))
      text = opt_string(*overrides, key);
    else
      text = opt_string(td, key);
    if (!text) return {};
    auto v = parse(*text);
    if (!v)
      return invalid_parameter(std::string("Invalid task ") + key +
                               " override: " + std::string(*text) + ".");
    out = *v;
    return {};
  };
  BERTH_CHECK(level("cpu", parse_task_cpu, n.cpu));
  BERTH_CHECK(level("memory", parse_task_memory, n.memory));
  return n;
}

json::object new_task(const EcsContext& ctx, const std::string& cluster, const std::string& task_id,
                      const json::object& td, const scheduler::InstanceView& instance,
                      const TaskNeeds& needs, const json::object& request) {
  std::string task_arn = ctx.arn("task/" + cluster + "/" + task_id);
  std::string mode(opt_string(td, "networkMode").value_or("bridge"));
  const json::object* overrides = opt_object(request, "overrides");
  json::object t;
  t["taskArn"] = task_arn;
  t["clusterArn"] = ctx.cluster_arn(cluster);
  t["taskDefinitionArn"] = td.at("taskDefinitionArn");
  t["containerInstanceArn"] = instance.arn;
  json::object ov = overrides ? *overrides : json::object{};
  if (!ov.contains("containerOverrides")) ov["containerOverrides"] = json::array();
  if (!ov.contains("inferenceAcceleratorOverrides"))
    ov["inferenceAcceleratorOverrides"] = json::array();
  t["overrides"] = std::move(ov);
  t["lastStatus"] = mode == "awsvpc" ? "PROVISIONING" : "PENDING";
  t["desiredStatus"] = "RUNNING";
  t["cpu"] = std::to_string(needs.cpu);
  t["memory"] = std::to_string(needs.memory);
  json::array containers;
  for (const auto& cv : td.at("containerDefinitions").as_array()) {
    const auto& c = cv.as_object();
    std::string name(opt_string(c, "name").value_or(""));
    json::object k;
    k["containerArn"] =
        ctx.arn("container/" + cluster + "/" + task_id + "/" + make_uuid(ctx.rng()));
    k["taskArn"] = task_arn;
    k["name"] = name;
    k["image"] = c.at("image");
    k["lastStatus"] = "PENDING";
    k["networkBindings"] = json::array();
    k["networkInterfaces"] = json::array();
    k["healthStatus"] = "UNKNOWN";
    k["cpu"] = std::to_string(opt_int(c, "cpu").value_or(0));
    if (auto m = opt_int(c, "memory")) k["memory"] = std::to_string(*m);
    if (auto m = opt_int(c, "memoryReservation")) k["memoryReservation"] = std::to_string(*m);
    containers.push_back(std::move(k));
  }
  t["containers"] = std::move(containers);
  if (auto s = opt_string(request, "startedBy")) t["startedBy"] = *s;
  t["version"] = 1;
  t["createdAt"] = ctx.now();
  std::string family(opt_string(td, "family").value_or(""));
  t["group"] = opt_string(request, "group").value_or("family:" + family);
  t["launchType"] = "EC2";
  t["healthStatus"] = "UNKNOWN";
  t["connectivity"] = "CONNECTED";
  t["connectivityAt"] = ctx.now();
  t["enableExecuteCommand"] = opt_bool(request, "enableExecuteCommand").value_or(false);
  t["attachments"] = json::array();
  for (const auto& a : instance.attributes) {
    if (a.name == "ecs.availability-zone" && a.value) t["availabilityZone"] = *a.value;
  }
  t["tags"] = request.contains("tags") ? request.at("tags") : json::array();
  json::object internal;
  internal["cpu"] = needs.cpu;
  internal["memory"] = needs.memory;
  json::array tcp, udp;
  for (auto p : needs.tcp_ports) tcp.push_back(p);
  for (auto p : needs.udp_ports) udp.push_back(p);
  internal["tcp"] = std::move(tcp);
  internal["udp"] = std::move(udp);
  // No agent has taken the task yet: until one does, StopTask can stop it directly.
  internal["acked"] = false;
  t["_berth"] = std::move(internal);
  return t;
}

bool deactivating(const json::object& stored) {
  const json::object* internal = opt_object(stored, "_berth");
  return internal && opt_object(*internal, "deactivating") &&
         opt_string(stored, "lastStatus") == "RUNNING" &&
         opt_string(stored, "desiredStatus") == "RUNNING";
}

json::object render_task(const json::object& stored, bool include_tags) {
  json::object t = stored;
  if (deactivating(stored)) {
    t["lastStatus"] = "DEACTIVATING";
    t["desiredStatus"] = "STOPPED";
    const json::object* d = opt_object(*opt_object(stored, "_berth"), "deactivating");
    t["stopCode"] = opt_string(*d, "code").value_or("ServiceSchedulerInitiated");
    if (auto r = opt_string(*d, "reason")) t["stoppedReason"] = *r;
  }
  t.erase("_berth");
  if (!include_tags) t.erase("tags");
  return t;
}

TaskNeeds needs_of_record(const json::object& task) {
  TaskNeeds n;
  const json::object* internal = opt_object(task, "_berth");
  if (internal == nullptr) return n;
  n.cpu = opt_int(*internal, "cpu").value_or(0);
  n.memory = opt_int(*internal, "memory").value_or(0);
  n.tcp_ports = ports_from(*internal, "tcp");
  n.udp_ports = ports_from(*internal, "udp");
  return n;
}

void mark_stopped(json::object& task, double now, const std::string& stop_code,
                  const std::string& reason) {
  task["lastStatus"] = "STOPPED";
  task["desiredStatus"] = "STOPPED";
  task["stopCode"] = stop_code;
  if (!reason.empty()) task["stoppedReason"] = reason;
  if (!task.contains("stoppingAt")) task["stoppingAt"] = now;
  task["executionStoppedAt"] = now;
  task["stoppedAt"] = now;
  task["version"] = opt_int(task, "version").value_or(0) + 1;
  if (auto* cs = task.if_contains("containers"); cs && cs->is_array()) {
    for (auto& c : cs->as_array()) c.as_object()["lastStatus"] = "STOPPED";
  }
}

}  // namespace berth::server::ecs
