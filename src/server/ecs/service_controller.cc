#include "server/ecs/service_controller.h"

#include <tuple>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <cmath>
#include <map>
#include <set>

#include "scheduler/query.h"
#include "server/ecs/service_records.h"
#include "server/ecs/task_records.h"

namespace berth::server::ecs {

namespace {

// A service task as the controller sees it.
struct TaskInfo {
  struct Binding {
    std::string container;
    int64_t container_port = 0, host_port = 0;
  };
  std::string id, arn, deployment, instance, last, desired, health, stop_code, stopped_reason;
  double started_at = -1;
  std::vector<Binding> bindings;
  // Being deregistered from its load balancers before it is stopped (ECS's DEACTIVATING).
  bool deactivating = false;
  std::string deactivate_reason, deactivate_code;
  double deactivating_since = -1;
  bool live() const { return last != "STOPPED"; }
  bool wanted() const { return live() && desired == "RUNNING" && !deactivating; }
};

// A container instance as the controller sees it (from its record in the store).
struct InstanceInfo {
  std::string status;
  std::string ec2_id;
  std::string address = "127.0.0.1";  // attribute berth.host-address, if the agent sent one
  bool connected = true;
  double disconnected_at = -1;  // _berth.disconnectedAt, set by AgentSessions
};

// What one pass over a cluster shares between its services.
struct ClusterInfo {
  std::map<std::string, InstanceInfo> instances;  // by ARN
  std::vector<scheduler::InstanceView> views;     // the Placer's, for DAEMON constraints
  double lost_grace = 300;
};

// ECS's stoppedReason for service tasks stopped by an instance drain.
constexpr std::string_view kDrainReason = "Task stopped during instance draining";
constexpr std::string_view kLostReason =
    "Task stopped because its container instance lost its agent";

// ECS sends the steady-state event again after six hours without change.
constexpr double kSteadyEventInterval = 6 * 3600;
// Tasks started per service per pass; a pass runs about every second, so this bounds one pass's
// latency without limiting realistic scale-outs.
constexpr int kMaxLaunchesPerPass = 500;

std::string short_id(std::string_view arn) {
  auto slash = arn.rfind('/');
  return std::string(slash == std::string_view::npos ? arn : arn.substr(slash + 1));
}

std::string task_list(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) out += (out.empty() ? "" : " ") + std::string("(task ") + id + ")";
  return out;
}

std::string placement_reason(std::string_view reason) {
  if (reason == "RESOURCE:MEMORY") return "has insufficient memory available";
  if (reason == "RESOURCE:CPU") return "has insufficient CPU units available";
  if (reason == "RESOURCE:PORTS" || reason == "RESOURCE:PORTS_TCP" ||
      reason == "RESOURCE:PORTS_UDP")
    return "is already using a port required by your task";
  if (reason.starts_with("AGENT")) return "is not connected to its agent";
  if (reason.starts_with("ATTRIBUTE")) return "is missing an attribute required by your task";
  if (reason.starts_with("INACTIVE") || reason.starts_with("DRAINING")) return "is not ACTIVE";
  return "did not meet all of its requirements (" + std::string(reason) + ")";
}

// A stopped task counts against the circuit breaker unless a user or the scheduler stopped it on
// purpose (the scheduler's health-check stops do count).
bool failed(const TaskInfo& t) {
  if (t.live()) return false;
  if (t.stopped_reason.starts_with("Task failed")) return true;
  return t.stop_code != "UserInitiated" && t.stop_code != "ServiceSchedulerInitiated";
}

Status read_tasks(store::Store& store, const std::string& cluster,
                  std::map<std::string, std::vector<TaskInfo>>& by_group) {
  auto r = store.range({keys::task_prefix(cluster), "", 0});
  if (!r.ok()) return store_failure(r.error());
  for (const auto& kv : r->kvs) {
    boost::system::error_code ec;
    json::value v = json::parse(kv.value, ec);
    if (ec || !v.is_object()) continue;
    const auto& o = v.as_object();
    auto group = opt_string(o, "group").value_or("");
    if (!group.starts_with("service:")) continue;
    TaskInfo t;
    t.arn = opt_string(o, "taskArn").value_or("");
    t.id = short_id(t.arn);
    t.deployment = opt_string(o, "startedBy").value_or("");
    t.instance = opt_string(o, "containerInstanceArn").value_or("");
    t.last = opt_string(o, "lastStatus").value_or("");
    t.desired = opt_string(o, "desiredStatus").value_or("");
    t.health = opt_string(o, "healthStatus").value_or("UNKNOWN");
    t.stop_code = opt_string(o, "stopCode").value_or("");
    t.stopped_reason = opt_string(o, "stoppedReason").value_or("");
    if (auto* s = o.if_contains("startedAt"); s && s->is_number())
      t.started_at = s->to_number<double>();
    if (const json::array* cs = opt_array(o, "containers")) {
      for (const auto& c : *cs) {
        const json::object& co = c.as_object();
        const json::array* nbs = opt_array(co, "networkBindings");
        if (nbs == nullptr) continue;
        for (const auto& nb : *nbs) {
          const json::object& b = nb.as_object();
          t.bindings.push_back({std::string(opt_string(co, "name").value_or("")),
                                opt_int(b, "containerPort").value_or(0),
                                opt_int(b, "hostPort").value_or(0)});
        }
      }
    }
    if (const json::object* internal = opt_object(o, "_berth")) {
      if (const json::object* d = opt_object(*internal, "deactivating")) {
        t.deactivating = true;
        t.deactivate_reason = opt_string(*d, "reason").value_or("");
        t.deactivate_code = opt_string(*d, "code").value_or("ServiceSchedulerInitiated");
        if (auto* since = d->if_contains("since"); since && since->is_number())
          t.deactivating_since = since->to_number<double>();
      }
    }
    by_group[std::string(group.substr(8))].push_back(std::move(t));
  }
  return {};
}

Status read_instances(store::Store& store, const std::string& cluster, ClusterInfo& out) {
  auto r = store.range({"instances/" + cluster + "/", "", 0});
  if (!r.ok()) return store_failure(r.error());
  for (const auto& kv : r->kvs) {
    boost::system::error_code ec;
    json::value v = json::parse(kv.value, ec);
    if (ec || !v.is_object()) continue;
    const auto& o = v.as_object();
    InstanceInfo i;
    i.status = opt_string(o, "status").value_or("");
    i.connected = opt_bool(o, "agentConnected").value_or(false);
    i.ec2_id = opt_string(o, "ec2InstanceId").value_or("");
    if (const json::array* attrs = opt_array(o, "attributes")) {
      for (const auto& a : *attrs) {
        const json::object& ao = a.as_object();
        if (opt_string(ao, "name") == "berth.host-address")
          i.address = opt_string(ao, "value").value_or(i.address);
      }
    }
    if (const json::object* internal = opt_object(o, "_berth")) {
      if (auto* d = internal->if_contains("disconnectedAt"); d && d->is_number())
        i.disconnected_at = d->to_number<double>();
    }
    out.instances[std::string(opt_string(o, "containerInstanceArn").value_or(""))] = i;
  }
  return {};
}

// One of a service's loadBalancers with its target group and that group's targets.
struct LbBinding {
  std::string tg_arn, container;
  int64_t port = 0;
  TargetGroupInfo info;
  std::map<std::string, TargetState> targets;
};

class Pass {
 public:
  Pass(EcsContext& ctx, Placer& placer, const ClusterInfo& info, std::string cluster,
       std::string name, std::vector<TaskInfo> tasks)
      : ctx_(ctx),
        placer_(placer),
        info_(info),
        cluster_(std::move(cluster)),
        name_(std::move(name)),
        key_(keys::service_prefix(cluster_) + name_),
        tasks_(std::move(tasks)),
        now_(ctx.now()) {}

