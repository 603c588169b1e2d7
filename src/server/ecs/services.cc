// Services: CreateService, UpdateService, DeleteService, DescribeServices, ListServices. The
// actions only change the desired state in the service record (desiredCount, deployments,
// status); the service controller (service_controller.cc) starts and stops the tasks.

#include <boost/json/parse.hpp>
#include <cctype>
#include <set>

#include "server/ecs/paging.h"
#include "server/ecs/placer.h"
#include "server/ecs/service_records.h"

namespace berth::server::ecs {

std::string new_deployment_id(Random& rng) {
  std::string digits;
  while (digits.size() < 19) digits += std::to_string(rng.next() % 1'000'000'000);
  digits.resize(19);
  if (digits[0] == '0') digits[0] = '1';
  return "ecs-svc/" + digits;
}

json::object new_deployment(const EcsContext& ctx, const json::object& service) {
  json::object d;
  d["id"] = new_deployment_id(ctx.rng());
  d["status"] = "PRIMARY";
  d["taskDefinition"] = service.at("taskDefinition");
  d["desiredCount"] = service.at("desiredCount");
  d["pendingCount"] = 0;
  d["runningCount"] = 0;
  d["failedTasks"] = 0;
  d["createdAt"] = ctx.now();
  d["updatedAt"] = ctx.now();
  d["launchType"] = "EC2";
  d["rolloutState"] = "IN_PROGRESS";
  d["rolloutStateReason"] = "ECS deployment " + std::string(d["id"].as_string()) + " in progress.";
  return d;
}

void add_service_event(const EcsContext& ctx, json::object& service, std::string message) {
  json::array events = service.contains("events") ? service.at("events").as_array() : json::array();
  events.insert(events.begin(), json::object{{"id", make_uuid(ctx.rng())},
                                             {"createdAt", ctx.now()},
                                             {"message", std::move(message)}});
  while (events.size() > kMaxServiceEvents) events.pop_back();
  service["events"] = std::move(events);
}

json::object render_service(const json::object& stored, bool include_tags) {
  json::object s = stored;
  s.erase("_berth");
  if (!include_tags) s.erase("tags");
  return s;
}

namespace {

bool valid_service_name(std::string_view name) {
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

Error service_not_found() { return Error(model::Errc::service_not_found, "Service not found."); }

}  // namespace

Result<std::string> service_name_from_ref(const EcsContext& ctx, std::string_view ref) {
  std::string_view name = ref;
  if (ref.starts_with("arn:")) {
    std::string prefix = ctx.arn("service/");
    if (!ref.starts_with(prefix))
      return invalid_parameter("Invalid service ARN: " + std::string(ref) + ".");
    name = ref.substr(prefix.size());
    if (auto slash = name.rfind('/'); slash != std::string_view::npos)
      name = name.substr(slash + 1);
  }
  if (!valid_service_name(name)) {
    return invalid_parameter(
        "Service names can contain up to 255 letters (uppercase and lowercase), numbers, "
        "underscores, and hyphens: '" +
        std::string(ref) + "'.");
  }
  return std::string(name);
}

namespace {

// deploymentConfiguration with ECS's defaults filled in and checked.
// ECS's defaults: 200/100 for REPLICA, 100/0 for DAEMON (a daemon's task is stopped before its
// replacement starts on the same instance).
Result<json::object> deployment_configuration(const json::object* in, const json::object* base,
                                              bool daemon = false) {
  json::object c = base ? *base : json::object{};
  if (!c.contains("maximumPercent")) c["maximumPercent"] = daemon ? 100 : 200;
  if (!c.contains("minimumHealthyPercent")) c["minimumHealthyPercent"] = daemon ? 0 : 100;
  if (!c.contains("deploymentCircuitBreaker"))
    c["deploymentCircuitBreaker"] = json::object{{"enable", false}, {"rollback", false}};
  if (in) {
    if (auto v = opt_int(*in, "maximumPercent")) c["maximumPercent"] = *v;
    if (auto v = opt_int(*in, "minimumHealthyPercent")) c["minimumHealthyPercent"] = *v;
    if (auto* cb = opt_object(*in, "deploymentCircuitBreaker")) {
      c["deploymentCircuitBreaker"] =
          json::object{{"enable", opt_bool(*cb, "enable").value_or(false)},
                       {"rollback", opt_bool(*cb, "rollback").value_or(false)}};
    }
    if (auto* alarms = opt_object(*in, "alarms")) c["alarms"] = *alarms;
  }
  int64_t max = *opt_int(c, "maximumPercent");
  int64_t min = *opt_int(c, "minimumHealthyPercent");
  if (min < 0 || min > 100)
    return invalid_parameter("minimumHealthyPercent must be between 0 and 100.");
  if (max < 100 || max > 200)
    return invalid_parameter("maximumPercent must be between 100 and 200.");
  return c;
}

Result<json::array> placement_list(const json::object& in, const char* name) {
  const json::array* a = opt_array(in, name);
  if (a == nullptr) return json::array();
  return *a;
}

Result<json::object> resolve_task_definition(EcsContext& ctx, std::string_view ref) {
  BERTH_TRY(auto td, find_task_definition(ctx, ref));
  if (!td) return client_error("Unable to find task definition '" + std::string(ref) + "'.");
  if (opt_string(*td, "status") != "ACTIVE") return client_error("TaskDefinition is inactive");
  return std::move(*td);
}

std::string request_fingerprint(const json::object& in) {
  json::object copy = in;
  copy.erase("clientToken");
  return dump(copy);
}

// The instances a DAEMON service covers now: ACTIVE and matching its memberOf constraints (the
// controller keeps the count current as instances come and go; setting it at creation means a
// waiter never sees a new DAEMON service "stable" at 0 of 0).
Result<int64_t> daemon_instance_count(Placer& placer, const std::string& cluster,
                                      const json::array& constraints) {
  std::vector<scheduler::Expression> rules;
  for (const auto& c : constraints) {
    auto expr = opt_string(c.as_object(), "expression");
    if (opt_string(c.as_object(), "type") != "memberOf" || !expr) continue;
    auto e = scheduler::Expression::parse(*expr);
    if (!e.ok()) return invalid_parameter(e.error().message);
    rules.push_back(std::move(*e));
  }
  int64_t n = 0;
  for (const auto& v : placer.instances(cluster)) {
    bool ok = v.active;
    for (const auto& r : rules) ok = ok && r.matches(v);
    n += ok;
  }
  return n;
}

// The service's loadBalancers, checked against its task definition and the target groups: each
// names a target group that exists and is attached to a load balancer, and a container port the
// task definition maps.
Result<json::array> validate_load_balancers(EcsContext& ctx, const json::array* lbs,
                                            const json::object& td) {
  json::array out;
  if (lbs == nullptr || lbs->empty()) return out;
  if (lbs->size() > 5)
    return invalid_parameter("loadBalancers can contain at most 5 target groups.");
  LoadBalancing* lb = ctx.load_balancing();
  if (lb == nullptr)
    return invalid_parameter("loadBalancers need the ELBv2 API, which this server does not serve.");
  std::set<std::string> seen;
  for (const auto& v : *lbs) {
    const json::object& o = v.as_object();
    if (opt_string(o, "loadBalancerName") && !opt_string(o, "targetGroupArn"))
      return invalid_parameter(
          "loadBalancerName names a Classic Load Balancer, which Berth does not provide: use "
          "targetGroupArn.");
    auto tg_arn = opt_string(o, "targetGroupArn");
    auto container = opt_string(o, "containerName");
    auto port = opt_int(o, "containerPort");
    if (!tg_arn) return invalid_parameter("targetGroupArn must be specified in loadBalancers.");
    if (!container || !port)
      return invalid_parameter(
          "containerName and containerPort must be specified in loadBalancers.");
    bool mapped = false, found = false;
    for (const auto& c : td.at("containerDefinitions").as_array()) {
      const json::object& co = c.as_object();
      if (opt_string(co, "name") != *container) continue;
      found = true;
      if (const json::array* pms = opt_array(co, "portMappings")) {
        for (const auto& pm : *pms) mapped |= opt_int(pm.as_object(), "containerPort") == *port;
      }
    }
    if (!found)
      return invalid_parameter("The container " + std::string(*container) +
                               " does not exist in the task definition.");
    if (!mapped)
      return invalid_parameter("The container " + std::string(*container) +
                               " did not have a container port " + std::to_string(*port) +
                               " defined.");
    BERTH_TRY(auto tg, lb->target_group(*tg_arn));
    if (!tg)
      return invalid_parameter("The target group " + std::string(*tg_arn) + " does not exist.");
    if (!tg->has_load_balancer)
      return invalid_parameter("The target group with targetGroupArn " + std::string(*tg_arn) +
                               " does not have an associated load balancer.");
    std::string key =
        std::string(*tg_arn) + "|" + std::string(*container) + "|" + std::to_string(*port);
    if (!seen.insert(key).second)
      return invalid_parameter(
          "loadBalancers contains the same target group and container port twice.");
    out.push_back(json::object{
        {"targetGroupArn", *tg_arn}, {"containerName", *container}, {"containerPort", *port}});
  }
  return out;
}

Result<json::value> create_service(EcsContext& ctx, Placer& placer, const json::object& in) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  std::string name(opt_string(in, "serviceName").value_or(""));
  if (!valid_service_name(name)) {
    return invalid_parameter(
        "Service names can contain up to 255 letters (uppercase and lowercase), numbers, "
        "underscores, and hyphens.");
  }
  std::string strategy(opt_string(in, "schedulingStrategy").value_or("REPLICA"));
  if (strategy != "REPLICA" && strategy != "DAEMON")
    return invalid_parameter("schedulingStrategy must be REPLICA or DAEMON.");
  bool daemon = strategy == "DAEMON";
  if (auto* ps = opt_array(in, "placementStrategy"); daemon && ps && !ps->empty())
    return invalid_parameter(
        "Placement strategies are not supported with the DAEMON scheduling strategy.");
  if (auto lt = opt_string(in, "launchType"); lt && *lt == "FARGATE")
    return invalid_parameter(
        "Berth runs tasks on your container instances: launchType FARGATE "
        "is not available; use EC2 or EXTERNAL.");
  if (auto* cps = opt_array(in, "capacityProviderStrategy"); cps && !cps->empty())
    return invalid_parameter("capacityProviderStrategy is not supported.");
  if (auto* dc = opt_object(in, "deploymentController"); dc && opt_string(*dc, "type") != "ECS")
    return invalid_parameter("Only the ECS deployment controller is supported.");
  auto td_ref = opt_string(in, "taskDefinition");
  if (!td_ref) return invalid_parameter("TaskDefinition must be specified.");
  int64_t desired = opt_int(in, "desiredCount").value_or(0);
  if (desired < 0) return invalid_parameter("desiredCount must be at least 0.");
  // A DAEMON service's desiredCount is the number of instances it covers.
  if (daemon) desired = 0;
  BERTH_TRY(json::object config,
            deployment_configuration(opt_object(in, "deploymentConfiguration"), nullptr, daemon));
  BERTH_TRY(json::array tags, validate_tags(opt_array(in, "tags")));
  BERTH_TRY(json::array constraints, placement_list(in, "placementConstraints"));
  BERTH_TRY(json::array strategies, placement_list(in, "placementStrategy"));
  if (daemon) {
    BERTH_TRY(desired, daemon_instance_count(placer, cluster, constraints));
  }
  std::string token(opt_string(in, "clientToken").value_or(""));
  std::string fingerprint = request_fingerprint(in);
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Doc cluster_doc, load_active_cluster(ctx, cluster));
    (void)cluster_doc;
    BERTH_TRY(json::object td, resolve_task_definition(ctx, *td_ref));
    BERTH_TRY(json::array lbs, validate_load_balancers(ctx, opt_array(in, "loadBalancers"), td));
    std::string key = keys::service_prefix(cluster) + name;
    BERTH_TRY(auto existing, load_doc(ctx.store(), key));
    int64_t rev = 0;
    if (existing) {
      const json::object& s = existing->obj;
      if (opt_string(s, "status") != "INACTIVE") {
        const json::object* internal = opt_object(s, "_berth");
        if (!token.empty() && internal && opt_string(*internal, "clientToken") == token &&
            opt_string(*internal, "request") == fingerprint) {
          return json::object{{"service", render_service(s, false)}};
        }
        return invalid_parameter("Creation of service was not idempotent.");
      }
      rev = existing->mod_revision;  // an INACTIVE service's name can be used again
    }
    json::object s;
    s["serviceArn"] = ctx.arn("service/" + cluster + "/" + name);
    s["serviceName"] = name;
    s["clusterArn"] = ctx.cluster_arn(cluster);
    s["loadBalancers"] = std::move(lbs);
    s["serviceRegistries"] = json::array();
    s["status"] = "ACTIVE";
    s["desiredCount"] = desired;
    s["runningCount"] = 0;
    s["pendingCount"] = 0;
    s["launchType"] = "EC2";
    s["taskDefinition"] = td.at("taskDefinitionArn");
    s["deploymentConfiguration"] = config;
    s["placementConstraints"] = constraints;
    s["placementStrategy"] = strategies;
    if (auto g = opt_int(in, "healthCheckGracePeriodSeconds"))
      s["healthCheckGracePeriodSeconds"] = *g;
    s["schedulingStrategy"] = strategy;
    s["deploymentController"] = json::object{{"type", "ECS"}};
    s["createdAt"] = ctx.now();
    s["createdBy"] = ctx.principal_arn();
    s["enableECSManagedTags"] = opt_bool(in, "enableECSManagedTags").value_or(false);
    s["propagateTags"] = opt_string(in, "propagateTags").value_or("NONE");
    s["enableExecuteCommand"] = opt_bool(in, "enableExecuteCommand").value_or(false);
    s["events"] = json::array();
    s["tags"] = tags;
    s["deployments"] = json::array{new_deployment(ctx, s)};
    s["_berth"] = json::object{{"clientToken", token}, {"request", fingerprint}};
    BERTH_CHECK(replace_doc(ctx.store(), key, s, rev));
    return json::object{{"service", render_service(s, false)}};
  });
}

