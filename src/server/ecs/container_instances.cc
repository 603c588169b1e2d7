// Container instances: RegisterContainerInstance, DeregisterContainerInstance,
// DescribeContainerInstances, ListContainerInstances, UpdateContainerInstancesState.
// Stored as instances/<cluster>/<id> -> the ContainerInstance shape.

#include <algorithm>
#include <boost/json/parse.hpp>
#include <cctype>
#include <cstdio>
#include <set>

#include "server/ecs/attributes.h"
#include "server/ecs/context.h"
#include "server/ecs/paging.h"
#include "server/ecs/placer.h"

namespace berth::server::ecs {

json::object render_instance(const json::object& stored, const InstanceUsage& usage, bool tags,
                             bool health);

Result<std::string> container_instance_id_from(const EcsContext& ctx, std::string_view cluster,
                                               std::string_view ref) {
  return cluster_resource_id(ctx, cluster, ref, "container-instance", "container instance");
}

namespace {

struct Identity {
  std::string instance_id, availability_zone, instance_type, image_id;
};

Result<Identity> parse_identity(const EcsContext& ctx, const json::object& in) {
  Identity id;
  if (auto doc = opt_string(in, "instanceIdentityDocument"); doc && !doc->empty()) {
    boost::system::error_code ec;
    json::value v = json::parse(*doc, ec);
    if (ec || !v.is_object()) {
      return invalid_parameter("instanceIdentityDocument must be a JSON document.");
    }
    const auto& o = v.as_object();
    id.instance_id = opt_string(o, "instanceId").value_or("");
    id.availability_zone = opt_string(o, "availabilityZone").value_or("");
    id.instance_type = opt_string(o, "instanceType").value_or("");
    id.image_id = opt_string(o, "imageId").value_or("");
  }
  if (id.instance_id.empty()) {
    char buf[20];
    std::snprintf(buf, sizeof buf, "i-%017llx",
                  static_cast<unsigned long long>(ctx.rng().next() & 0xFFFFFFFFFFFFFFFULL));
    id.instance_id = buf;
  }
  return id;
}

// Validates totalResources: CPU and MEMORY as INTEGER, PORTS/PORTS_UDP as STRINGSET of ports.
Result<json::array> parse_resources(const json::array* total) {
  json::array out;
  bool cpu = false, memory = false;
  if (total != nullptr) {
    for (const auto& rv : *total) {
      json::object r = rv.as_object();
      auto name = std::string(opt_string(r, "name").value_or(""));
      auto type = std::string(opt_string(r, "type").value_or(""));
      if (name.empty()) return invalid_parameter("totalResources: every resource needs a name.");
      if (name == "CPU" || name == "MEMORY") {
        (name == "CPU" ? cpu : memory) = true;
        auto v = opt_int(r, "integerValue");
        if (type != "INTEGER" || !v || *v < 0) {
          return invalid_parameter("totalResources: " + name +
                                   " must be of type INTEGER with a non-negative integerValue.");
        }
      } else if (name == "PORTS" || name == "PORTS_UDP") {
        if (type != "STRINGSET") {
          return invalid_parameter("totalResources: " + name + " must be of type STRINGSET.");
        }
        if (auto* ports = opt_array(r, "stringSetValue")) {
          for (const auto& p : *ports) {
            std::string_view s = p.as_string();
            int v = 0;
            bool ok = !s.empty() && s.size() <= 5;
            for (char c : s) ok = ok && c >= '0' && c <= '9' && ((v = v * 10 + (c - '0')), true);
            if (!ok || v < 1 || v > 65535) {
              return invalid_parameter("totalResources: " + name + " has an invalid port '" +
                                       std::string(s) + "'.");
            }
          }
        } else {
          r["stringSetValue"] = json::array();
        }
      }
      // The Resource shape carries all value members; ECS returns zeros for the unused ones.
      for (const char* k : {"doubleValue", "longValue", "integerValue"}) {
        if (!r.contains(k)) r[k] = 0;
      }
      out.push_back(std::move(r));
    }
  }
  if (!cpu || !memory) {
    return invalid_parameter("totalResources must include CPU and MEMORY (type INTEGER).");
  }
  for (const char* ports : {"PORTS", "PORTS_UDP"}) {
    bool found = false;
    for (const auto& r : out) found |= r.as_object().at("name") == ports;
    if (!found) {
      out.push_back(json::object{{"name", ports},
                                 {"type", "STRINGSET"},
                                 {"doubleValue", 0},
                                 {"longValue", 0},
                                 {"integerValue", 0},
                                 {"stringSetValue", json::array()}});
    }
  }
  return out;
}

Result<json::value> register_instance(EcsContext& ctx, Placer& placer, const json::object& in) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  BERTH_TRY(Identity ident, parse_identity(ctx, in));
  BERTH_TRY(json::array resources, parse_resources(opt_array(in, "totalResources")));
  BERTH_TRY(json::array attrs, validate_attribute_list(opt_array(in, "attributes")));
  BERTH_TRY(json::array tags, validate_tags(opt_array(in, "tags")));
  std::optional<std::string> wanted_id;
  if (auto arn = opt_string(in, "containerInstanceArn"); arn && !arn->empty()) {
    BERTH_TRY(wanted_id, container_instance_id_from(ctx, cluster, *arn));
  }
  // Attributes ECS derives from the instance identity, unless the agent sent its own.
  auto add_default = [&](const char* name, const std::string& value) {
    if (value.empty()) return;
    for (const auto& a : attrs) {
      if (a.as_object().at("name") == name) return;
    }
    attrs.push_back(json::object{{"name", name}, {"value", value}});
  };
  add_default("ecs.availability-zone", ident.availability_zone);
  add_default("ecs.instance-type", ident.instance_type);
  add_default("ecs.ami-id", ident.image_id);

  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Doc cluster_doc, load_active_cluster(ctx, cluster));
    std::optional<Doc> existing;
    std::string id;
    std::optional<int64_t> ec2_index_revision;  // set when this call owns the index entry
    if (wanted_id) {
      id = *wanted_id;
      BERTH_TRY(existing, load_doc(ctx.store(), keys::instance(cluster, id)));
      if (existing && opt_string(existing->obj, "status") == "INACTIVE") {
        return client_error("Container instance " + id +
                            " was deregistered; register it again without containerInstanceArn.");
      }
    } else {
      // An agent that lost its saved ARN re-registers the same EC2 instance: reuse its record.
      // One point read through the ec2InstanceId index keeps registration cheap in big clusters.
      BERTH_TRY(auto by_ec2, load_doc(ctx.store(), keys::ec2_instance(cluster, ident.instance_id)));
      if (by_ec2) {
        std::string known(opt_string(by_ec2->obj, "id").value_or(""));
        BERTH_TRY(auto doc, load_doc(ctx.store(), keys::instance(cluster, known)));
        if (doc && opt_string(doc->obj, "status") != "INACTIVE") {
          id = known;
          existing = std::move(doc);
        }
      }
      if (id.empty()) id = make_uuid(ctx.rng()).erase(8, 1).erase(12, 1).erase(16, 1).erase(20, 1);
      ec2_index_revision = by_ec2 ? by_ec2->mod_revision : 0;
    }

