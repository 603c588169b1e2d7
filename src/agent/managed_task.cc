#include "agent/managed_task.h"

#include <boost/json/serialize.hpp>

#include "common/clock.h"

namespace berth::agent {

namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

std::string str(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}
const json::object& sub(const json::object& o, std::string_view k) {
  static const json::object kEmpty;
  auto* v = o.if_contains(k);
  return v && v->is_object() ? v->as_object() : kEmpty;
}
double now_epoch() { return epoch_seconds(std::chrono::system_clock::now()); }
std::optional<double> opt_num(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  if (v == nullptr || !v->is_number()) return std::nullopt;
  return v->to_number<double>();
}
const char* phase_name(int p) {
  static const char* kNames[] = {"starting", "running", "stopping", "stopped", "done"};
  return kNames[p];
}

}  // namespace

ManagedTask::ManagedTask(runtime::Driver& driver, TaskHost& host, const TaskConfig& config)
    : driver_(driver), host_(host), config_(config) {}

ManagedTask::ManagedTask(runtime::Driver& driver, TaskHost& host, const TaskConfig& config,
                         const json::object& desired)
    : ManagedTask(driver, host, config) {
  arn_ = str(desired, "taskArn");
  task_definition_ = sub(desired, "taskDefinition");
  overrides_ = sub(desired, "overrides");
  update(desired);
  plan_containers();
  // Checkpointed before the server is told the task is ours: a crash after that finds it.
  persist();
}

std::unique_ptr<ManagedTask> ManagedTask::restore(runtime::Driver& driver, TaskHost& host,
                                                  const TaskConfig& config, const json::object& s) {
  std::unique_ptr<ManagedTask> t(new ManagedTask(driver, host, config));
  t->restored_ = true;
  t->arn_ = str(s, "taskArn");
  t->task_definition_ = sub(s, "taskDefinition");
  t->overrides_ = sub(s, "overrides");
  t->plan_containers();
  std::string phase = str(s, "phase");
  for (int p = 0; p <= static_cast<int>(Phase::done); ++p) {
    if (phase == phase_name(p)) t->phase_ = static_cast<Phase>(p);
  }
  // A task the agent was stopping is stopped again: stop is idempotent.
  t->stop_code_ = str(s, "stopCode");
  t->stop_reason_ = str(s, "stopReason");
  t->desired_stop_ =
      s.contains("desiredStop") && s.at("desiredStop").is_bool() && s.at("desiredStop").as_bool();
  t->pull_started_ = opt_num(s, "pullStartedAt");
  t->pull_stopped_ = opt_num(s, "pullStoppedAt");
  t->started_at_ = opt_num(s, "startedAt");
  t->stopped_at_ = opt_num(s, "executionStoppedAt");
  if (auto* cs = s.if_contains("containers"); cs && cs->is_array()) {
    for (const auto& cv : cs->as_array()) {
      if (!cv.is_object()) continue;
      const auto& co = cv.as_object();
      Container* c = nullptr;
      for (auto& k : t->containers_) {
        if (k.plan.name == str(co, "name")) c = &k;
      }
      if (c == nullptr) {  // the plan failed (policy changed): keep enough to stop it
        t->containers_.push_back({});
        c = &t->containers_.back();
        c->plan.name = str(co, "name");
      }
      c->runtime_id = str(co, "runtimeId");
      auto b = [&](const char* k) {
        return co.contains(k) && co.at(k).is_bool() && co.at(k).as_bool();
      };
      c->created = b("created");
      c->started = b("started");
      c->exited = b("exited");
      if (auto e = opt_num(co, "exitCode")) c->exit_code = static_cast<int>(*e);
      c->reason = str(co, "reason");
      c->image_digest = str(co, "imageDigest");
      c->health = str(co, "health").empty() ? "UNKNOWN" : str(co, "health");
      if (auto* bs = co.if_contains("bindings"); bs && bs->is_array()) {
        for (const auto& bv : bs->as_array()) {
          const auto& bo = bv.as_object();
          runtime::PortBinding pb;
          pb.container_port = static_cast<uint16_t>(opt_num(bo, "containerPort").value_or(0));
          pb.host_port = static_cast<uint16_t>(opt_num(bo, "hostPort").value_or(0));
          pb.protocol =
              str(bo, "protocol") == "udp" ? runtime::Protocol::udp : runtime::Protocol::tcp;
          pb.host_ip = str(bo, "bindIP");
          c->bindings.push_back(pb);
        }
      }
    }
  }
  t->snapshot_ = s;
  return t;
}

ManagedTask::~ManagedTask() {
  if (thread_.joinable()) {
    abandon();
    thread_.join();
  }
}

void ManagedTask::start() {
  thread_ = std::thread([this] { run(); });
}

void ManagedTask::update(const json::object& desired) {
  if (str(desired, "desiredStatus") != "STOPPED") return;
  std::string reason = str(desired, "stoppedReason");
  {
    std::lock_guard lock(mu_);
    if (desired_stop_) return;
    desired_stop_ = true;
    desired_stop_reason_ = reason.empty() ? "Task stopped by the server" : reason;
    wake_ = true;
  }
  cv_.notify_all();
}

