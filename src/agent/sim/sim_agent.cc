#include "agent/sim/sim_agent.h"

#include "agent/capabilities.h"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>

namespace berth::agent::sim {

namespace json = boost::json;
using std::chrono::milliseconds;

namespace {

const json::object* obj(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_object() ? &v->as_object() : nullptr;
}
std::string str(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}
int64_t num(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_int64() ? v->as_int64() : 0;
}

// The same capability attributes as the real agent, so task definitions' requiresAttributes
// place on simulated instances exactly as on real ones.
void add_capabilities(json::array& attrs) {
  for (const auto& c : capability_attributes()) attrs.push_back(json::object{{"name", c}});
}

}  // namespace

SimAgent::SimAgent(const SimOptions& options, size_t index, const Clock& clock)
    : options_(options),
      index_(index),
      clock_(clock),
      // Each instance its own stream, a function of the fleet seed and its index only, so an
      // instance behaves the same whatever the others (and the thread interleaving) do.
      rng_(options.seed * 0x9E3779B97F4A7C15ULL + index),
      last_heartbeat_(clock.now()) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "i-5%06llx%010zx",
                static_cast<unsigned long long>(options.seed & 0xFFFFFF), index);
  instance_id_ = buf;
  int azs = std::max(1, options.az_count);
  az_ = options.region + static_cast<char>('a' + index % azs);
}

json::object SimAgent::registration(const std::string& cluster) const {
  json::array resources{
      json::object{{"name", "CPU"}, {"type", "INTEGER"}, {"integerValue", options_.cpu}},
      json::object{{"name", "MEMORY"}, {"type", "INTEGER"}, {"integerValue", options_.memory}},
      json::object{{"name", "PORTS"},
                   {"type", "STRINGSET"},
                   {"stringSetValue", json::array{"22", "2375", "2376", "51678", "51679"}}},
      json::object{
          {"name", "PORTS_UDP"}, {"type", "STRINGSET"}, {"stringSetValue", json::array{}}}};
  json::array attrs{json::object{{"name", "ecs.os-type"}, {"value", "linux"}},
                    json::object{{"name", "ecs.cpu-architecture"}, {"value", "x86_64"}},
                    json::object{{"name", "ecs.availability-zone"}, {"value", az_}},
                    json::object{{"name", "ecs.instance-type"}, {"value", "berth.sim"}}};
  add_capabilities(attrs);
  json::object identity{
      {"instanceId", instance_id_}, {"availabilityZone", az_}, {"instanceType", "berth.sim"}};
  return json::object{{"cluster", cluster},
                      {"totalResources", std::move(resources)},
                      {"attributes", std::move(attrs)},
                      {"versionInfo", json::object{{"agentVersion", "berth-sim-agent 0.1.0"},
                                                   {"agentHash", "berth"},
                                                   {"dockerVersion", "DockerVersion: simulated"}}},
                      {"instanceIdentityDocument", json::serialize(identity)}};
}

std::vector<std::string> SimAgent::on_connected() {
  inflight_.clear();
  std::vector<std::string> out;
  for (auto& [arn, p] : outbox_) out.push_back(send(arn, p));
  return out;
}

std::vector<std::string> SimAgent::handle(std::string_view text) {
  std::vector<std::string> out;
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return out;
  const json::object& m = v.as_object();
  std::string type = str(m, "type");
  if (type == "tasks") {
    const auto* list = m.if_contains("tasks");
    json::array arns;
    std::map<std::string, bool> listed;
    if (list && list->is_array()) {
      for (const auto& tv : list->as_array()) {
        if (!tv.is_object()) continue;
        const json::object& t = tv.as_object();
        std::string arn = str(t, "taskArn");
        if (arn.empty()) continue;
        arns.emplace_back(arn);
        listed[arn] = true;
        auto it = tasks_.find(arn);
        if (str(t, "desiredStatus") != "STOPPED") {
          if (it == tasks_.end()) add_task(arn, t);
          continue;
        }
        // Stop requested: a task never started here, or one starting or running, stops now.
        if (it == tasks_.end()) {
          if (str(t, "lastStatus") == "STOPPED") continue;
          add_task(arn, t);
          it = tasks_.find(arn);
        }
        if (it->second.phase != Phase::stopped) {
          it->second.phase = Phase::stopped;
          out.push_back(submit(arn, report(arn, it->second, false)));
        }
      }
    }
    // The message is the full desired state: tasks absent from it are done with, once their
    // last report has been acknowledged.
    for (auto it = tasks_.begin(); it != tasks_.end();) {
      if (!listed.contains(it->first) && !outbox_.contains(it->first)) {
        it = tasks_.erase(it);
      } else {
        ++it;
      }
    }
    json::object ack{{"type", "ack"},
                     {"seq", m.contains("seq") ? m.at("seq") : json::value(0)},
                     {"tasks", std::move(arns)}};
    out.insert(out.begin(), json::serialize(ack));
  } else if (type == "state_ack") {
    uint64_t seq =
        m.contains("seq") && m.at("seq").is_number() ? m.at("seq").to_number<uint64_t>() : 0;
    auto it = inflight_.find(seq);
    if (it == inflight_.end()) return out;
    std::string arn = it->second;
    inflight_.erase(it);
    auto p = outbox_.find(arn);
    // A newer report replaced this one: that one waits for its own acknowledgement.
    if (p != outbox_.end() && p->second.seq == seq) outbox_.erase(p);
  }
  return out;
}

