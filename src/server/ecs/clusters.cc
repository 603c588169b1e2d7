// Clusters: CreateCluster, DeleteCluster, DescribeClusters, ListClusters, UpdateCluster,
// UpdateClusterSettings.

#include <boost/json/parse.hpp>
#include <set>

#include "server/ecs/context.h"
#include "server/ecs/paging.h"

namespace berth::server::ecs {

namespace {

struct ClusterCounts {
  int64_t instances = 0;  // ACTIVE or DRAINING
  int64_t running_tasks = 0;
  int64_t pending_tasks = 0;
  int64_t active_services = 0;
  int64_t draining_services = 0;
};

// Counts what a cluster holds by scanning its records. Tasks and services are written by the
// placement and services issues; until then the scans simply find none.
// TODO(scale): keep these as counters updated in the same transactions once tasks exist.
Result<ClusterCounts> count_cluster(const EcsContext& ctx, std::string_view name) {
  ClusterCounts c;
  auto scan = [&](const std::string& prefix, std::string_view field, auto&& fn) -> Status {
    store::RangeRequest req{prefix, "", 0};
    auto r = ctx.store().range(req);
    if (!r.ok()) return store_failure(r.error());
    for (const auto& kv : r->kvs) {
      boost::system::error_code ec;
      json::value v = json::parse(kv.value, ec);
      if (ec || !v.is_object()) continue;
      fn(opt_string(v.as_object(), field).value_or(""));
    }
    return {};
  };
  BERTH_CHECK(scan(keys::instance_prefix(name), "status", [&](std::string_view s) {
    if (s == "ACTIVE" || s == "DRAINING") ++c.instances;
  }));
  BERTH_CHECK(scan(keys::task_prefix(name), "lastStatus", [&](std::string_view s) {
    if (s == "RUNNING") {
      ++c.running_tasks;
    } else if (s != "STOPPED" && s != "DEPROVISIONING" && s != "DELETED") {
      ++c.pending_tasks;
    }
  }));
  BERTH_CHECK(scan(keys::service_prefix(name), "status", [&](std::string_view s) {
    if (s == "ACTIVE") ++c.active_services;
    if (s == "DRAINING") ++c.draining_services;
  }));
  return c;
}

using IncludeSet = std::set<std::string, std::less<>>;

IncludeSet include_from(const json::object& in) {
  IncludeSet s;
  if (auto* inc = opt_array(in, "include")) {
    for (const auto& v : *inc) s.insert(std::string(v.as_string()));
  }
  return s;
}

// The Cluster shape as ECS returns it: counts always, optional parts only when included.
Result<json::object> render(const EcsContext& ctx, const json::object& stored,
                            const IncludeSet& include) {
  json::object out;
  auto name = opt_string(stored, "clusterName").value_or("");
  BERTH_TRY(ClusterCounts c, count_cluster(ctx, name));
  out["clusterArn"] = stored.at("clusterArn");
  out["clusterName"] = name;
  out["status"] = stored.at("status");
  out["registeredContainerInstancesCount"] = c.instances;
  out["runningTasksCount"] = c.running_tasks;
  out["pendingTasksCount"] = c.pending_tasks;
  out["activeServicesCount"] = c.active_services;
  json::array stats;
  if (include.contains("STATISTICS")) {
    auto stat = [&](const char* k, int64_t v) {
      stats.push_back(json::object{{"name", k}, {"value", std::to_string(v)}});
    };
    stat("runningEC2TasksCount", c.running_tasks);
    stat("runningFargateTasksCount", 0);
    stat("pendingEC2TasksCount", c.pending_tasks);
    stat("pendingFargateTasksCount", 0);
    stat("activeEC2ServiceCount", c.active_services);
    stat("activeFargateServiceCount", 0);
    stat("drainingEC2ServiceCount", c.draining_services);
    stat("drainingFargateServiceCount", 0);
  }
  out["statistics"] = std::move(stats);
  out["tags"] = include.contains("TAGS") && stored.contains("tags") ? stored.at("tags")
                                                                    : json::value(json::array());
  if (include.contains("SETTINGS") && stored.contains("settings"))
    out["settings"] = stored.at("settings");
  if (include.contains("CONFIGURATIONS") && stored.contains("configuration")) {
    out["configuration"] = stored.at("configuration");
  }
  out["capacityProviders"] = stored.contains("capacityProviders") ? stored.at("capacityProviders")
                                                                  : json::value(json::array());
  out["defaultCapacityProviderStrategy"] = stored.contains("defaultCapacityProviderStrategy")
                                               ? stored.at("defaultCapacityProviderStrategy")
                                               : json::value(json::array());
  if (include.contains("ATTACHMENTS")) out["attachments"] = json::array();
  if (stored.contains("serviceConnectDefaults")) {
    out["serviceConnectDefaults"] = stored.at("serviceConnectDefaults");
  }
  return out;
}

const IncludeSet kCreateView{"SETTINGS", "TAGS", "CONFIGURATIONS"};

Result<json::array> validate_settings(const json::array* settings) {
  json::array out;
  if (settings == nullptr) return out;
  for (const auto& s : *settings) {
    const auto& o = s.as_object();
    auto name = opt_string(o, "name");
    auto value = opt_string(o, "value");
    if (!name) return invalid_parameter("Cluster setting name must be specified.");
    if (!value || (*value != "enabled" && *value != "disabled")) {
      return invalid_parameter("Invalid value for cluster setting '" + std::string(*name) +
                               "': must be 'enabled' or 'disabled'.");
    }
    out.push_back(json::object{{"name", *name}, {"value", *value}});
  }
  return out;
}

// Merges `updates` into `settings` by name.
void merge_settings(json::object& cluster, const json::array& updates) {
  json::array merged =
      cluster.contains("settings") ? cluster.at("settings").as_array() : json::array();
  for (const auto& u : updates) {
    bool found = false;
    for (auto& m : merged) {
      if (m.as_object().at("name") == u.as_object().at("name")) {
        m = u;
        found = true;
      }
    }
    if (!found) merged.push_back(u);
  }
  cluster["settings"] = std::move(merged);
}

Status validate_capacity_providers(const json::object& in) {
  if (auto* cps = opt_array(in, "capacityProviders")) {
    for (const auto& cp : *cps) {
      if (cp.as_string() != "FARGATE" && cp.as_string() != "FARGATE_SPOT") {
        return invalid_parameter("The specified capacity provider '" + std::string(cp.as_string()) +
                                 "' does not exist.");
      }
    }
  }
  return {};
}

Result<json::value> create_cluster(EcsContext& ctx, const json::object& in) {
  std::string name = "default";
  if (auto n = opt_string(in, "clusterName"); n && !n->empty()) {
    if (n->starts_with("arn:")) return invalid_parameter("clusterName must be a name, not an ARN.");
    BERTH_TRY(name, cluster_name_from_ref(ctx, *n));
  }
  BERTH_TRY(json::array tags, validate_tags(opt_array(in, "tags")));
  BERTH_TRY(json::array settings, validate_settings(opt_array(in, "settings")));
  BERTH_CHECK(validate_capacity_providers(in));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(auto existing, load_doc(ctx.store(), keys::cluster(name)));
    if (existing && opt_string(existing->obj, "status") == "ACTIVE") {
      // CreateCluster is idempotent in ECS: an existing active cluster is returned as it is.
      BERTH_TRY(json::object view, render(ctx, existing->obj, kCreateView));
      return json::object{{"cluster", std::move(view)}};
    }
    json::object c;
    c["clusterArn"] = ctx.cluster_arn(name);
    c["clusterName"] = name;
    c["status"] = "ACTIVE";
    c["settings"] =
        settings.empty()
            ? json::array{json::object{{"name", "containerInsights"}, {"value", "disabled"}}}
            : settings;
    c["tags"] = tags;
    for (const char* k : {"configuration", "capacityProviders", "defaultCapacityProviderStrategy",
                          "serviceConnectDefaults"}) {
      if (auto* v = in.if_contains(k); v && !v->is_null()) c[k] = *v;
    }
    BERTH_CHECK(
        replace_doc(ctx.store(), keys::cluster(name), c, existing ? existing->mod_revision : 0));
    BERTH_TRY(json::object view, render(ctx, c, kCreateView));
    return json::object{{"cluster", std::move(view)}};
  });
}