    json::object ci = existing ? existing->obj : json::object{};
    ci["containerInstanceArn"] = ctx.container_instance_arn(cluster, id);
    ci["ec2InstanceId"] = ident.instance_id;
    ci["version"] = opt_int(ci, "version").value_or(0) + 1;
    if (auto* vi = opt_object(in, "versionInfo"))
      ci["versionInfo"] = *vi;
    else if (!ci.contains("versionInfo"))
      ci["versionInfo"] = json::object();
    ci["registeredResources"] = resources;
    // remainingResources and the task counts are derived from the tasks when rendered.
    ci.erase("remainingResources");
    ci.erase("runningTasksCount");
    ci.erase("pendingTasksCount");
    ci["status"] = "ACTIVE";
    ci["agentConnected"] = true;
    json::array merged = ci.contains("attributes") ? ci.at("attributes").as_array() : json::array();
    BERTH_CHECK(merge_attributes(merged, attrs, /*limit_custom=*/false));
    ci["attributes"] = std::move(merged);
    if (!ci.contains("registeredAt")) ci["registeredAt"] = ctx.now();
    if (!tags.empty() || !ci.contains("tags")) ci["tags"] = tags;
    if (!ci.contains("attachments")) ci["attachments"] = json::array();

    store::Txn txn;
    txn.compares.push_back({keys::instance(cluster, id), existing ? existing->mod_revision : 0});
    // Rewriting the cluster record orders this registration against a concurrent DeleteCluster.
    txn.compares.push_back({keys::cluster(cluster), cluster_doc.mod_revision});
    txn.ops.push_back(store::Op::put(keys::cluster(cluster), dump(cluster_doc.obj)));
    txn.ops.push_back(store::Op::put(keys::instance(cluster, id), dump(ci)));
    if (ec2_index_revision) {
      txn.compares.push_back({keys::ec2_instance(cluster, ident.instance_id), *ec2_index_revision});
      txn.ops.push_back(store::Op::put(keys::ec2_instance(cluster, ident.instance_id),
                                       dump(json::object{{"id", id}})));
    }
    auto rev = ctx.store().commit(txn);
    if (!rev.ok()) return rev.error();
    return json::object{
        {"containerInstance", render_instance(ci, placer.usage(cluster, id), true, false)}};
  });
}