std::vector<std::string> SimAgent::tick() {
  std::vector<std::string> out;
  auto now = clock_.now();
  for (auto& [arn, t] : tasks_) {
    if (t.phase != Phase::starting || t.due > now) continue;
    t.phase = t.fails ? Phase::stopped : Phase::running;
    t.started_at = epoch_seconds(now);
    out.push_back(submit(arn, report(arn, t, t.fails)));
  }
  if (now - last_heartbeat_ >= options_.heartbeat) {
    last_heartbeat_ = now;
    out.emplace_back(R"({"type":"heartbeat"})");
  }
  return out;
}

std::chrono::system_clock::time_point SimAgent::next_due() const {
  auto due = last_heartbeat_ + options_.heartbeat;
  for (const auto& [arn, t] : tasks_) {
    if (t.phase == Phase::starting && t.due < due) due = t.due;
  }
  return due;
}

size_t SimAgent::running() const {
  size_t n = 0;
  for (const auto& [arn, t] : tasks_) n += t.phase == Phase::running;
  return n;
}

void SimAgent::add_task(const std::string& arn, const json::object& desired) {
  Task t;
  auto mean = options_.start_latency.count();
  std::uniform_int_distribution<int64_t> latency(mean / 2, mean + mean / 2);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  t.due = clock_.now() + milliseconds(latency(rng_));
  t.fails = unit(rng_) < options_.failure_rate;
  if (const json::object* td = obj(desired, "taskDefinition")) {
    const auto* defs = td->if_contains("containerDefinitions");
    if (defs && defs->is_array()) {
      for (const auto& dv : defs->as_array()) {
        if (!dv.is_object()) continue;
        const json::object& d = dv.as_object();
        Container c;
        c.name = str(d, "name");
        char id[40];
        std::snprintf(id, sizeof id, "%016llx%016llx", static_cast<unsigned long long>(rng_()),
                      static_cast<unsigned long long>(rng_()));
        c.runtime_id = id;
        c.health_check = d.contains("healthCheck");
        const auto* pms = d.if_contains("portMappings");
        if (pms && pms->is_array()) {
          for (const auto& pv : pms->as_array()) {
            if (!pv.is_object()) continue;
            const json::object& pm = pv.as_object();
            Port p;
            p.container = num(pm, "containerPort");
            p.host = num(pm, "hostPort");
            if (p.host == 0) p.host = next_host_port_++;
            if (next_host_port_ > 60999) next_host_port_ = 32768;
            p.protocol = str(pm, "protocol").empty() ? "tcp" : str(pm, "protocol");
            c.ports.push_back(std::move(p));
          }
        }
        t.containers.push_back(std::move(c));
      }
    }
  }
  tasks_[arn] = std::move(t);
}

json::object SimAgent::report(const std::string& arn, const Task& t, bool failed) const {
  bool running = t.phase == Phase::running;
  bool any_health = false;
  json::array cs;
  for (size_t i = 0; i < t.containers.size(); ++i) {
    const Container& c = t.containers[i];
    json::object o{{"containerName", c.name},
                   {"status", running ? "RUNNING" : "STOPPED"},
                   {"runtimeId", c.runtime_id}};
    if (!running) {
      // A failed start: the first (essential) container exited 1; the rest were stopped.
      o["exitCode"] = failed && i == 0 ? 1 : 0;
      if (failed && i == 0) o["reason"] = "simulated failure";
    }
    if (c.health_check) {
      any_health = true;
      o["healthStatus"] = running ? "HEALTHY" : "UNKNOWN";
    }
    json::array nb;
    for (const auto& p : c.ports) {
      nb.push_back(json::object{{"bindIP", "0.0.0.0"},
                                {"containerPort", p.container},
                                {"hostPort", p.host},
                                {"protocol", p.protocol}});
    }
    if (running && !nb.empty()) o["networkBindings"] = std::move(nb);
    cs.push_back(std::move(o));
  }
  json::object r{{"task", arn}, {"status", running ? "RUNNING" : "STOPPED"}};
  r["healthStatus"] = running && any_health ? "HEALTHY" : "UNKNOWN";
  if (t.started_at != 0) {
    r["pullStartedAt"] = t.started_at;
    r["pullStoppedAt"] = t.started_at;
    r["startedAt"] = t.started_at;
  }
  if (!running) {
    r["executionStoppedAt"] = epoch_seconds(clock_.now());
    if (failed) {
      r["stopCode"] = "EssentialContainerExited";
      r["reason"] = "Essential container in task exited";
    }
  }
  r["containers"] = std::move(cs);
  return r;
}

std::string SimAgent::submit(const std::string& arn, json::object report) {
  auto& p = outbox_[arn];
  p.report = std::move(report);
  return send(arn, p);
}

std::string SimAgent::send(const std::string& arn, Pending& p) {
  p.seq = ++next_seq_;
  inflight_[p.seq] = arn;
  return json::serialize(
      json::object{{"type", "task_state"}, {"seq", p.seq}, {"report", p.report}});
}

}  // namespace berth::agent::sim