Result<json::value> delete_cluster(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(std::string name, cluster_name_from(ctx, in));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Doc doc, load_active_cluster(ctx, name));
    BERTH_TRY(ClusterCounts c, count_cluster(ctx, name));
    if (c.instances > 0) {
      return Error(model::Errc::cluster_contains_container_instances,
                   "The Cluster cannot be deleted while Container Instances are active or "
                   "draining.");
    }
    if (c.active_services > 0 || c.draining_services > 0) {
      return Error(model::Errc::cluster_contains_services,
                   "The Cluster cannot be deleted while Services are active.");
    }
    if (c.running_tasks > 0 || c.pending_tasks > 0) {
      return Error(model::Errc::cluster_contains_tasks,
                   "The Cluster cannot be deleted while Tasks are active.");
    }
    doc.obj["status"] = "INACTIVE";
    BERTH_CHECK(replace_doc(ctx.store(), keys::cluster(name), doc.obj, doc.mod_revision));
    BERTH_TRY(json::object view, render(ctx, doc.obj, kCreateView));
    return json::object{{"cluster", std::move(view)}};
  });
}

Result<json::value> describe_clusters(EcsContext& ctx, const json::object& in) {
  IncludeSet include = include_from(in);
  json::array refs;
  if (auto* c = opt_array(in, "clusters"); c && !c->empty()) {
    refs = *c;
  } else {
    refs.push_back("default");
  }
  if (refs.size() > 100) return invalid_parameter("clusters can have at most 100 items.");
  json::array clusters, failures;
  for (const auto& ref : refs) {
    std::string_view r = ref.as_string();
    auto name = cluster_name_from_ref(ctx, r);
    std::optional<Doc> doc;
    if (name.ok()) {
      BERTH_TRY(doc, load_doc(ctx.store(), keys::cluster(*name)));
    }
    if (!doc) {
      failures.push_back(
          json::object{{"arn", r.starts_with("arn:") ? std::string(r) : ctx.cluster_arn(r)},
                       {"reason", "MISSING"}});
      continue;
    }
    BERTH_TRY(json::object view, render(ctx, doc->obj, include));
    clusters.push_back(std::move(view));
  }
  return json::object{{"clusters", std::move(clusters)}, {"failures", std::move(failures)}};
}