  Status run() {
    BERTH_TRY(auto doc, load_doc(ctx_.store(), key_));
    if (!doc) return {};
    json::object s = doc->obj;
    std::string status(opt_string(s, "status").value_or(""));
    if (status != "ACTIVE" && status != "DRAINING") return {};
    BERTH_CHECK(load_config(s));
    update_state(s);
    if (dump(s) != dump(doc->obj)) {
      auto w = replace_doc(ctx_.store(), key_, s, doc->mod_revision);
      if (!w.ok()) return w.error().code == store::Errc::conflict ? Status{} : w;  // next pass
    }
    if (opt_string(s, "status") == "INACTIVE") {
      // The last tasks are gone; a target one left behind (it died on its own) still leaves.
      std::vector<std::string> none;
      return settle_targets(none);
    }
    BERTH_CHECK(act(s));
    return write_events();
  }

 private:
  Status load_config(json::object& s) {
    daemon_ = opt_string(s, "schedulingStrategy") == "DAEMON";
    if (const json::array* ps = opt_array(s, "placementStrategy"); ps && !ps->empty()) {
      const json::object& first = ps->front().as_object();
      scale_in_type_ = std::string(opt_string(first, "type").value_or(""));
      scale_in_field_ = std::string(opt_string(first, "field").value_or(""));
    }
    if (daemon_) {
      BERTH_CHECK(find_daemon_instances(s));
      if (opt_string(s, "status") == "ACTIVE")
        s["desiredCount"] = static_cast<int64_t>(daemon_instances_.size());
    }
    desired_ = opt_int(s, "desiredCount").value_or(0);
    const json::object* dc = opt_object(s, "deploymentConfiguration");
    int64_t max_p = dc ? opt_int(*dc, "maximumPercent").value_or(200) : 200;
    int64_t min_p = dc ? opt_int(*dc, "minimumHealthyPercent").value_or(100) : 100;
    // ECS rounds maximumPercent down and minimumHealthyPercent up.
    max_total_ = desired_ * max_p / 100;
    min_healthy_ = (desired_ * min_p + 99) / 100;
    if (dc) {
      if (const json::object* cb = opt_object(*dc, "deploymentCircuitBreaker")) {
        breaker_ = opt_bool(*cb, "enable").value_or(false);
        rollback_ = opt_bool(*cb, "rollback").value_or(false);
      }
    }
    grace_ = static_cast<double>(opt_int(s, "healthCheckGracePeriodSeconds").value_or(0));
    BERTH_CHECK(load_balancers(s));
    BERTH_CHECK(load_owned_targets());
    for (const auto& d : s.at("deployments").as_array()) {
      std::string td(opt_string(d.as_object(), "taskDefinition").value_or(""));
      if (has_health_check_.contains(td)) continue;
      BERTH_TRY(auto def, find_task_definition(ctx_, td));
      bool hc = false;
      if (def) {
        for (const auto& c : def->at("containerDefinitions").as_array())
          hc |= c.as_object().contains("healthCheck");
      }
      has_health_check_[td] = hc;
    }
    return {};
  }