void ManagedTask::stop_requested(const std::string& reason) {
  update(json::object{{"desiredStatus", "STOPPED"}, {"stoppedReason", reason}});
}

void ManagedTask::poke(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    poked_.insert(id);
    wake_ = true;
  }
  cv_.notify_all();
}

void ManagedTask::stopped_acked() {
  {
    std::lock_guard lock(mu_);
    acked_ = true;
    wake_ = true;
  }
  cv_.notify_all();
}

void ManagedTask::abandon() {
  {
    std::lock_guard lock(mu_);
    abandon_ = true;
  }
  cv_.notify_all();
}

bool ManagedTask::done() {
  std::lock_guard lock(mu_);
  return done_;
}

json::object ManagedTask::snapshot() {
  std::lock_guard lock(mu_);
  return snapshot_;
}

void ManagedTask::plan_containers() {
  runtime::Labels labels{{"berth.task-arn", arn_},
                         {"berth.cluster", config_.cluster},
                         {"berth.container-instance", config_.instance_arn}};
  auto plan = plan_task(arn_, task_definition_, overrides_, config_.safety, labels);
  if (!plan.ok()) {
    // Keep the names so the report lists every container as STOPPED with the reason.
    if (auto* defs = task_definition_.if_contains("containerDefinitions");
        defs && defs->is_array()) {
      for (const auto& d : defs->as_array()) {
        if (!d.is_object()) continue;
        Container c;
        c.plan.name = str(d.as_object(), "name");
        c.exited = true;
        c.reason = plan.error().message;
        containers_.push_back(std::move(c));
      }
    }
    phase_ = Phase::stopping;
    stop_code_ = "TaskFailedToStart";
    stop_reason_ = "Task refused by the agent: " + plan.error().message;
    return;
  }
  for (auto& cp : plan->containers) {
    Container c;
    c.plan = std::move(cp);
    containers_.push_back(std::move(c));
  }
}

void ManagedTask::run() {
  if (restored_) readopt();
  while (true) {
    std::set<std::string> poked;
    bool acked;
    {
      std::unique_lock lock(mu_);
      cv_.wait_until(lock, next_wake(), [&] { return wake_ || abandon_; });
      if (abandon_) return;
      wake_ = false;
      if (desired_stop_ && phase_ < Phase::stopping) {
        phase_ = Phase::stopping;
        if (stop_reason_.empty()) stop_reason_ = desired_stop_reason_;
      }
      poked.swap(poked_);
      acked = acked_;
    }
    poked_now_ = std::move(poked);
    step(acked);
    if (phase_ == Phase::done) {
      std::lock_guard lock(mu_);
      done_ = true;
      return;
    }
  }
}

Clock::time_point ManagedTask::next_wake() const {
  auto now = Clock::now();
  if (phase_ == Phase::stopped) return now + 1h;  // waits for the acknowledgement
  if (phase_ == Phase::stopping) return now;
  auto wake = next_poll_;
  if (wake <= now) wake = now + config_.poll_interval;
  for (const auto& c : containers_) {
    if (c.plan.health && c.started && !c.exited) wake = std::min(wake, c.next_check);
    if (phase_ == Phase::starting && c.plan.start_timeout && c.started && !c.exited) {
      wake = std::min(wake, c.started_at + *c.plan.start_timeout);
    }
  }
  return std::max(wake, now);
}

void ManagedTask::step(bool acked) {
  if (phase_ == Phase::starting || phase_ == Phase::running) {
    bool poll = Clock::now() >= next_poll_;
    if (poll) next_poll_ = Clock::now() + config_.poll_interval;
    check_exits(poll);
    bool essential_exited = false, all_exited = true;
    for (const auto& c : containers_) {
      essential_exited |= c.plan.essential && c.exited;
      all_exited &= c.exited;
    }
    if (essential_exited) {
      fail("EssentialContainerExited", "Essential container in task exited");
    } else if (all_exited) {
      fail("EssentialContainerExited", "All containers in task exited");
    } else {
      if (phase_ == Phase::starting && start_ready_containers()) {
        bool all_started = true;
        for (const auto& c : containers_) all_started &= c.started || c.exited;
        if (all_started) {
          phase_ = Phase::running;
          if (!started_at_) started_at_ = now_epoch();
        }
      }
      if (phase_ == Phase::starting || phase_ == Phase::running) run_health_checks();
    }
    send_report();
    persist();
  }
  if (phase_ == Phase::stopping) {
    persist();  // a restart mid-stop stops again
    stop_all();
    phase_ = Phase::stopped;
    if (!stopped_at_) stopped_at_ = now_epoch();
    persist();
    send_report();
  }
  if (phase_ == Phase::stopped && acked) {
    remove_all();
    phase_ = Phase::done;
    host_.persist(arn_, nullptr);
  }
}