// Counts tasks on the instance that have not stopped (tasks arrive with the placement issue).
Result<int64_t> active_tasks_on(const EcsContext& ctx, std::string_view cluster,
                                const std::string& arn) {
  store::RangeRequest req{keys::task_prefix(cluster), "", 0};
  auto r = ctx.store().range(req);
  if (!r.ok()) return store_failure(r.error());
  int64_t n = 0;
  for (const auto& kv : r->kvs) {
    boost::system::error_code ec;
    json::value v = json::parse(kv.value, ec);
    if (ec || !v.is_object()) continue;
    const auto& o = v.as_object();
    if (opt_string(o, "containerInstanceArn") == arn && opt_string(o, "lastStatus") != "STOPPED")
      ++n;
  }
  return n;
}

Result<json::value> deregister_instance(EcsContext& ctx, Placer& placer, const json::object& in) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  BERTH_TRY(std::string id, container_instance_id_from(
                                ctx, cluster, opt_string(in, "containerInstance").value_or("")));
  bool force = opt_bool(in, "force").value_or(false);
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Doc cluster_doc, load_active_cluster(ctx, cluster));
    (void)cluster_doc;
    BERTH_TRY(auto doc, load_doc(ctx.store(), keys::instance(cluster, id)));
    if (!doc) return client_error("Container instance not found: " + id + ".");
    if (opt_string(doc->obj, "status") == "INACTIVE")
      return json::object{{"containerInstance", doc->obj}};
    std::string arn = ctx.container_instance_arn(cluster, id);
    if (!force) {
      BERTH_TRY(int64_t n, active_tasks_on(ctx, cluster, arn));
      if (n > 0) {
        return invalid_parameter(
            "Found running tasks on the instance. Stop them first or use force.");
      }
    }
    doc->obj["status"] = "INACTIVE";
    doc->obj["agentConnected"] = false;
    doc->obj["version"] = opt_int(doc->obj, "version").value_or(0) + 1;
    BERTH_CHECK(replace_doc(ctx.store(), keys::instance(cluster, id), doc->obj, doc->mod_revision));
    return json::object{
        {"containerInstance", render_instance(doc->obj, placer.usage(cluster, id), true, false)}};
  });
}

}  // namespace