  // DAEMON: the ACTIVE instances that meet the service's memberOf constraints.
  Status find_daemon_instances(const json::object& s) {
    std::vector<scheduler::Expression> rules;
    if (const json::array* cs = opt_array(s, "placementConstraints")) {
      for (const auto& c : *cs) {
        auto expr = opt_string(c.as_object(), "expression");
        if (opt_string(c.as_object(), "type") != "memberOf" || !expr) continue;
        auto e = scheduler::Expression::parse(*expr);
        if (!e.ok()) return invalid_parameter(e.error().message);
        rules.push_back(std::move(*e));
      }
    }
    for (const auto& v : info_.views) {
      auto it = info_.instances.find(v.arn);
      if (it == info_.instances.end() || it->second.status != "ACTIVE") continue;
      bool ok = true;
      for (const auto& r : rules) ok = ok && r.matches(v);
      if (ok) daemon_instances_.insert(v.arn);
    }
    return {};
  }

  // The service's target groups and their targets, read once per pass. A target group deleted
  // since the service was created is skipped (nothing to register with or drain from).
  Status load_balancers(const json::object& s) {
    lb_ = ctx_.load_balancing();
    const json::array* lbs = opt_array(s, "loadBalancers");
    if (lb_ == nullptr || lbs == nullptr) return {};
    for (const auto& v : *lbs) {
      const json::object& o = v.as_object();
      LbBinding b;
      b.tg_arn = std::string(opt_string(o, "targetGroupArn").value_or(""));
      b.container = std::string(opt_string(o, "containerName").value_or(""));
      b.port = opt_int(o, "containerPort").value_or(0);
      BERTH_TRY(auto tg, lb_->target_group(b.tg_arn));
      if (!tg) continue;
      b.info = std::move(*tg);
      BERTH_TRY(b.targets, lb_->targets(b.tg_arn));
      lbs_.push_back(std::move(b));
    }
    return {};
  }

  // The targets this service's tasks registered, in any group: what must drain before they stop
  // (the service may have moved to other target groups since).
  Status load_owned_targets() {
    if (lb_ == nullptr) return {};
    std::set<std::string> arns;
    for (const auto& t : tasks_) arns.insert(t.arn);
    BERTH_TRY(owned_, lb_->targets_owned_by(arns));
    return {};
  }

  // Where the task serves `lb`'s container port: its instance and the host port Docker mapped.
  std::optional<TaskEndpoint> endpoint(const TaskInfo& t, const LbBinding& lb) const {
    auto it = info_.instances.find(t.instance);
    if (it == info_.instances.end()) return std::nullopt;
    for (const auto& b : t.bindings) {
      if (b.container == lb.container && b.container_port == lb.port && b.host_port > 0)
        return TaskEndpoint{it->second.ec2_id, it->second.address, b.host_port};
    }
    return std::nullopt;
  }

  // The task's own target in `lb` (a target at the same key registered by an earlier task that
  // had the same host port is not this task's).
  const TargetState* target_of(const TaskInfo& t, const LbBinding& lb) const {
    auto ep = endpoint(t, lb);
    if (!ep) return nullptr;
    auto it = lb.targets.find(lb_->target_key(lb.info, *ep));
    if (it == lb.targets.end() || it->second.owner != t.arn) return nullptr;
    return &it->second;
  }

  // Healthy behind every load balancer: each target registered, not draining, and healthy.
  bool lb_healthy(const TaskInfo& t) const {
    for (const auto& lb : lbs_) {
      const TargetState* ts = target_of(t, lb);
      if (ts == nullptr || ts->draining || ts->health != "healthy") return false;
    }
    return true;
  }

  // The first target group in which the task's target failed its health checks, or null.
  const LbBinding* lb_unhealthy(const TaskInfo& t) const {
    for (const auto& lb : lbs_) {
      const TargetState* ts = target_of(t, lb);
      if (ts != nullptr && !ts->draining && ts->health == "unhealthy") return &lb;
    }
    return nullptr;
  }

  bool has_active_targets(const TaskInfo& t) const {
    for (const auto& o : owned_) {
      if (o.state.owner == t.arn && !o.state.draining) return true;
    }
    return false;
  }

  Status deregister_owned(const TaskInfo& t) {
    for (auto& o : owned_) {
      if (o.state.owner != t.arn || o.state.draining) continue;
      BERTH_CHECK(lb_->deregister(o.tg_arn, o.key));
      o.state.draining = true;
      for (auto& lb : lbs_) {
        if (lb.tg_arn != o.tg_arn) continue;
        if (auto it = lb.targets.find(o.key); it != lb.targets.end()) it->second.draining = true;
      }
    }
    return {};
  }

  // Before a load-balanced task stops, its targets drain for the groups' deregistration delay;
  // the task keeps running meanwhile (the agent is not told) and is stopped by a later pass.
  Status deactivate(const TaskInfo& t, const std::string& reason) {
    auto r = with_retries([&]() -> Result<json::value> {
      std::string key = keys::task_prefix(cluster_) + t.id;
      BERTH_TRY(auto doc, load_doc(ctx_.store(), key));
      if (!doc || opt_string(doc->obj, "lastStatus") == "STOPPED" ||
          opt_string(doc->obj, "desiredStatus") != "RUNNING")
        return json::value();
      json::object& internal = doc->obj["_berth"].is_object() ? doc->obj["_berth"].as_object()
                                                              : doc->obj["_berth"].emplace_object();
      if (internal.contains("deactivating")) return json::value();
      internal["deactivating"] = json::object{{"reason", reason}, {"since", now_}};
      BERTH_CHECK(replace_doc(ctx_.store(), key, doc->obj, doc->mod_revision));
      return json::value();
    });
    if (!r.ok()) return r.error();
    BERTH_CHECK(deregister_owned(t));
    stopped_ids_.insert(t.id);
    ++draining_tasks_;
    return {};
  }