// Loads the service a request names; ServiceNotFoundException when there is none.
Result<std::pair<std::string, Doc>> load_service(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  BERTH_TRY(Doc cluster_doc, load_active_cluster(ctx, cluster));
  (void)cluster_doc;
  BERTH_TRY(std::string name, service_name_from_ref(ctx, opt_string(in, "service").value_or("")));
  BERTH_TRY(auto doc, load_doc(ctx.store(), keys::service_prefix(cluster) + name));
  if (!doc) return service_not_found();
  return std::pair{keys::service_prefix(cluster) + name, std::move(*doc)};
}

Result<json::value> update_service(EcsContext& ctx, const json::object& in) {
  if (auto* cps = opt_array(in, "capacityProviderStrategy"); cps && !cps->empty())
    return invalid_parameter("capacityProviderStrategy is not supported.");
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(auto found, load_service(ctx, in));
    auto& [key, doc] = found;
    json::object& s = doc.obj;
    if (opt_string(s, "status") != "ACTIVE")
      return Error(model::Errc::service_not_active, "Service was not ACTIVE.");
    bool redeploy = opt_bool(in, "forceNewDeployment").value_or(false);
    bool daemon = opt_string(s, "schedulingStrategy") == "DAEMON";
    if (auto d = opt_int(in, "desiredCount")) {
      if (daemon)
        return invalid_parameter(
            "The daemon scheduling strategy does not support a desired count for services.");
      if (*d < 0) return invalid_parameter("desiredCount must be at least 0.");
      s["desiredCount"] = *d;
    }
    if (auto ref = opt_string(in, "taskDefinition")) {
      BERTH_TRY(json::object td, resolve_task_definition(ctx, *ref));
      if (td.at("taskDefinitionArn") != s.at("taskDefinition")) redeploy = true;
      s["taskDefinition"] = td.at("taskDefinitionArn");
    }
    if (auto* dc = opt_object(in, "deploymentConfiguration")) {
      BERTH_TRY(s["deploymentConfiguration"],
                deployment_configuration(dc, &s.at("deploymentConfiguration").as_object(), daemon));
    }
    if (auto* ps = opt_array(in, "placementStrategy"); daemon && ps && !ps->empty())
      return invalid_parameter(
          "Placement strategies are not supported with the DAEMON scheduling strategy.");
    for (const char* p : {"placementConstraints", "placementStrategy"}) {
      if (const json::array* a = opt_array(in, p)) {
        s[p] = *a;
        redeploy = true;  // as ECS: a placement change starts a new deployment
      }
    }
    if (auto g = opt_int(in, "healthCheckGracePeriodSeconds"))
      s["healthCheckGracePeriodSeconds"] = *g;
    // New load balancers (or a new task definition under existing ones) are checked against the
    // task definition the service will run; a change starts a new deployment, as in ECS.
    const json::array* new_lbs = opt_array(in, "loadBalancers");
    const json::array* cur_lbs = opt_array(s, "loadBalancers");
    if (new_lbs || (cur_lbs && !cur_lbs->empty() && redeploy)) {
      BERTH_TRY(json::object td,
                resolve_task_definition(ctx, opt_string(s, "taskDefinition").value_or("")));
      BERTH_TRY(json::array lbs, validate_load_balancers(ctx, new_lbs ? new_lbs : cur_lbs, td));
      if (new_lbs && json::value(lbs) != s["loadBalancers"]) redeploy = true;
      s["loadBalancers"] = std::move(lbs);
    }
    if (auto v = opt_bool(in, "enableExecuteCommand")) s["enableExecuteCommand"] = *v;
    if (auto v = opt_string(in, "propagateTags")) s["propagateTags"] = *v;
    json::array& deployments = s["deployments"].as_array();
    if (redeploy) {
      for (auto& d : deployments) d.as_object()["status"] = "ACTIVE";
      deployments.insert(deployments.begin(), new_deployment(ctx, s));
    } else if (!deployments.empty()) {
      auto& primary = deployments.front().as_object();
      if (primary.at("desiredCount") != s.at("desiredCount")) {
        primary["desiredCount"] = s.at("desiredCount");
        primary["updatedAt"] = ctx.now();
      }
    }
    BERTH_CHECK(replace_doc(ctx.store(), key, s, doc.mod_revision));
    return json::object{{"service", render_service(s, false)}};
  });
}