Result<json::value> list_clusters(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(size_t max, max_results_from(in));
  BERTH_TRY(Page page,
            page_scan(ctx.store(), std::string(keys::kClusters), in, max,
                      [&](const store::KeyValue& kv) -> std::optional<json::value> {
                        boost::system::error_code ec;
                        json::value v = json::parse(kv.value, ec);
                        if (ec || !v.is_object() || opt_string(v.as_object(), "status") != "ACTIVE")
                          return std::nullopt;
                        return json::value(ctx.cluster_arn(
                            std::string_view(kv.key).substr(keys::kClusters.size())));
                      }));
  json::object out{{"clusterArns", std::move(page.items)}};
  put_next_token(out, page);
  return out;
}

Result<json::value> update_cluster(EcsContext& ctx, const json::object& in, bool settings_only) {
  BERTH_TRY(std::string name, cluster_name_from(ctx, in));
  BERTH_TRY(json::array settings, validate_settings(opt_array(in, "settings")));
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Doc doc, load_active_cluster(ctx, name));
    merge_settings(doc.obj, settings);
    if (!settings_only) {
      for (const char* k : {"configuration", "serviceConnectDefaults"}) {
        if (auto* v = in.if_contains(k); v && !v->is_null()) doc.obj[k] = *v;
      }
    }
    BERTH_CHECK(replace_doc(ctx.store(), keys::cluster(name), doc.obj, doc.mod_revision));
    BERTH_TRY(json::object view, render(ctx, doc.obj, kCreateView));
    return json::object{{"cluster", std::move(view)}};
  });
}

}  // namespace

void register_cluster_actions(api::JsonService& s, EcsContext& ctx) {
  s.add("CreateCluster", [&ctx](auto&, const json::object& in) { return create_cluster(ctx, in); });
  s.add("DeleteCluster", [&ctx](auto&, const json::object& in) { return delete_cluster(ctx, in); });
  s.add("DescribeClusters",
        [&ctx](auto&, const json::object& in) { return describe_clusters(ctx, in); });
  s.add("ListClusters", [&ctx](auto&, const json::object& in) { return list_clusters(ctx, in); });
  s.add("UpdateCluster",
        [&ctx](auto&, const json::object& in) { return update_cluster(ctx, in, false); });
  s.add("UpdateClusterSettings",
        [&ctx](auto&, const json::object& in) { return update_cluster(ctx, in, true); });
}

}  // namespace berth::server::ecs