// The ContainerInstance shape: the stored registration plus what its tasks hold (remaining
// resources and task counts are derived, never stored, so they cannot drift from the tasks).
json::object render_instance(const json::object& stored, const InstanceUsage& usage, bool tags,
                             bool health) {
  json::object o = stored;
  o.erase("_berth");  // internal bookkeeping, not part of the shape
  if (!tags) o.erase("tags");
  json::array remaining;
  if (const json::array* reg = opt_array(stored, "registeredResources")) {
    for (const auto& rv : *reg) {
      json::object r = rv.as_object();
      auto name = opt_string(r, "name").value_or("");
      if (name == "CPU") r["integerValue"] = opt_int(r, "integerValue").value_or(0) - usage.cpu;
      if (name == "MEMORY")
        r["integerValue"] = opt_int(r, "integerValue").value_or(0) - usage.memory;
      if (name == "PORTS" || name == "PORTS_UDP") {
        // In ECS, remaining PORTS lists the ports that are taken.
        json::array& set = r["stringSetValue"].is_array() ? r["stringSetValue"].as_array()
                                                          : r["stringSetValue"].emplace_array();
        for (const auto& [port, _] : name == "PORTS" ? usage.tcp_ports : usage.udp_ports) {
          json::value p = json::string(std::to_string(port));
          if (std::find(set.begin(), set.end(), p) == set.end()) set.push_back(p);
        }
      }
      remaining.push_back(std::move(r));
    }
  }
  o["remainingResources"] = std::move(remaining);
  o["runningTasksCount"] = usage.running;
  o["pendingTasksCount"] = usage.pending;
  if (health) {
    bool ok = opt_bool(o, "agentConnected").value_or(false);
    o["healthStatus"] = json::object{{"overallStatus", ok ? "OK" : "INSUFFICIENT_DATA"},
                                     {"details", json::array()}};
  }
  return o;
}

namespace {

Result<json::value> describe_instances(EcsContext& ctx, Placer& placer, const json::object& in) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  BERTH_TRY(Doc cluster_doc, load_active_cluster(ctx, cluster));
  (void)cluster_doc;
  bool tags = false, health = false;
  if (auto* inc = opt_array(in, "include")) {
    for (const auto& v : *inc) {
      tags |= v.as_string() == "TAGS";
      health |= v.as_string() == "CONTAINER_INSTANCE_HEALTH";
    }
  }
  const json::array* refs = opt_array(in, "containerInstances");
  if (refs == nullptr || refs->empty())
    return invalid_parameter("containerInstances can not be empty.");
  if (refs->size() > 100)
    return invalid_parameter("containerInstances can have at most 100 items.");
  BERTH_TRY(Described d,
            describe_each(
                *refs,
                [&](std::string_view r) -> Result<std::optional<json::value>> {
                  auto id = container_instance_id_from(ctx, cluster, r);
                  if (!id.ok()) return std::optional<json::value>();
                  BERTH_TRY(auto doc, load_doc(ctx.store(), keys::instance(cluster, *id)));
                  if (!doc) return std::optional<json::value>();
                  return std::optional<json::value>(
                      render_instance(doc->obj, placer.usage(cluster, *id), tags, health));
                },
                [&](std::string_view r) { return ctx.container_instance_arn(cluster, r); }));
  return json::object{{"containerInstances", std::move(d.items)},
                      {"failures", std::move(d.failures)}};
}

Result<json::value> list_instances(EcsContext& ctx, Placer& placer, const json::object& in) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  BERTH_TRY(Doc cluster_doc, load_active_cluster(ctx, cluster));
  (void)cluster_doc;
  BERTH_TRY(size_t max, max_results_from(in));
  // The filter is the cluster query language, evaluated on the placer's typed view (the same
  // evaluation memberOf constraints get).
  std::optional<std::set<std::string>> matching;
  if (auto f = opt_string(in, "filter"); f && !f->empty()) {
    if (f->size() > 2000) return invalid_parameter("filter can be at most 2000 characters.");
    auto expr = scheduler::Expression::parse(*f);
    if (!expr.ok()) return invalid_parameter("filter: " + expr.error().message);
    matching.emplace();
    for (const auto& v : placer.instances(cluster)) {
      if (expr->matches(v)) matching->insert(v.id);
    }
  }
  std::optional<std::string> status;
  if (auto s = opt_string(in, "status")) status = std::string(*s);
  std::string prefix = keys::instance_prefix(cluster);
  BERTH_TRY(Page page,
            page_scan(ctx.store(), prefix, in, max,
                      [&](const store::KeyValue& kv) -> std::optional<json::value> {
                        if (matching && !matching->contains(kv.key.substr(prefix.size())))
                          return std::nullopt;
                        boost::system::error_code ec;
                        json::value v = json::parse(kv.value, ec);
                        if (ec || !v.is_object()) return std::nullopt;
                        auto st = opt_string(v.as_object(), "status").value_or("");
                        if (status ? st != *status : st == "INACTIVE") return std::nullopt;
                        return v.as_object().at("containerInstanceArn");
                      }));
  json::object out{{"containerInstanceArns", std::move(page.items)}};
  put_next_token(out, page);
  return out;
}