Result<json::value> delete_service(EcsContext& ctx, const json::object& in) {
  bool force = opt_bool(in, "force").value_or(false);
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(auto found, load_service(ctx, in));
    auto& [key, doc] = found;
    json::object& s = doc.obj;
    if (opt_string(s, "status") == "INACTIVE")
      return Error(model::Errc::service_not_active, "Service was not ACTIVE.");
    if (opt_string(s, "status") == "DRAINING")
      return json::object{{"service", render_service(s, false)}};
    // A DAEMON service cannot be scaled to 0 first: ECS deletes it without force.
    if (opt_int(s, "desiredCount").value_or(0) > 0 && !force &&
        opt_string(s, "schedulingStrategy") != "DAEMON")
      return invalid_parameter("The service cannot be stopped while it is scaled above 0.");
    s["status"] = "DRAINING";
    s["desiredCount"] = 0;
    for (auto& d : s["deployments"].as_array()) d.as_object()["desiredCount"] = 0;
    BERTH_CHECK(replace_doc(ctx.store(), key, s, doc.mod_revision));
    return json::object{{"service", render_service(s, false)}};
  });
}

Result<json::value> describe_services(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  BERTH_TRY(auto cluster_doc, load_doc(ctx.store(), keys::cluster(cluster)));
  if (!cluster_doc) return Error(model::Errc::cluster_not_found, "Cluster not found.");
  bool tags = false;
  if (auto* inc = opt_array(in, "include")) {
    for (const auto& v : *inc) tags |= v.as_string() == "TAGS";
  }
  const json::array* refs = opt_array(in, "services");
  if (refs == nullptr || refs->empty()) return invalid_parameter("Services cannot be empty.");
  if (refs->size() > 10) return invalid_parameter("services can have at most 10 items.");
  BERTH_TRY(Described d,
            describe_each(
                *refs,
                [&](std::string_view r) -> Result<std::optional<json::value>> {
                  auto name = service_name_from_ref(ctx, r);
                  if (!name.ok()) return std::optional<json::value>();
                  BERTH_TRY(auto doc, load_doc(ctx.store(), keys::service_prefix(cluster) + *name));
                  if (!doc) return std::optional<json::value>();
                  return std::optional<json::value>(render_service(doc->obj, tags));
                },
                [&](std::string_view r) {
                  return ctx.arn("service/" + cluster + "/" + std::string(r));
                }));
  return json::object{{"services", std::move(d.items)}, {"failures", std::move(d.failures)}};
}

