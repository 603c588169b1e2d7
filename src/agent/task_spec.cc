#include "agent/task_spec.h"

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "agent/errc.h"

namespace berth::agent {

namespace json = boost::json;

namespace {

struct AgentCategory : std::error_category {
  const char* name() const noexcept override { return "berth.agent"; }
  std::string message(int c) const override {
    switch (static_cast<AgentErrc>(c)) {
      case AgentErrc::refused:
        return "refused by the agent's safety policy";
      case AgentErrc::invalid:
        return "invalid task definition";
    }
    return "unknown";
  }
};

std::string str(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}
std::optional<int64_t> num(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  if (v == nullptr) return std::nullopt;
  if (v->is_int64()) return v->as_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->as_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->as_double());
  return std::nullopt;
}
bool flag(const json::object& o, std::string_view k, bool def = false) {
  auto* v = o.if_contains(k);
  return v && v->is_bool() ? v->as_bool() : def;
}
const json::array* arr(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_array() ? &v->as_array() : nullptr;
}
const json::object* obj(const json::object& o, std::string_view k) {
  auto* v = o.if_contains(k);
  return v && v->is_object() ? &v->as_object() : nullptr;
}
std::vector<std::string> strings(const json::array* a) {
  std::vector<std::string> out;
  if (a == nullptr) return out;
  for (const auto& v : *a) {
    if (v.is_string()) out.emplace_back(v.as_string());
  }
  return out;
}

Error refused(const std::string& what) { return Error(AgentErrc::refused, what); }

bool has_dotdot(const std::filesystem::path& p) {
  for (const auto& part : p) {
    if (part == "..") return true;
  }
  return false;
}

// ECS health check: {command: ["CMD-SHELL", "..."] | ["CMD", ...], interval, timeout, retries,
// startPeriod} in seconds, ECS defaults 30/5/3/0.
std::optional<runtime::HealthCheck> health_of(const json::object& c) {
  const json::object* h = obj(c, "healthCheck");
  if (h == nullptr) return std::nullopt;
  runtime::HealthCheck hc;
  hc.test = strings(arr(*h, "command"));
  if (hc.test.empty() || hc.test[0] == "NONE") return std::nullopt;
  hc.interval = std::chrono::seconds(num(*h, "interval").value_or(30));
  hc.timeout = std::chrono::seconds(num(*h, "timeout").value_or(5));
  hc.retries = static_cast<int>(num(*h, "retries").value_or(3));
  hc.start_period = std::chrono::seconds(num(*h, "startPeriod").value_or(0));
  return hc;
}

runtime::Protocol protocol_of(const json::object& pm) {
  return str(pm, "protocol") == "udp" ? runtime::Protocol::udp : runtime::Protocol::tcp;
}

}  // namespace

const std::error_category& agent_category() {
  static AgentCategory c;
  return c;
}

std::string container_engine_name(const std::string& task_arn, const std::string& container) {
  std::string id = task_arn.substr(task_arn.rfind('/') + 1);
  std::string out = "berth-" + id + "-" + container;
  for (char& ch : out) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-';
    if (!ok) ch = '_';
  }
  return out;
}

Result<std::string> check_host_path(const std::string& path, const SafetyPolicy& policy) {
  namespace fs = std::filesystem;
  fs::path p(path);
  if (!p.is_absolute()) return refused("host path " + path + " must be absolute");
  if (has_dotdot(p)) return refused("host path " + path + " must not contain '..'");
  if (policy.allowed_host_paths.empty()) {
    return refused(
        "host volumes are not allowed on this agent (start it with --allowed-host-path)");
  }
  char buf[PATH_MAX];
  if (::realpath(path.c_str(), buf) == nullptr) {
    return refused("host path " + path + " does not exist on this host");
  }
  fs::path real(buf);
  for (const auto& root : policy.allowed_host_paths) {
    char rbuf[PATH_MAX];
    if (::realpath(root.c_str(), rbuf) == nullptr) continue;
    // Compare whole components, so /data2 is not inside /data, and a symlink out of a root
    // fails here because `real` is already resolved.
    auto rel = real.lexically_relative(fs::path(rbuf));
    if (!rel.empty() && !has_dotdot(rel)) return real.string();
  }
  return refused("host path " + path + " (" + real.string() + ") is outside the allowed roots");
}