  // Load-balancer bookkeeping at the start of a pass: targets of tasks that stopped on their own
  // are deregistered, and deactivating tasks whose targets are gone (or that waited longer than
  // the delay allows) are stopped.
  // Also: targets of tasks that stopped, or are being stopped, by someone else (a crash,
  // StopTask) are deregistered; they cannot drain gracefully, but leave the rotation at once.
  Status settle_targets(std::vector<std::string>& stopped) {
    for (const auto& t : tasks_) {
      bool leaving = !t.live() || (t.desired != "RUNNING" && !t.deactivating);
      if (leaving) BERTH_CHECK(deregister_owned(t));
    }
    for (const auto& t : tasks_) {
      // Once told to stop (desiredStatus STOPPED), it only waits for its agent.
      if (!t.live() || !t.deactivating || t.desired != "RUNNING" || stopped_ids_.contains(t.id))
        continue;
      bool remaining = false;
      double longest = 0;
      for (const auto& o : owned_) {
        if (o.state.owner != t.arn) continue;
        remaining = true;
        longest = std::max(longest, o.deregistration_delay);
      }
      // The LB controller deletes targets once drained; the margin covers a late controller.
      if (remaining && now_ - t.deactivating_since <= longest + 30) continue;
      BERTH_CHECK(stop_now(t, t.deactivate_reason, stopped, t.deactivate_code));
    }
    return {};
  }

  // Registers RUNNING tasks that are not yet targets of the service's groups.
  Status register_targets() {
    for (auto& lb : lbs_) {
      int n = 0;
      for (const auto& t : tasks_) {
        if (!t.wanted() || t.last != "RUNNING" || stopped_ids_.contains(t.id)) continue;
        auto ep = endpoint(t, lb);
        if (!ep) continue;
        std::string key = lb_->target_key(lb.info, *ep);
        auto it = lb.targets.find(key);
        if (it != lb.targets.end() && !it->second.draining && it->second.owner == t.arn) continue;
        BERTH_CHECK(lb_->register_task(lb.info, *ep, t.arn));
        ++n;
      }
      if (n > 0) {
        events_.push_back("(service " + name_ + ") registered " + std::to_string(n) +
                          " targets in (target-group " + lb.tg_arn + ")");
      }
    }
    return {};
  }

  enum class Displaced { no, draining, lost };
  // A task on a DRAINING instance must move; one on a deregistered instance, or whose agent has
  // been away longer than the grace period, is lost.
  Displaced displaced(const TaskInfo& t) const {
    auto it = info_.instances.find(t.instance);
    if (it == info_.instances.end() || it->second.status == "INACTIVE") return Displaced::lost;
    const InstanceInfo& i = it->second;
    if (!i.connected && i.disconnected_at >= 0 && now_ - i.disconnected_at > info_.lost_grace)
      return Displaced::lost;
    if (i.status == "DRAINING") return Displaced::draining;
    return Displaced::no;
  }

  // Marks a lost task STOPPED here: its agent is not there to report it (if it comes back, it
  // stops the containers, as the task's desiredStatus is STOPPED).
  Status retire(const TaskInfo& t, std::vector<std::string>& stopped) {
    BERTH_CHECK(deregister_owned(t));
    auto r = with_retries([&]() -> Result<json::value> {
      std::string key = keys::task_prefix(cluster_) + t.id;
      BERTH_TRY(auto doc, load_doc(ctx_.store(), key));
      if (!doc || opt_string(doc->obj, "lastStatus") == "STOPPED") return json::value();
      mark_stopped(doc->obj, now_, "ServiceSchedulerInitiated", std::string(kLostReason));
      BERTH_CHECK(replace_doc(ctx_.store(), key, doc->obj, doc->mod_revision));
      return json::value();
    });
    if (!r.ok()) return r.error();
    stopped.push_back(t.id);
    stopped_ids_.insert(t.id);
    return {};
  }

  bool healthy(const TaskInfo& t, const std::string& td) const {
    if (t.last != "RUNNING" || t.desired != "RUNNING" || t.started_at < 0) return false;
    if (now_ - t.started_at < grace_) return false;
    if (!lb_healthy(t)) return false;
    auto it = has_health_check_.find(td);
    return it == has_health_check_.end() || !it->second || t.health == "HEALTHY";
  }

  std::string deployment_td(const std::string& id) const {
    return td_of_.contains(id) ? td_of_.at(id) : "";
  }