void ManagedTask::fail(std::string stop_code, std::string reason) {
  if (phase_ >= Phase::stopping) return;
  phase_ = Phase::stopping;
  if (stop_code_.empty()) stop_code_ = std::move(stop_code);
  if (stop_reason_.empty()) stop_reason_ = std::move(reason);
}

std::string ManagedTask::task_health() const {
  // ECS: only essential containers with a health check count; any UNHEALTHY makes the task
  // UNHEALTHY, all HEALTHY make it HEALTHY, anything else is UNKNOWN.
  bool any = false, all_healthy = true;
  for (const auto& c : containers_) {
    if (!c.plan.essential || !c.plan.health) continue;
    any = true;
    if (c.health == "UNHEALTHY") return "UNHEALTHY";
    all_healthy &= c.health == "HEALTHY";
  }
  return any && all_healthy ? "HEALTHY" : "UNKNOWN";
}

void ManagedTask::send_report() {
  // The server already holds PENDING; reporting only RUNNING and STOPPED (and changes while
  // RUNNING) keeps its writes per task at a handful.
  if (phase_ != Phase::running && phase_ != Phase::stopped) return;
  json::object r{{"task", arn_}, {"status", phase_ == Phase::running ? "RUNNING" : "STOPPED"}};
  if (phase_ == Phase::stopped) {
    if (!stop_code_.empty()) r["stopCode"] = stop_code_;
    if (!stop_reason_.empty()) r["reason"] = stop_reason_;
  }
  r["healthStatus"] = task_health();
  if (pull_started_) r["pullStartedAt"] = *pull_started_;
  if (pull_stopped_) r["pullStoppedAt"] = *pull_stopped_;
  if (started_at_) r["startedAt"] = *started_at_;
  if (stopped_at_) r["executionStoppedAt"] = *stopped_at_;
  json::array cs;
  for (const auto& c : containers_) {
    json::object o{{"containerName", c.plan.name},
                   {"status", c.exited    ? "STOPPED"
                              : c.started ? "RUNNING"
                                          : "PENDING"}};
    if (c.exit_code) o["exitCode"] = *c.exit_code;
    if (!c.reason.empty()) o["reason"] = c.reason;
    if (!c.runtime_id.empty()) o["runtimeId"] = c.runtime_id;
    if (!c.image_digest.empty()) o["imageDigest"] = c.image_digest;
    if (c.plan.health) o["healthStatus"] = c.health;
    json::array nb;
    for (const auto& b : c.bindings) {
      nb.push_back(
          json::object{{"bindIP", b.host_ip.empty() ? "0.0.0.0" : b.host_ip},
                       {"containerPort", static_cast<int64_t>(b.container_port)},
                       {"hostPort", static_cast<int64_t>(b.host_port)},
                       {"protocol", b.protocol == runtime::Protocol::udp ? "udp" : "tcp"}});
    }
    if (!nb.empty()) o["networkBindings"] = std::move(nb);
    cs.push_back(std::move(o));
  }
  r["containers"] = std::move(cs);
  std::string text = json::serialize(r);
  if (text == reported_) return;
  reported_ = std::move(text);
  host_.report(r);
}

json::object ManagedTask::snapshot_locked() const {
  json::object s{{"taskArn", arn_},
                 {"taskDefinition", task_definition_},
                 {"overrides", overrides_},
                 {"phase", phase_name(static_cast<int>(phase_))},
                 {"desiredStop", desired_stop_},
                 {"stopCode", stop_code_},
                 {"stopReason", stop_reason_}};
  if (pull_started_) s["pullStartedAt"] = *pull_started_;
  if (pull_stopped_) s["pullStoppedAt"] = *pull_stopped_;
  if (started_at_) s["startedAt"] = *started_at_;
  if (stopped_at_) s["executionStoppedAt"] = *stopped_at_;
  json::array cs;
  for (const auto& c : containers_) {
    json::object o{
        {"name", c.plan.name},           {"runtimeId", c.runtime_id}, {"created", c.created},
        {"started", c.started},          {"exited", c.exited},        {"reason", c.reason},
        {"imageDigest", c.image_digest}, {"health", c.health}};
    if (c.exit_code) o["exitCode"] = *c.exit_code;
    json::array bs;
    for (const auto& b : c.bindings) {
      bs.push_back(json::object{{"containerPort", static_cast<int64_t>(b.container_port)},
                                {"hostPort", static_cast<int64_t>(b.host_port)},
                                {"protocol", b.protocol == runtime::Protocol::udp ? "udp" : "tcp"},
                                {"bindIP", b.host_ip}});
    }
    o["bindings"] = std::move(bs);
    cs.push_back(std::move(o));
  }
  s["containers"] = std::move(cs);
  return s;
}

void ManagedTask::persist() {
  json::object s;
  {
    std::lock_guard lock(mu_);
    s = snapshot_locked();
    if (s == snapshot_) return;  // unchanged: no disk write
    snapshot_ = s;
  }
  host_.persist(arn_, &s);
}

}  // namespace berth::agent
