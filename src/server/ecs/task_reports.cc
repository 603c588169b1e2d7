#include "server/ecs/task_reports.h"

#include "server/ecs/task_records.h"

namespace berth::server::ecs {

namespace {

int status_rank(std::string_view s) {
  static constexpr std::string_view kOrder[] = {"PROVISIONING",   "PENDING",      "ACTIVATING",
                                                "RUNNING",        "DEACTIVATING", "STOPPING",
                                                "DEPROVISIONING", "STOPPED"};
  for (size_t i = 0; i < std::size(kOrder); ++i) {
    if (kOrder[i] == s) return static_cast<int>(i);
  }
  return -1;
}

// Updates one container of the task from a ContainerStateChange-like object.
void apply_container(json::object& task, const json::object& c) {
  auto name = opt_string(c, "containerName").value_or("");
  auto* cs = task.if_contains("containers");
  if (cs == nullptr || !cs->is_array()) return;
  for (auto& kv : cs->as_array()) {
    auto& k = kv.as_object();
    if (opt_string(k, "name") != name) continue;
    if (auto s = opt_string(c, "status");
        s && status_rank(*s) >= status_rank(opt_string(k, "lastStatus").value_or(""))) {
      k["lastStatus"] = *s;
    }
    for (const char* f : {"runtimeId", "imageDigest", "reason", "healthStatus"}) {
      if (auto v = opt_string(c, f)) k[f] = *v;
    }
    if (auto e = opt_int(c, "exitCode")) k["exitCode"] = *e;
    if (const json::array* nb = opt_array(c, "networkBindings")) k["networkBindings"] = *nb;
  }
}

}  // namespace

Result<json::value> apply_task_report(EcsContext& ctx, const std::string& cluster,
                                      const json::object& report) {
  BERTH_TRY(std::string id, task_id_from(ctx, cluster, opt_string(report, "task").value_or("")));
  std::string key = keys::task_prefix(cluster) + id;
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(auto doc, load_doc(ctx.store(), key));
    if (!doc) return invalid_parameter("The referenced task was not found.");
    json::object& t = doc->obj;
    std::string before(opt_string(t, "lastStatus").value_or("PENDING"));
    if (before == "STOPPED") return json::object{{"acknowledgment", "ACK"}};  // final already
    if (const json::array* cs = opt_array(report, "containers")) {
      for (const auto& c : *cs) {
        if (c.is_object()) apply_container(t, c.as_object());
      }
    }
    if (opt_string(report, "containerName"))
      apply_container(t, report);  // SubmitContainerStateChange
    for (const char* f : {"pullStartedAt", "pullStoppedAt", "executionStoppedAt", "startedAt"}) {
      if (auto* v = report.if_contains(f); v && v->is_number()) t[f] = *v;
    }
    if (auto h = opt_string(report, "healthStatus")) t["healthStatus"] = *h;
    if (auto* internal = t.if_contains("_berth"); internal && internal->is_object()) {
      internal->as_object()["acked"] = true;
    }
    std::string after(opt_string(report, "status").value_or(before));
    if (status_rank(after) > status_rank(before)) {
      // Instance resources and counts follow from the task's status (derived, not stored).
      if (after == "STOPPED") {
        std::string code(opt_string(report, "stopCode")
                             .value_or(opt_string(t, "desiredStatus") == "STOPPED"
                                           ? opt_string(t, "stopCode").value_or("UserInitiated")
                                           : "EssentialContainerExited"));
        std::string reason(
            opt_string(report, "reason").value_or(opt_string(t, "stoppedReason").value_or("")));
        mark_stopped(t, ctx.now(), code, reason);
        if (auto* v = report.if_contains("executionStoppedAt"); v && v->is_number())
          t["executionStoppedAt"] = *v;
      } else {
        t["lastStatus"] = after;
        if (after == "RUNNING" && !t.contains("startedAt")) t["startedAt"] = ctx.now();
      }
    }
    t["version"] = opt_int(t, "version").value_or(0) + 1;
    BERTH_CHECK(replace_doc(ctx.store(), key, t, doc->mod_revision));
    return json::object{{"acknowledgment", "ACK"}};
  });
}

Status mark_acked(EcsContext& ctx, const std::string& cluster,
                  const std::vector<std::string>& task_ids) {
  for (const auto& id : task_ids) {
    std::string key = keys::task_prefix(cluster) + id;
    auto r = with_retries([&]() -> Result<json::value> {
      BERTH_TRY(auto doc, load_doc(ctx.store(), key));
      if (!doc) return json::value();
      auto* internal = doc->obj.if_contains("_berth");
      if (internal == nullptr || !internal->is_object() ||
          opt_bool(internal->as_object(), "acked").value_or(false))
        return json::value();
      internal->as_object()["acked"] = true;
      BERTH_CHECK(replace_doc(ctx.store(), key, doc->obj, doc->mod_revision));
      return json::value();
    });
    if (!r.ok()) return r.error();
  }
  return {};
}

void register_task_report_actions(api::JsonService& s, EcsContext& ctx) {
  auto handler = [&ctx](auto&, const json::object& in) -> Result<json::value> {
    BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
    return apply_task_report(ctx, cluster, in);
  };
  s.add("SubmitTaskStateChange", handler);
  s.add("SubmitContainerStateChange", handler);
}

}  // namespace berth::server::ecs