Result<TaskPlan> plan_task(const std::string& task_arn, const json::object& td,
                           const json::object& overrides, const SafetyPolicy& policy,
                           const runtime::Labels& labels) {
  TaskPlan plan;
  std::string mode = str(td, "networkMode");
  runtime::NetworkMode net = runtime::NetworkMode::bridge;
  if (mode == "host") {
    net = runtime::NetworkMode::host;
  } else if (mode == "none") {
    net = runtime::NetworkMode::none;
  } else if (mode == "awsvpc") {
    return Error(AgentErrc::invalid, "networkMode awsvpc is not supported by this agent");
  }
  if (!policy.allow_privileged && (str(td, "pidMode") == "host" || str(td, "ipcMode") == "host")) {
    return refused("pidMode/ipcMode host are not allowed on this cluster");
  }

  // Volumes by name: host bind mounts (checked against the policy) or engine volumes.
  std::string task_id = task_arn.substr(task_arn.rfind('/') + 1);
  std::map<std::string, runtime::Mount> volumes;
  if (const json::array* vs = arr(td, "volumes")) {
    for (const auto& v : *vs) {
      if (!v.is_object()) continue;
      const auto& vo = v.as_object();
      runtime::Mount m;
      std::string name = str(vo, "name");
      const json::object* host = obj(vo, "host");
      if (host != nullptr && !str(*host, "sourcePath").empty()) {
        BERTH_TRY(std::string real, check_host_path(str(*host, "sourcePath"), policy));
        m.kind = runtime::MountKind::bind;
        m.source = real;
      } else {
        const json::object* dvc = obj(vo, "dockerVolumeConfiguration");
        // A shared volume outlives the task under its own name; otherwise it is the task's.
        bool shared = dvc != nullptr && str(*dvc, "scope") == "shared";
        m.kind = runtime::MountKind::volume;
        m.source = shared ? name : "berth-" + task_id + "-" + name;
      }
      volumes[name] = m;
    }
  }

  std::map<std::string, const json::object*> container_overrides;
  if (const json::array* cos = arr(overrides, "containerOverrides")) {
    for (const auto& c : *cos) {
      if (c.is_object()) container_overrides[str(c.as_object(), "name")] = &c.as_object();
    }
  }

  const json::array* defs = arr(td, "containerDefinitions");
  if (defs == nullptr || defs->empty()) return Error(AgentErrc::invalid, "no containerDefinitions");
  std::set<std::string> names;
  for (const auto& dv : *defs) {
    if (!dv.is_object()) return Error(AgentErrc::invalid, "containerDefinitions must be objects");
    const json::object& c = dv.as_object();
    const json::object* ov = nullptr;
    ContainerPlan cp;
    cp.name = str(c, "name");
    if (auto it = container_overrides.find(cp.name); it != container_overrides.end())
      ov = it->second;
    names.insert(cp.name);
    cp.essential = flag(c, "essential", true);
    auto& s = cp.spec;
    s.name = container_engine_name(task_arn, cp.name);
    s.image = str(c, "image");
    s.entrypoint = strings(arr(c, "entryPoint"));
    s.command = strings(arr(ov && arr(*ov, "command") ? *ov : c, "command"));
    // Only the task's own variables: the agent's environment never leaks into containers.
    std::map<std::string, std::string> env;
    for (const json::object* src : {&c, ov}) {
      if (src == nullptr) continue;
      if (const json::array* e = arr(*src, "environment")) {
        for (const auto& kv : *e) {
          if (kv.is_object()) env[str(kv.as_object(), "name")] = str(kv.as_object(), "value");
        }
      }
    }
    for (auto& [k, v] : env) s.env.emplace_back(k, v);
    if (const json::object* dl = obj(c, "dockerLabels")) {
      for (const auto& [k, v] : *dl) {
        if (v.is_string()) s.labels[std::string(k)] = std::string(v.as_string());
      }
    }
    for (const auto& [k, v] : labels) s.labels[k] = v;  // ours win: they find the container later
    s.labels["berth.container-name"] = cp.name;
    s.network_mode = net;
    if (const json::array* pms = arr(c, "portMappings")) {
      for (const auto& pv : *pms) {
        if (!pv.is_object()) continue;
        const auto& pm = pv.as_object();
        auto cport = num(pm, "containerPort").value_or(0);
        if (cport <= 0 || cport > 65535) return Error(AgentErrc::invalid, "bad containerPort");
        if (net == runtime::NetworkMode::host) {
          cp.host_network_ports.push_back(static_cast<uint16_t>(cport));
          cp.host_network_protocols.push_back(protocol_of(pm));
          continue;
        }
        if (net == runtime::NetworkMode::none) continue;
        runtime::PortMapping m;
        m.container_port = static_cast<uint16_t>(cport);
        m.host_port = static_cast<uint16_t>(num(pm, "hostPort").value_or(0));
        m.protocol = protocol_of(pm);
        s.ports.push_back(m);
      }
    }
    auto cpu = ov && num(*ov, "cpu") ? num(*ov, "cpu") : num(c, "cpu");
    // Docker rejects shares below 2; ECS maps 0/1 to 2 as well.
    if (cpu && *cpu > 0) s.cpu_shares = std::max<int64_t>(2, *cpu);
    auto mem = ov && num(*ov, "memory") ? num(*ov, "memory") : num(c, "memory");
    auto res = ov && num(*ov, "memoryReservation") ? num(*ov, "memoryReservation")
                                                   : num(c, "memoryReservation");
    if (mem) s.memory_bytes = *mem * 1024 * 1024;
    if (res) s.memory_reservation_bytes = *res * 1024 * 1024;
    if (const json::array* us = arr(c, "ulimits")) {
      for (const auto& u : *us) {
        if (!u.is_object()) continue;
        s.ulimits.push_back({str(u.as_object(), "name"),
                             num(u.as_object(), "softLimit").value_or(0),
                             num(u.as_object(), "hardLimit").value_or(0)});
      }
    }
    if (const json::array* mps = arr(c, "mountPoints")) {
      for (const auto& mv : *mps) {
        if (!mv.is_object()) continue;
        const auto& mp = mv.as_object();
        auto it = volumes.find(str(mp, "sourceVolume"));
        if (it == volumes.end()) {
          return Error(AgentErrc::invalid,
                       "mountPoint refers to unknown volume " + str(mp, "sourceVolume"));
        }
        runtime::Mount m = it->second;
        m.target = str(mp, "containerPath");
        m.read_only = flag(mp, "readOnly");
        s.mounts.push_back(m);
      }
    }
    s.working_dir = str(c, "workingDirectory");
    if (!s.working_dir.empty()) {
      std::filesystem::path wd(s.working_dir);
      if (!wd.is_absolute() || has_dotdot(wd) || wd.lexically_normal().string() != s.working_dir) {
        return refused("workingDirectory must be an absolute, normalized path: " + s.working_dir);
      }
    }
    s.user = str(c, "user");
    s.hostname = str(c, "hostname");
    s.readonly_rootfs = flag(c, "readonlyRootFilesystem");
    s.dns_servers = strings(arr(c, "dnsServers"));
    s.dns_search = strings(arr(c, "dnsSearchDomains"));
    if (const json::array* eh = arr(c, "extraHosts")) {
      for (const auto& h : *eh) {
        if (h.is_object())
          s.extra_hosts.emplace_back(str(h.as_object(), "hostname"),
                                     str(h.as_object(), "ipAddress"));
      }
    }
    if (flag(c, "privileged")) {
      if (!policy.allow_privileged)
        return refused("privileged containers are not allowed on this cluster");
      s.privileged = true;
    }
    if (const json::object* lp = obj(c, "linuxParameters")) {
      const json::object* caps = obj(*lp, "capabilities");
      if (caps && arr(*caps, "add") && !arr(*caps, "add")->empty() && !policy.allow_privileged) {
        return refused("linuxParameters.capabilities.add is not allowed on this cluster");
      }
      if (arr(*lp, "devices") && !arr(*lp, "devices")->empty() && !policy.allow_privileged) {
        return refused("linuxParameters.devices is not allowed on this cluster");
      }
      s.init = flag(*lp, "initProcessEnabled");
    }
    if (const json::object* lc = obj(c, "logConfiguration")) {
      std::string driver = str(*lc, "logDriver");
      // Drivers the engines here cannot serve fall back to json-file so the task still runs.
      if (driver == "none") s.log.driver = "none";
      if (driver == "json-file" || driver.empty()) {
        if (const json::object* o = obj(*lc, "options")) {
          for (const auto& [k, v] : *o) {
            if (v.is_string()) s.log.options[std::string(k)] = std::string(v.as_string());
          }
        }
      }
    }
    if (auto st = num(c, "stopTimeout"))
      cp.stop_timeout = std::chrono::seconds(std::max<int64_t>(0, *st));
    s.stop_timeout = cp.stop_timeout;
    if (auto st = num(c, "startTimeout")) cp.start_timeout = std::chrono::seconds(*st);
    // The agent runs the checks itself (Podman does not here); the engine does not get them, so
    // Docker does not run them a second time.
    cp.health = health_of(c);
    if (const json::array* deps = arr(c, "dependsOn")) {
      for (const auto& d : *deps) {
        if (!d.is_object()) continue;
        cp.depends_on.push_back(
            {str(d.as_object(), "containerName"), str(d.as_object(), "condition")});
      }
    }
    plan.containers.push_back(std::move(cp));
  }
  for (const auto& c : plan.containers) {
    for (const auto& d : c.depends_on) {
      if (!names.contains(d.container)) {
        return Error(AgentErrc::invalid,
                     "container " + c.name + " depends on unknown " + d.container);
      }
    }
  }
  return plan;
}

}  // namespace berth::agent
