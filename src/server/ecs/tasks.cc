// Tasks: DescribeTasks, ListTasks, StopTask (RunTask and StartTask are in run_task.cc).

#include <boost/json/parse.hpp>

#include "server/ecs/context.h"
#include "server/ecs/paging.h"
#include "server/ecs/placer.h"
#include "server/ecs/task_records.h"

namespace berth::server::ecs {

Result<std::string> task_id_from(const EcsContext& ctx, std::string_view cluster,
                                 std::string_view ref) {
  return cluster_resource_id(ctx, cluster, ref, "task", "task");
}

namespace {

Result<json::value> describe_tasks(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  BERTH_TRY(auto cluster_doc, load_doc(ctx.store(), keys::cluster(cluster)));
  if (!cluster_doc) return Error(model::Errc::cluster_not_found, "Cluster not found.");
  bool tags = false;
  if (auto* inc = opt_array(in, "include")) {
    for (const auto& v : *inc) tags |= v.as_string() == "TAGS";
  }
  const json::array* refs = opt_array(in, "tasks");
  if (refs == nullptr || refs->empty()) return invalid_parameter("Tasks cannot be empty.");
  if (refs->size() > 100) return invalid_parameter("tasks can have at most 100 items.");
  BERTH_TRY(
      Described d,
      describe_each(
          *refs,
          [&](std::string_view r) -> Result<std::optional<json::value>> {
            auto id = task_id_from(ctx, cluster, r);
            if (!id.ok()) return std::optional<json::value>();
            BERTH_TRY(auto doc, load_doc(ctx.store(), keys::task_prefix(cluster) + *id));
            if (!doc) return std::optional<json::value>();
            return std::optional<json::value>(render_task(doc->obj, tags));
          },
          [&](std::string_view r) { return ctx.arn("task/" + cluster + "/" + std::string(r)); }));
  return json::object{{"tasks", std::move(d.items)}, {"failures", std::move(d.failures)}};
}

Result<json::value> list_tasks(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  BERTH_TRY(Doc cluster_doc, load_active_cluster(ctx, cluster));
  (void)cluster_doc;
  BERTH_TRY(size_t max, max_results_from(in));
  std::optional<std::string> instance_arn;
  if (auto ci = opt_string(in, "containerInstance")) {
    BERTH_TRY(std::string id, container_instance_id_from(ctx, cluster, *ci));
    instance_arn = ctx.container_instance_arn(cluster, id);
  }
  auto family = opt_string(in, "family");
  auto started_by = opt_string(in, "startedBy");
  auto service = opt_string(in, "serviceName");
  auto launch_type = opt_string(in, "launchType");
  if (family && service)
    return invalid_parameter("family and serviceName cannot be used together.");
  std::string desired(opt_string(in, "desiredStatus").value_or("RUNNING"));
  std::string family_prefix =
      family ? ctx.arn("task-definition/" + std::string(*family) + ":") : "";
  std::string service_group = service ? "service:" + std::string(*service) : "";
  BERTH_TRY(
      Page page,
      page_scan(ctx.store(), keys::task_prefix(cluster), in, max,
                [&](const store::KeyValue& kv) -> std::optional<json::value> {
                  boost::system::error_code ec;
                  json::value v = json::parse(kv.value, ec);
                  if (ec || !v.is_object()) return std::nullopt;
                  const auto& t = v.as_object();
                  std::string_view shown =
                      deactivating(t) ? "STOPPED" : opt_string(t, "desiredStatus").value_or("");
                  if (shown != desired) return std::nullopt;
                  if (instance_arn && opt_string(t, "containerInstanceArn") != *instance_arn)
                    return std::nullopt;
                  if (family &&
                      !opt_string(t, "taskDefinitionArn").value_or("").starts_with(family_prefix))
                    return std::nullopt;
                  if (started_by && opt_string(t, "startedBy") != *started_by) return std::nullopt;
                  if (service && opt_string(t, "group") != service_group) return std::nullopt;
                  if (launch_type && opt_string(t, "launchType") != *launch_type)
                    return std::nullopt;
                  return t.at("taskArn");
                }));
  json::object out{{"taskArns", std::move(page.items)}};
  put_next_token(out, page);
  return out;
}

// A running service task behind load balancers is drained first, as ECS does: it shows as
// DEACTIVATING while its targets drain, and the service controller stops it (UserInitiated) once
// they are gone. nullopt: the task has no targets to drain; stop it now.
Result<std::optional<json::object>> drain_before_stop(EcsContext& ctx, const std::string& cluster,
                                                      const std::string& id,
                                                      const std::string& reason) {
  LoadBalancing* lb = ctx.load_balancing();
  if (lb == nullptr) return std::optional<json::object>();
  std::string key = keys::task_prefix(cluster) + id;
  BERTH_TRY(auto doc, load_doc(ctx.store(), key));
  if (!doc || opt_string(doc->obj, "lastStatus") != "RUNNING" ||
      opt_string(doc->obj, "desiredStatus") != "RUNNING" ||
      !opt_string(doc->obj, "group").value_or("").starts_with("service:"))
    return std::optional<json::object>();
  if (deactivating(doc->obj)) return std::optional<json::object>(doc->obj);
  std::string arn(opt_string(doc->obj, "taskArn").value_or(""));
  BERTH_TRY(auto owned, lb->targets_owned_by({arn}));
  bool active = false;
  for (const auto& o : owned) active |= !o.state.draining;
  if (!active) return std::optional<json::object>();
  json::object out;
  auto r = with_retries([&]() -> Result<json::value> {
    BERTH_TRY(auto d, load_doc(ctx.store(), key));
    if (!d) return invalid_parameter("The referenced task was not found.");
    json::object& t = d->obj;
    if (opt_string(t, "desiredStatus") == "RUNNING" && !deactivating(t)) {
      json::object& internal =
          t["_berth"].is_object() ? t["_berth"].as_object() : t["_berth"].emplace_object();
      internal["deactivating"] =
          json::object{{"reason", reason}, {"since", ctx.now()}, {"code", "UserInitiated"}};
      BERTH_CHECK(replace_doc(ctx.store(), key, t, d->mod_revision));
    }
    out = t;
    return json::value();
  });
  if (!r.ok()) return r.error();
  for (const auto& o : owned) {
    if (!o.state.draining) BERTH_CHECK(lb->deregister(o.tg_arn, o.key));
  }
  return std::optional<json::object>(std::move(out));
}

Result<json::value> stop_task(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  BERTH_TRY(std::string id, task_id_from(ctx, cluster, opt_string(in, "task").value_or("")));
  std::string reason(opt_string(in, "reason").value_or("Task stopped by user"));
  if (reason.size() > 255) return invalid_parameter("reason can be at most 255 characters.");
  BERTH_TRY(Doc cluster_doc, load_active_cluster(ctx, cluster));
  (void)cluster_doc;
  BERTH_TRY(auto drained, drain_before_stop(ctx, cluster, id, reason));
  if (drained) return json::object{{"task", render_task(*drained, false)}};
  BERTH_TRY(json::object t, stop_task_record(ctx, cluster, id, "UserInitiated", reason));
  return json::object{{"task", render_task(t, false)}};
}

}  // namespace

Result<json::object> stop_task_record(EcsContext& ctx, const std::string& cluster,
                                      const std::string& id, const std::string& stop_code,
                                      const std::string& reason) {
  json::object out;
  auto r = with_retries([&]() -> Result<json::value> {
    std::string key = keys::task_prefix(cluster) + id;
    BERTH_TRY(auto doc, load_doc(ctx.store(), key));
    if (!doc) return invalid_parameter("The referenced task was not found.");
    json::object& t = doc->obj;
    if (opt_string(t, "desiredStatus") == "STOPPED") {
      out = t;
      return json::value();
    }
    const json::object* internal = opt_object(t, "_berth");
    bool acked = internal && opt_bool(*internal, "acked").value_or(false);
    if (!acked) {
      // No agent has taken the task yet: stop it here; its resources are free at once (they
      // are derived from the task records).
      mark_stopped(t, ctx.now(), stop_code, reason);
    } else {
      // The agent that took the task stops its containers and reports STOPPED.
      t["desiredStatus"] = "STOPPED";
      t["stopCode"] = stop_code;
      t["stoppedReason"] = reason;
      t["stoppingAt"] = ctx.now();
      t["version"] = opt_int(t, "version").value_or(0) + 1;
    }
    BERTH_CHECK(replace_doc(ctx.store(), key, t, doc->mod_revision));
    out = t;
    return json::value();
  });
  if (!r.ok()) return r.error();
  return out;
}

void register_task_actions(api::JsonService& s, EcsContext& ctx) {
  s.add("DescribeTasks", [&ctx](auto&, const json::object& in) { return describe_tasks(ctx, in); });
  s.add("ListTasks", [&ctx](auto&, const json::object& in) { return list_tasks(ctx, in); });
  s.add("StopTask", [&ctx](auto&, const json::object& in) { return stop_task(ctx, in); });
}

}  // namespace berth::server::ecs