Result<json::value> update_state(EcsContext& ctx, Placer& placer, const json::object& in) {
  BERTH_TRY(std::string cluster, cluster_name_from(ctx, in));
  std::string status(opt_string(in, "status").value_or(""));
  if (status != "ACTIVE" && status != "DRAINING") {
    return invalid_parameter("Container instances can only be set to ACTIVE or DRAINING.");
  }
  const json::array* refs = opt_array(in, "containerInstances");
  if (refs == nullptr || refs->empty())
    return invalid_parameter("containerInstances can not be empty.");
  if (refs->size() > 10) return invalid_parameter("containerInstances can have at most 10 items.");
  return with_retries([&]() -> Result<json::value> {
    BERTH_TRY(Doc cluster_doc, load_active_cluster(ctx, cluster));
    (void)cluster_doc;
    json::array updated, failures;
    store::Txn txn;
    for (const auto& ref : *refs) {
      std::string_view r = ref.as_string();
      auto id = container_instance_id_from(ctx, cluster, r);
      std::optional<Doc> doc;
      if (id.ok()) {
        BERTH_TRY(doc, load_doc(ctx.store(), keys::instance(cluster, *id)));
      }
      if (!doc || opt_string(doc->obj, "status") == "INACTIVE") {
        failures.push_back(
            json::object{{"arn", r.starts_with("arn:") ? std::string(r)
                                                       : ctx.container_instance_arn(cluster, r)},
                         {"reason", "MISSING"}});
        continue;
      }
      if (opt_string(doc->obj, "status") != status) {
        doc->obj["status"] = status;
        doc->obj["version"] = opt_int(doc->obj, "version").value_or(0) + 1;
        txn.compares.push_back({keys::instance(cluster, *id), doc->mod_revision});
        txn.ops.push_back(store::Op::put(keys::instance(cluster, *id), dump(doc->obj)));
      }
      updated.push_back(render_instance(doc->obj, placer.usage(cluster, *id), false, false));
    }
    if (!txn.ops.empty()) {
      auto rev = ctx.store().commit(txn);
      if (!rev.ok()) return rev.error();
    }
    return json::object{{"containerInstances", std::move(updated)},
                        {"failures", std::move(failures)}};
  });
}

}  // namespace

void register_container_instance_actions(api::JsonService& s, EcsContext& ctx, Placer& placer) {
  s.add("RegisterContainerInstance", [&ctx, &placer](auto&, const json::object& in) {
    return register_instance(ctx, placer, in);
  });
  s.add("DeregisterContainerInstance", [&ctx, &placer](auto&, const json::object& in) {
    return deregister_instance(ctx, placer, in);
  });
  s.add("DescribeContainerInstances", [&ctx, &placer](auto&, const json::object& in) {
    return describe_instances(ctx, placer, in);
  });
  s.add("ListContainerInstances",
        [&ctx, &placer](auto&, const json::object& in) { return list_instances(ctx, placer, in); });
  s.add("UpdateContainerInstancesState",
        [&ctx, &placer](auto&, const json::object& in) { return update_state(ctx, placer, in); });
}

}  // namespace berth::server::ecs
