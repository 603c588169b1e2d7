// RunTask (the scheduler chooses instances) and StartTask (the caller names them). Both commit
// the new tasks and the instances' reduced remaining resources in one transaction through the
// Placer, which serializes placements per cluster.

#include <map>
#include <set>

#include "server/ecs/placer.h"
#include "server/ecs/task_records.h"

namespace berth::server::ecs {

namespace {

// Everything about a task launch that does not depend on where it goes.
struct Launch {
  std::string cluster;
  json::object task_definition;
  TaskNeeds needs;
  scheduler::PlacementRequest request;
  json::object input;  // the request, with validated tags
};

Result<Launch> prepare(EcsContext& ctx, const json::object& in, int count) {
  Launch l;
  BERTH_TRY(l.cluster, cluster_name_from(ctx, in));
  BERTH_TRY(Doc cluster_doc, load_active_cluster(ctx, l.cluster));
  (void)cluster_doc;
  if (auto lt = opt_string(in, "launchType"); lt && *lt == "FARGATE") {
    return invalid_parameter(
        "Berth runs tasks on your container instances: launchType FARGATE is not available; use "
        "EC2 or EXTERNAL.");
  }
  if (auto* cps = opt_array(in, "capacityProviderStrategy"); cps && !cps->empty()) {
    return invalid_parameter(
        "capacityProviderStrategy is not supported; omit it to use the cluster's container "
        "instances.");
  }
  BERTH_TRY(auto td, find_task_definition(ctx, opt_string(in, "taskDefinition").value_or("")));
  if (!td)
    return client_error("Unable to find task definition '" +
                        std::string(opt_string(in, "taskDefinition").value_or("")) + "'.");
  if (opt_string(*td, "status") != "ACTIVE") return client_error("TaskDefinition is inactive");
  if (const json::array* rc = opt_array(*td, "requiresCompatibilities"); rc && !rc->empty()) {
    bool ec2 = false;
    for (const auto& c : *rc) ec2 |= c.as_string() == "EC2" || c.as_string() == "EXTERNAL";
    if (!ec2) return client_error("Task definition does not support launch_type EC2.");
  }
  l.task_definition = std::move(*td);
  BERTH_TRY(l.needs, task_needs(l.task_definition, opt_object(in, "overrides")));
  auto started_by = opt_string(in, "startedBy");
  if (started_by && started_by->size() > 128)
    return invalid_parameter("startedBy can be at most 128 characters.");
  auto group = opt_string(in, "group");
  if (group && (group->empty() || group->size() > 255))
    return invalid_parameter("group must be 1 to 255 characters.");
  BERTH_TRY(json::array tags, validate_tags(opt_array(in, "tags")));
  l.input = in;
  l.input["tags"] = std::move(tags);

  auto& r = l.request;
  r.count = count;
  r.cpu = l.needs.cpu;
  r.memory = l.needs.memory;
  r.tcp_ports = l.needs.tcp_ports;
  r.udp_ports = l.needs.udp_ports;
  r.group = group ? std::string(*group)
                  : "family:" + std::string(opt_string(l.task_definition, "family").value_or(""));
  auto add_constraints = [&](const json::array* list) {
    if (list == nullptr) return;
    for (const auto& c : *list) {
      const auto& o = c.as_object();
      r.constraints.push_back({std::string(opt_string(o, "type").value_or("")),
                               std::string(opt_string(o, "expression").value_or(""))});
    }
  };
  add_constraints(opt_array(l.task_definition, "placementConstraints"));
  add_constraints(opt_array(in, "placementConstraints"));
  if (const json::array* ss = opt_array(in, "placementStrategy")) {
    for (const auto& s : *ss) {
      const auto& o = s.as_object();
      r.strategies.push_back({std::string(opt_string(o, "type").value_or("")),
                              std::string(opt_string(o, "field").value_or(""))});
    }
  }
  if (const json::array* ra = opt_array(l.task_definition, "requiresAttributes")) {
    for (const auto& a : *ra) {
      const auto& o = a.as_object();
      scheduler::Attribute attr{std::string(opt_string(o, "name").value_or("")), std::nullopt};
      if (auto v = opt_string(o, "value")) attr.value = std::string(*v);
      r.required_attributes.push_back(std::move(attr));
    }
  }
  return l;
}

// Commits `slots` (one index slot per task) as new tasks; returns the RunTask/StartTask response.
// Only task records are written: what an instance has left is derived from its tasks, so
// placements never rewrite instance records. Each chosen instance's record must still be at the
// revision the plan saw (a drain or attribute change in between turns into a retry).
Result<json::value> commit_tasks(EcsContext& ctx, const Launch& l, PlacementView& view,
                                 const std::vector<size_t>& slots, json::array failures) {
  store::Txn txn;
  json::array tasks;
  std::set<size_t> compared;
  for (size_t slot : slots) {
    const scheduler::InstanceView& instance = view.index.instance(slot);
    if (compared.insert(slot).second) {
      txn.compares.push_back({keys::instance(l.cluster, view.ids[slot]), view.revisions[slot]});
    }
    std::string id = make_uuid(ctx.rng());
    std::erase(id, '-');
    json::object task = new_task(ctx, l.cluster, id, l.task_definition, instance, l.needs, l.input);
    std::string key = keys::task_prefix(l.cluster) + id;
    txn.compares.push_back({key, 0});
    txn.ops.push_back(store::Op::put(key, dump(task)));
    tasks.push_back(render_task(task, true));
  }
  if (!txn.ops.empty()) {
    auto rev = ctx.store().commit(txn);
    if (!rev.ok()) return rev.error();
  }
  return json::object{{"tasks", std::move(tasks)}, {"failures", std::move(failures)}};
}

bool any_instance(const scheduler::ClusterIndex& index) {
  for (size_t i = 0; i < index.size(); ++i) {
    if (index.instance(i).active) return true;
  }
  return false;
}

Result<json::value> run_task(EcsContext& ctx, Placer& placer, const json::object& in) {
  int64_t count = opt_int(in, "count").value_or(1);
  if (count < 1 || count > 10) return invalid_parameter("count must be between 1 and 10.");
  BERTH_TRY(Launch l, prepare(ctx, in, static_cast<int>(count)));
  auto compiled = scheduler::compile(l.request);
  if (!compiled.ok()) return invalid_parameter(compiled.error().message);
  uint64_t seed = ctx.rng().next();
  return placer.run(l.cluster, [&](PlacementView& view) -> Result<json::value> {
    if (!any_instance(view.index)) {
      return invalid_parameter("No Container Instances were found in your cluster.");
    }
    scheduler::Plan plan = view.index.place(*compiled, seed);
    json::array failures;
    for (const auto& f : plan.failures)
      failures.push_back(json::object{{"arn", f.arn}, {"reason", f.reason}});
    return commit_tasks(ctx, l, view, plan.placements, std::move(failures));
  });
}

// Places one task of `l` on each named instance (no ranking; resources and constraints still
// apply); instances that are missing, not ACTIVE or refuse the task become failures.
Result<json::value> place_on(EcsContext& ctx, Placer& placer, Launch& l,
                             const std::vector<std::string>& refs) {
  l.request.strategies = {{"random", ""}};
  auto compiled = scheduler::compile(l.request);
  if (!compiled.ok()) return invalid_parameter(compiled.error().message);
  return placer.run(l.cluster, [&](PlacementView& view) -> Result<json::value> {
    std::vector<size_t> slots;
    json::array failures;
    std::map<size_t, scheduler::InstanceView> working;  // consumed as tasks are added
    for (const auto& r : refs) {
      auto id = container_instance_id_from(ctx, l.cluster, r);
      size_t slot = view.ids.size();
      if (id.ok()) {
        for (size_t i = 0; i < view.ids.size(); ++i) {
          if (view.ids[i] == *id) slot = i;
        }
      }
      if (slot == view.ids.size() || !view.index.instance(slot).active) {
        failures.push_back(json::object{
            {"arn", r.starts_with("arn:") ? r : ctx.container_instance_arn(l.cluster, r)},
            {"reason", "MISSING"}});
        continue;
      }
      auto [it, fresh] = working.try_emplace(slot, view.index.instance(slot));
      scheduler::Snapshot one{{it->second}};
      scheduler::Plan plan = scheduler::place(one, *compiled, 0);
      if (plan.placements.empty()) {
        for (const auto& f : plan.failures)
          failures.push_back(json::object{{"arn", f.arn}, {"reason", f.reason}});
        continue;
      }
      auto& v = it->second;
      v.cpu_remaining -= l.needs.cpu;
      v.memory_remaining -= l.needs.memory;
      v.tcp_ports_used.insert(v.tcp_ports_used.end(), l.needs.tcp_ports.begin(),
                              l.needs.tcp_ports.end());
      v.udp_ports_used.insert(v.udp_ports_used.end(), l.needs.udp_ports.begin(),
                              l.needs.udp_ports.end());
      v.task_groups.push_back(l.request.group);
      slots.push_back(slot);
    }
    return commit_tasks(ctx, l, view, slots, std::move(failures));
  });
}

Result<json::value> start_task(EcsContext& ctx, Placer& placer, const json::object& in) {
  const json::array* refs = opt_array(in, "containerInstances");
  if (refs == nullptr || refs->empty() || refs->size() > 10) {
    return invalid_parameter("containerInstances must list 1 to 10 container instances.");
  }
  BERTH_TRY(Launch l, prepare(ctx, in, 1));
  std::vector<std::string> names;
  for (const auto& r : *refs) names.emplace_back(r.as_string());
  return place_on(ctx, placer, l, names);
}

}  // namespace

Result<json::value> launch_tasks(EcsContext& ctx, Placer& placer, const json::object& in,
                                 int count) {
  BERTH_TRY(Launch l, prepare(ctx, in, count));
  auto compiled = scheduler::compile(l.request);
  if (!compiled.ok()) return invalid_parameter(compiled.error().message);
  uint64_t seed = ctx.rng().next();
  return placer.run(l.cluster, [&](PlacementView& view) -> Result<json::value> {
    scheduler::Plan plan = view.index.place(*compiled, seed);
    json::array failures;
    for (const auto& f : plan.failures)
      failures.push_back(json::object{{"arn", f.arn}, {"reason", f.reason}});
    return commit_tasks(ctx, l, view, plan.placements, std::move(failures));
  });
}

Result<json::value> launch_tasks_on(EcsContext& ctx, Placer& placer, const json::object& request,
                                    const std::vector<std::string>& instance_ids) {
  BERTH_TRY(Launch l, prepare(ctx, request, 1));
  return place_on(ctx, placer, l, instance_ids);
}

void register_run_task_actions(api::JsonService& s, EcsContext& ctx, Placer& placer) {
  s.add("RunTask",
        [&ctx, &placer](auto&, const json::object& in) { return run_task(ctx, placer, in); });
  s.add("StartTask",
        [&ctx, &placer](auto&, const json::object& in) { return start_task(ctx, placer, in); });
}

}  // namespace berth::server::ecs