Result<json::value> list_services(EcsContext& ctx, const json::object& in) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  BERTH_TRY(Doc cluster_doc, load_active_cluster(ctx, cluster));
  (void)cluster_doc;
  BERTH_TRY(size_t max, max_results_from(in, 100));
  auto launch_type = opt_string(in, "launchType");
  auto strategy = opt_string(in, "schedulingStrategy");
  BERTH_TRY(Page page, page_scan(ctx.store(), keys::service_prefix(cluster), in, max,
                                 [&](const store::KeyValue& kv) -> std::optional<json::value> {
                                   boost::system::error_code ec;
                                   json::value v = json::parse(kv.value, ec);
                                   if (ec || !v.is_object()) return std::nullopt;
                                   const auto& s = v.as_object();
                                   if (opt_string(s, "status") == "INACTIVE") return std::nullopt;
                                   if (launch_type && opt_string(s, "launchType") != *launch_type)
                                     return std::nullopt;
                                   if (strategy && opt_string(s, "schedulingStrategy") != *strategy)
                                     return std::nullopt;
                                   return s.at("serviceArn");
                                 }));
  json::object out{{"serviceArns", std::move(page.items)}};
  put_next_token(out, page);
  return out;
}

}  // namespace

void register_service_actions(api::JsonService& s, EcsContext& ctx, Placer& placer) {
  s.add("CreateService",
        [&ctx, &placer](auto&, const json::object& in) { return create_service(ctx, placer, in); });
  s.add("UpdateService", [&ctx](auto&, const json::object& in) { return update_service(ctx, in); });
  s.add("DeleteService", [&ctx](auto&, const json::object& in) { return delete_service(ctx, in); });
  s.add("DescribeServices",
        [&ctx](auto&, const json::object& in) { return describe_services(ctx, in); });
  s.add("ListServices", [&ctx](auto&, const json::object& in) { return list_services(ctx, in); });
}

}  // namespace berth::server::ecs