  // Counts, retired deployments, rollout states, the circuit breaker and the steady state: all
  // derived from the record and the tasks, written before any task is started or stopped.
  void update_state(json::object& s) {
    json::array& deployments = s["deployments"].as_array();
    auto index_tasks = [&] {
      td_of_.clear();
      for (const auto& d : deployments) {
        const auto& o = d.as_object();
        td_of_[std::string(o.at("id").as_string())] =
            std::string(o.at("taskDefinition").as_string());
      }
    };
    index_tasks();
    // Circuit breaker on the PRIMARY deployment while it rolls out.
    if (!deployments.empty()) {
      auto& p = deployments.front().as_object();
      std::string id(p.at("id").as_string());
      if (opt_string(p, "rolloutState") == "IN_PROGRESS") {
        int64_t n = 0;
        for (const auto& t : tasks_) n += t.deployment == id && failed(t);
        int64_t failed_tasks = std::max(n, opt_int(p, "failedTasks").value_or(0));
        if (failed_tasks != opt_int(p, "failedTasks").value_or(0)) {
          p["failedTasks"] = failed_tasks;
          p["updatedAt"] = now_;
        }
        int64_t threshold = std::clamp<int64_t>((desired_ + 1) / 2, 3, 200);
        if (breaker_ && failed_tasks >= threshold) {
          p["rolloutState"] = "FAILED";
          p["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start.";
          p["updatedAt"] = now_;
          events_.push_back("(service " + name_ + ") (deployment " + id +
                            ") deployment failed: tasks failed to start.");
          const json::object* internal = opt_object(s, "_berth");
          const json::object* last = internal ? opt_object(*internal, "lastCompleted") : nullptr;
          if (rollback_ && last && last->at("taskDefinition") != p.at("taskDefinition")) {
            p["status"] = "ACTIVE";
            s["taskDefinition"] = last->at("taskDefinition");
            json::object d = new_deployment(ctx_, s);
            d["rolloutStateReason"] =
                "ECS deployment circuit breaker: rolling back to deploymentId " +
                std::string(last->at("id").as_string()) + ".";
            events_.push_back("(service " + name_ + ") rolling back to deployment " +
                              std::string(last->at("id").as_string()) + ".");
            deployments.insert(deployments.begin(), std::move(d));
            index_tasks();
          }
        }
      }
    }
    // Per-deployment counts; old deployments without tasks are retired (INACTIVE, dropped).
    int64_t running = 0, pending = 0;
    for (const auto& t : tasks_) {
      if (!t.wanted()) continue;
      running += t.last == "RUNNING";
      pending += t.last != "RUNNING";
    }
    bool orphans = false;
    for (const auto& t : tasks_) orphans |= t.live() && !td_of_.contains(t.deployment);
    json::array kept;
    for (size_t i = 0; i < deployments.size(); ++i) {
      auto& d = deployments[i].as_object();
      std::string id(d.at("id").as_string());
      int64_t r = 0, p = 0, live = 0;
      for (const auto& t : tasks_) {
        if (t.deployment != id) continue;
        live += t.live();
        if (!t.wanted()) continue;
        r += t.last == "RUNNING";
        p += t.last != "RUNNING";
      }
      if (i > 0 && live == 0) continue;
      int64_t want = i == 0 ? desired_ : r + p;
      if (opt_int(d, "runningCount") != r || opt_int(d, "pendingCount") != p ||
          opt_int(d, "desiredCount") != want) {
        d["runningCount"] = r;
        d["pendingCount"] = p;
        d["desiredCount"] = want;
        d["updatedAt"] = now_;
      }
      if (i > 0) d["status"] = "ACTIVE";
      kept.push_back(std::move(d));
    }
    deployments = std::move(kept);
    index_tasks();
    s["runningCount"] = running;
    s["pendingCount"] = pending;
    if (opt_string(s, "status") == "DRAINING") {
      bool any = false;
      for (const auto& t : tasks_) any |= t.live();
      if (!any) s["status"] = "INACTIVE";
      return;
    }
    // The PRIMARY completes once it alone serves desiredCount healthy tasks.
    auto& p = deployments.front().as_object();
    std::string pid(p.at("id").as_string());
    int64_t primary_healthy = 0, primary_live = 0;
    for (const auto& t : tasks_) {
      if (t.deployment != pid) continue;
      primary_live += t.live();
      primary_healthy += healthy(t, deployment_td(pid));
    }
    bool alone = deployments.size() == 1 && !orphans;
    if (opt_string(p, "rolloutState") == "IN_PROGRESS" && alone && primary_healthy == desired_ &&
        primary_live == desired_) {
      p["rolloutState"] = "COMPLETED";
      p["rolloutStateReason"] = "ECS deployment " + pid + " completed.";
      p["updatedAt"] = now_;
      events_.push_back("(service " + name_ + ") (deployment " + pid + ") deployment completed.");
      json::object& internal =
          s["_berth"].is_object() ? s["_berth"].as_object() : s["_berth"].emplace_object();
      internal["lastCompleted"] =
          json::object{{"id", pid}, {"taskDefinition", p.at("taskDefinition")}};
    }
    json::object& internal =
        s["_berth"].is_object() ? s["_berth"].as_object() : s["_berth"].emplace_object();
    // Behind load balancers, steady also means every task's targets are healthy.
    bool steady = alone && running == desired_ && pending == 0 && primary_live == desired_ &&
                  (lbs_.empty() || primary_healthy == desired_);
    if (steady) {
      double last = internal.contains("steadyEventAt")
                        ? internal.at("steadyEventAt").to_number<double>()
                        : -1;
      if (!opt_bool(internal, "steady").value_or(false) || now_ - last >= kSteadyEventInterval) {
        events_.push_back("(service " + name_ + ") has reached a steady state.");
        internal["steady"] = true;
        internal["steadyEventAt"] = now_;
      }
    } else if (opt_bool(internal, "steady").value_or(false)) {
      internal["steady"] = false;
    }
    // Events decided here go in with the state change, in the order they happened.
    for (auto& e : events_) add_service_event(ctx_, s, std::move(e));
    events_.clear();
  }

  Status stop(const TaskInfo& t, const std::string& reason, std::vector<std::string>& stopped) {
    if (!t.deactivating && has_active_targets(t)) return deactivate(t, reason);
    return stop_now(t, reason, stopped);
  }

  Status stop_now(const TaskInfo& t, const std::string& reason, std::vector<std::string>& stopped,
                  const std::string& code = "ServiceSchedulerInitiated") {
    BERTH_TRY(json::object rec, stop_task_record(ctx_, cluster_, t.id, code, reason));
    if (opt_string(rec, "lastStatus") == "STOPPED") {
      --live_total_;
      gone_ids_.insert(t.id);
    }
    stopped.push_back(t.id);
    stopped_ids_.insert(t.id);
    return {};
  }

  // Picks `n` of `candidates` to stop: not yet RUNNING first, then following the service's
  // placement strategy in reverse, as ECS scales in: binpack(F) stops tasks on the instance with
  // the most F left (consolidating the rest); spread(attribute:X) stops from the X value holding
  // most of the service's tasks; otherwise (spread instanceId/host, random, none) from the
  // instance holding most of them. Ties: the instance with most tasks, then the newest task.
  std::vector<const TaskInfo*> choose_victims(std::vector<const TaskInfo*> candidates, int64_t n) {
    std::vector<const TaskInfo*> out;
    std::map<std::string, int> per_instance;
    for (const auto& t : tasks_) per_instance[t.instance] += t.wanted();
    std::map<std::string, const scheduler::InstanceView*> views;
    for (const auto& v : info_.views) views[v.arn] = &v;
    bool binpack = scale_in_type_ == "binpack";
    std::string attribute;
    if (scale_in_type_ == "spread" && scale_in_field_.starts_with("attribute:")) {
      attribute = scale_in_field_.substr(10);
    }
    auto bucket_of = [&](const std::string& instance) -> std::string {
      auto it = views.find(instance);
      if (it == views.end()) return "";
      for (const auto& a : it->second->attributes) {
        if (a.name == attribute) return a.value.value_or("");
      }
      return "";
    };
    std::map<std::string, int> per_bucket;
    if (!attribute.empty()) {
      for (const auto& t : tasks_) per_bucket[bucket_of(t.instance)] += t.wanted();
    }
    auto left = [&](const std::string& instance) -> int64_t {
      auto it = views.find(instance);
      if (it == views.end()) return 0;
      return scale_in_field_ == "cpu" ? it->second->cpu_remaining : it->second->memory_remaining;
    };
    auto primary = [&](const TaskInfo* t) -> int64_t {
      if (binpack) return left(t->instance);
      if (!attribute.empty()) return per_bucket[bucket_of(t->instance)];
      return per_instance[t->instance];
    };
    while (static_cast<int64_t>(out.size()) < n && !candidates.empty()) {
      auto best = candidates.begin();
      for (auto it = candidates.begin(); it != candidates.end(); ++it) {
        bool it_pending = (*it)->last != "RUNNING", best_pending = (*best)->last != "RUNNING";
        if (it_pending != best_pending) {
          if (it_pending) best = it;
          continue;
        }
        auto key = [&](const TaskInfo* t) {
          return std::tuple(primary(t), per_instance[t->instance], t->started_at);
        };
        if (key(*it) > key(*best)) best = it;
      }
      --per_instance[(*best)->instance];
      if (!attribute.empty()) --per_bucket[bucket_of((*best)->instance)];
      out.push_back(*best);
      candidates.erase(best);
    }
    return out;
  }

  Status act(const json::object& s) {
    const json::array& deployments = s.at("deployments").as_array();
    std::vector<std::string> stopped;
    live_total_ = 0;
    for (const auto& t : tasks_) live_total_ += t.live() && displaced(t) != Displaced::lost;
    // Lost tasks already on their way out, and (DAEMON: all) lost tasks, have nothing to wait
    // for: no agent will report them.
    for (const auto& t : tasks_) {
      if (t.live() && displaced(t) == Displaced::lost &&
          (!t.wanted() || daemon_ || opt_string(s, "status") == "DRAINING"))
        BERTH_CHECK(retire(t, stopped));
    }
    BERTH_CHECK(settle_targets(stopped));
    if (opt_string(s, "status") == "DRAINING") {
      for (const auto& t : tasks_) {
        if (t.wanted() && !stopped_ids_.contains(t.id))
          BERTH_CHECK(stop(t, "Service is being deleted", stopped));
      }
      return note_stopped(stopped);
    }
    const auto& primary = deployments.front().as_object();
    std::string pid(primary.at("id").as_string());
    std::string ptd(primary.at("taskDefinition").as_string());
    bool primary_failed = opt_string(primary, "rolloutState") == "FAILED";
    // Tasks whose containers fail their health checks are replaced; PENDING tasks on a DRAINING
    // instance stop at once (as do DAEMON tasks on an instance the service no longer covers).
    for (const auto& t : tasks_) {
      if (!t.wanted() || stopped_ids_.contains(t.id)) continue;
      Displaced d = displaced(t);
      if (d == Displaced::lost) continue;
      const LbBinding* sick = nullptr;
      if (t.last == "RUNNING" && t.started_at >= 0 && now_ - t.started_at >= grace_)
        sick = lb_unhealthy(t);
      if (t.last == "RUNNING" && t.health == "UNHEALTHY" && t.started_at >= 0 &&
          now_ - t.started_at >= grace_) {
        BERTH_CHECK(stop(t, "Task failed container health checks", stopped));
      } else if (sick != nullptr) {
        const TargetState* ts = target_of(t, *sick);
        events_.push_back("(service " + name_ + ", taskSet " + t.deployment + ") (port " +
                          std::to_string(ts ? ts->port : 0) + ") is unhealthy in (target-group " +
                          sick->tg_arn + ") due to (reason " +
                          (ts && !ts->reason.empty() ? ts->reason : "Health checks failed") + ").");
        BERTH_CHECK(stop(t, "Task failed ELB health checks in (target-group " + sick->tg_arn + ")",
                         stopped));
      } else if (d == Displaced::draining && (daemon_ || t.last != "RUNNING")) {
        BERTH_CHECK(stop(t, std::string(kDrainReason), stopped));
      } else if (daemon_ && !daemon_instances_.contains(t.instance)) {
        BERTH_CHECK(stop(t,
                         "Container instance no longer meets the service's placement "
                         "constraints",
                         stopped));
      }
    }
    int64_t healthy_total = 0;
    std::vector<const TaskInfo*> old_healthy, old_other, primary_wanted, drained_healthy,
        drained_other, lost;
    std::map<std::string, std::vector<const TaskInfo*>> primary_on;  // DAEMON: by instance
    for (const auto& t : tasks_) {
      if (stopped_ids_.contains(t.id) || !t.wanted()) continue;
      Displaced d = displaced(t);
      if (d == Displaced::lost) {
        lost.push_back(&t);
        continue;
      }
      bool h = healthy(t, deployment_td(t.deployment));
      healthy_total += h;
      if (d == Displaced::draining) {
        (h ? drained_healthy : drained_other).push_back(&t);
      } else if (t.deployment == pid) {
        primary_wanted.push_back(&t);
        primary_on[t.instance].push_back(&t);
      } else {
        (h ? old_healthy : old_other).push_back(&t);
      }
    }
    // RUNNING tasks on a DRAINING instance: those not yet healthy go at once, healthy ones as far
    // as minimumHealthyPercent allows (their replacements start below, within maximumPercent).
    int64_t can_stop = std::max<int64_t>(0, healthy_total - min_healthy_);
    for (const TaskInfo* t : drained_other)
      BERTH_CHECK(stop(*t, std::string(kDrainReason), stopped));
    auto drained = choose_victims(drained_healthy, can_stop);
    can_stop -= static_cast<int64_t>(drained.size());
    for (const TaskInfo* t : drained) BERTH_CHECK(stop(*t, std::string(kDrainReason), stopped));
    if (!primary_failed) {
      // Old deployments: tasks not yet healthy go at once; healthy ones as far as
      // minimumHealthyPercent allows.
      for (const TaskInfo* t : old_other) BERTH_CHECK(stop(*t, "Deployment replaced", stopped));
      for (const TaskInfo* t : choose_victims(old_healthy, can_stop))
        BERTH_CHECK(stop(*t, "Deployment replaced", stopped));
    }
    int64_t primary_count = static_cast<int64_t>(primary_wanted.size());
    if (daemon_) {
      // One task per instance: extras go.
      for (auto& [instance, list] : primary_on) {
        for (size_t i = 1; i < list.size(); ++i)
          BERTH_CHECK(
              stop(*list[i], "Scaling activity initiated by (deployment " + pid + ")", stopped));
      }
    } else if (primary_count > desired_) {
      for (const TaskInfo* t : choose_victims(primary_wanted, primary_count - desired_))
        BERTH_CHECK(stop(*t, "Scaling activity initiated by (deployment " + pid + ")", stopped));
    }
    // Lost tasks are marked STOPPED once their replacements exist.
    if (!daemon_ && primary_count >= desired_) {
      for (const TaskInfo* t : lost) BERTH_CHECK(retire(*t, stopped));
    }
    BERTH_CHECK(note_stopped(stopped));
    BERTH_CHECK(register_targets());
    if (primary_failed) return {};
    json::object req{{"cluster", cluster_},
                     {"taskDefinition", ptd},
                     {"group", "service:" + name_},
                     {"startedBy", pid},
                     {"placementStrategy", s.at("placementStrategy")},
                     {"placementConstraints", s.at("placementConstraints")}};
    if (daemon_) {
      // An eligible instance gets its task once nothing of the service is left on it.
      std::set<std::string> occupied;
      for (const auto& t : tasks_) {
        if (t.live() && !gone_ids_.contains(t.id) && !(displaced(t) == Displaced::lost))
          occupied.insert(t.instance);
      }
      std::vector<std::string> targets;
      int64_t budget = std::min(max_total_ - live_total_, int64_t{kMaxLaunchesPerPass});
      for (const auto& arn : daemon_instances_) {
        if (static_cast<int64_t>(targets.size()) >= budget) break;
        if (!occupied.contains(arn)) targets.push_back(arn);
      }
      if (targets.empty()) return {};
      BERTH_TRY(json::value out, launch_tasks_on(ctx_, placer_, req, targets));
      return note_launched(s, out, static_cast<int64_t>(targets.size()));
    }
    int64_t start = std::min(
        {desired_ - primary_count, max_total_ - live_total_, int64_t{kMaxLaunchesPerPass}});
    if (start <= 0) return {};
    BERTH_TRY(json::value out, launch_tasks(ctx_, placer_, req, static_cast<int>(start)));
    return note_launched(s, out, start);
  }

  // ECS's events for a launch: the tasks started, and why the rest could not be placed.
  Status note_launched(const json::object& s, const json::value& out, int64_t wanted) {
    std::vector<std::string> started;
    for (const auto& t : out.at("tasks").as_array())
      started.push_back(short_id(t.at("taskArn").as_string()));
    if (!started.empty()) {
      events_.push_back("(service " + name_ + ") has started " + std::to_string(started.size()) +
                        " tasks: " + task_list(started) + ".");
    }
    if (static_cast<int64_t>(started.size()) < wanted) {
      const json::array& failures = out.at("failures").as_array();
      std::string why = failures.empty()
                            ? "Reason: No Container Instances were found in your cluster."
                            : "The closest matching (container-instance " +
                                  short_id(failures.front().at("arn").as_string()) + ") " +
                                  placement_reason(failures.front().at("reason").as_string()) + ".";
      std::string msg = "(service " + name_ +
                        ") was unable to place a task because no container instance met all of "
                        "its requirements. " +
                        why + " For more information, see the Troubleshooting section.";
      // Not repeated while nothing else happens, so a stuck service does not flood its events.
      const json::array* ev = opt_array(s, "events");
      bool repeat = ev && !ev->empty() && ev->front().at("message").as_string() == msg;
      if (!repeat) events_.push_back(std::move(msg));
    }
    return {};
  }

  Status note_stopped(const std::vector<std::string>& stopped) {
    if (draining_tasks_ > 0) {
      events_.push_back("(service " + name_ + ") has begun draining connections on " +
                        std::to_string(draining_tasks_) + " tasks.");
      draining_tasks_ = 0;
    }
    if (!stopped.empty()) {
      events_.push_back("(service " + name_ + ") has stopped " + std::to_string(stopped.size()) +
                        " running tasks: " + task_list(stopped) + ".");
    }
    return {};
  }

  Status write_events() {
    if (events_.empty()) return {};
    auto r = with_retries([&]() -> Result<json::value> {
      BERTH_TRY(auto doc, load_doc(ctx_.store(), key_));
      if (!doc) return json::value();
      for (const auto& e : events_) add_service_event(ctx_, doc->obj, e);
      BERTH_CHECK(replace_doc(ctx_.store(), key_, doc->obj, doc->mod_revision));
      return json::value();
    });
    if (!r.ok()) return r.error();
    return {};
  }

  EcsContext& ctx_;
  Placer& placer_;
  const ClusterInfo& info_;
  std::string cluster_, name_, key_;
  std::vector<TaskInfo> tasks_;
  double now_;
  int64_t desired_ = 0, max_total_ = 0, min_healthy_ = 0, live_total_ = 0;
  bool breaker_ = false, rollback_ = false;
  double grace_ = 0;
  std::map<std::string, bool> has_health_check_;  // by task definition ARN
  std::map<std::string, std::string> td_of_;      // deployment id -> task definition ARN
  std::set<std::string> stopped_ids_;             // stopped (or stopping) by this pass
  std::set<std::string> gone_ids_;                // STOPPED by this pass (no agent had them)
  bool daemon_ = false;
  std::set<std::string> daemon_instances_;      // DAEMON: ARNs of the instances it covers
  std::string scale_in_type_, scale_in_field_;  // the service's first placement strategy
  std::vector<std::string> events_;
  LoadBalancing* lb_ = nullptr;
  std::vector<LbBinding> lbs_;
  std::vector<OwnedTarget> owned_;
  int draining_tasks_ = 0;  // deactivated by this pass, for the "begun draining" event
};

}  // namespace

Status ServiceController::reconcile_service(const std::string& cluster, const std::string& name) {
  std::map<std::string, std::vector<TaskInfo>> by_group;
  BERTH_CHECK(read_tasks(ctx_.store(), cluster, by_group));
  ClusterInfo info;
  info.lost_grace = static_cast<double>(agent_lost_grace_.count());
  BERTH_CHECK(read_instances(ctx_.store(), cluster, info));
  info.views = placer_.instances(cluster);
  return Pass(ctx_, placer_, info, cluster, name, std::move(by_group[name])).run();
}

Status ServiceController::reconcile_once() {
  Status first;
  auto clusters = ctx_.store().range({std::string(keys::kClusters), "", 0});
  if (!clusters.ok()) return store_failure(clusters.error());
  for (const auto& c : clusters->kvs) {
    std::string cluster = c.key.substr(keys::kClusters.size());
    auto services = ctx_.store().range({keys::service_prefix(cluster), "", 0});
    if (!services.ok()) return store_failure(services.error());
    if (services->kvs.empty()) continue;
    std::map<std::string, std::vector<TaskInfo>> by_group;
    BERTH_CHECK(read_tasks(ctx_.store(), cluster, by_group));
    ClusterInfo info;
    info.lost_grace = static_cast<double>(agent_lost_grace_.count());
    BERTH_CHECK(read_instances(ctx_.store(), cluster, info));
    info.views = placer_.instances(cluster);
    for (const auto& kv : services->kvs) {
      if (kv.value.find("\"status\":\"INACTIVE\"") != std::string::npos) continue;  // fast skip
      std::string name = kv.key.substr(keys::service_prefix(cluster).size());
      auto r = Pass(ctx_, placer_, info, cluster, name, std::move(by_group[name])).run();
      if (!r.ok() && first.ok()) first = r;
    }
  }
  return first;
}

void ServiceController::start(std::chrono::milliseconds period) {
  std::vector<std::string> prefixes{"services/", "tasks/", "instances/"};
  if (LoadBalancing* lb = ctx_.load_balancing()) prefixes.push_back(lb->targets_prefix());
  loop_.start(ctx_.store(), prefixes, period);
}

void ServiceController::stop() { loop_.stop(); }

}  // namespace berth::server::ecs
