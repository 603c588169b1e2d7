#include "server/ecs/task_definition_rules.h"

#include <cctype>
#include <charconv>
#include <functional>
#include <map>
#include <set>

#include "server/ecs/context.h"

namespace berth::server::ecs {

namespace {

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 255) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  }
  return true;
}

std::optional<double> parse_number(std::string_view s) {
  double v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// Splits "1.5 GB" / "1.5GB" into number and lower-cased unit.
std::pair<std::string_view, std::string> split_unit(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  std::string_view num = s.substr(0, i);
  std::string unit;
  for (char c : s.substr(i)) {
    if (c != ' ') unit += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return {num, unit};
}

// Fargate's valid task cpu -> memory (MiB) combinations: {cpu, min, max, step}.
struct FargateSize {
  int64_t cpu, min, max, step;
};
constexpr FargateSize kFargateSizes[] = {{256, 512, 2048, 512},       {512, 1024, 4096, 1024},
                                         {1024, 2048, 8192, 1024},    {2048, 4096, 16384, 1024},
                                         {4096, 8192, 30720, 1024},   {8192, 16384, 61440, 4096},
                                         {16384, 32768, 122880, 8192}};

bool fargate_size_ok(int64_t cpu, int64_t memory) {
  for (const auto& f : kFargateSizes) {
    if (f.cpu != cpu) continue;
    if (cpu == 256) return memory == 512 || memory == 1024 || memory == 2048;
    return memory >= f.min && memory <= f.max && (memory - f.min) % f.step == 0;
  }
  return false;
}

Error bad(std::string m) { return client_error(std::move(m)); }

std::string container_label(const json::object& c) {
  return std::string(opt_string(c, "name").value_or(""));
}

void add_attr(json::array& attrs, std::set<std::string>& seen, const std::string& name) {
  if (seen.insert(name).second) attrs.push_back(json::object{{"name", name}});
}

Status check_health_check(const std::string& cname, json::object& hc) {
  const json::array* cmd = opt_array(hc, "command");
  if (cmd == nullptr || cmd->empty()) {
    return bad("Invalid 'healthCheck' setting for container '" + cname +
               "': command must not be empty.");
  }
  struct Range {
    const char* name;
    int64_t min, max, def;
  };
  // ECS's documented ranges and defaults.
  for (Range r : {Range{"interval", 5, 300, 30}, Range{"timeout", 2, 60, 5},
                  Range{"retries", 1, 10, 3}, Range{"startPeriod", 0, 300, 0}}) {
    auto v = opt_int(hc, r.name);
    if (!v) {
      if (std::string_view(r.name) != "startPeriod") hc[r.name] = r.def;
      continue;
    }
    if (*v < r.min || *v > r.max) {
      return bad("Invalid 'healthCheck' setting for container '" + cname + "': " + r.name +
                 " must be between " + std::to_string(r.min) + " and " + std::to_string(r.max) +
                 ".");
    }
  }
  return {};
}

}  // namespace

std::optional<int64_t> parse_task_cpu(std::string_view s) {
  auto [num, unit] = split_unit(s);
  auto v = parse_number(num);
  if (!v || *v <= 0) return std::nullopt;
  if (unit.empty())
    return *v == static_cast<int64_t>(*v) ? std::optional<int64_t>(*v) : std::nullopt;
  if (unit == "vcpu") return static_cast<int64_t>(*v * 1024);
  return std::nullopt;
}

std::optional<int64_t> parse_task_memory(std::string_view s) {
  auto [num, unit] = split_unit(s);
  auto v = parse_number(num);
  if (!v || *v <= 0) return std::nullopt;
  if (unit.empty() || unit == "mib" || unit == "mb") {
    return *v == static_cast<int64_t>(*v) ? std::optional<int64_t>(*v) : std::nullopt;
  }
  if (unit == "gb" || unit == "gib") return static_cast<int64_t>(*v * 1024);
  return std::nullopt;
}

Result<NormalizedTaskDefinition> check_task_definition(const json::object& in) {
  NormalizedTaskDefinition out;
  std::set<std::string> attr_seen;
  auto family = opt_string(in, "family").value_or("");
  if (!valid_name(family)) {
    return bad(
        "Family contains invalid characters or is too long: up to 255 letters (uppercase "
        "and lowercase), numbers, hyphens, and underscores are allowed.");
  }
  std::string network_mode(opt_string(in, "networkMode").value_or("bridge"));

  std::set<std::string> requires_compat;
  if (auto* rc = opt_array(in, "requiresCompatibilities")) {
    for (const auto& v : *rc) requires_compat.insert(std::string(v.as_string()));
  }
  const bool fargate = requires_compat.contains("FARGATE");

  std::optional<int64_t> task_cpu, task_memory;
  if (auto cpu = opt_string(in, "cpu")) {
    task_cpu = parse_task_cpu(*cpu);
    if (!task_cpu || *task_cpu < 128 || *task_cpu > 196608) {
      return bad("Invalid 'cpu' setting for task: '" + std::string(*cpu) +
                 "'. Specify CPU units (128 to 196608) or vCPUs, e.g. '1 vCPU'.");
    }
  }
  if (auto mem = opt_string(in, "memory")) {
    task_memory = parse_task_memory(*mem);
    if (!task_memory || *task_memory < 6) {
      return bad("Invalid 'memory' setting for task: '" + std::string(*mem) +
                 "'. Specify MiB (at least 6) or GB, e.g. '1 GB'.");
    }
  }
  if (fargate) {
    if (network_mode != "awsvpc") return bad("Fargate only supports network mode 'awsvpc'.");
    if (!task_cpu) return bad("Fargate requires that 'cpu' be defined at the task level.");
    if (!task_memory) return bad("Fargate requires that 'memory' be defined at the task level.");
    if (!fargate_size_ok(*task_cpu, *task_memory)) {
      return bad("No Fargate configuration exists for given values: " + std::to_string(*task_cpu) +
                 " CPU, " + std::to_string(*task_memory) + " memory.");
    }
  }

  // Volumes: unique valid names; host paths absolute.
  std::set<std::string> volume_names;
  if (auto* vols = opt_array(in, "volumes")) {
    for (const auto& v : *vols) {
      auto name = opt_string(v.as_object(), "name").value_or("");
      if (!valid_name(name))
        return bad("Volume names must be 1-255 letters, numbers, hyphens, and underscores.");
      if (!volume_names.insert(std::string(name)).second) {
        return bad("Duplicate volume name '" + std::string(name) + "'.");
      }
      if (auto* host = opt_object(v.as_object(), "host")) {
        auto path = opt_string(*host, "sourcePath");
        if (path && !path->empty() && (*path)[0] != '/') {
          return bad("Volume '" + std::string(name) +
                     "': host sourcePath must be an absolute path.");
        }
      }
    }
  }

  const json::array* defs = opt_array(in, "containerDefinitions");
  if (defs == nullptr || defs->empty()) {
    return bad("Task definition must have at least one container definition.");
  }
  if (defs->size() > 10) return bad("Too many containers: a task definition can have at most 10.");

  json::array containers;
  std::map<std::string, const json::object*> by_name;
  bool any_essential = false;
  int64_t cpu_sum = 0;
  std::set<std::pair<int64_t, std::string>> host_ports;
  for (const auto& d : *defs) {
    json::object c = d.as_object();
    auto name = opt_string(c, "name");
    if (!name || name->empty()) return bad("Container.name should not be null or empty.");
    if (!valid_name(*name)) {
      return bad("Container.name '" + std::string(*name) +
                 "' is invalid: up to 255 letters (uppercase and lowercase), numbers, hyphens, "
                 "and underscores are allowed.");
    }
    std::string cname(*name);
    auto image = opt_string(c, "image");
    if (!image || image->empty()) return bad("Container.image should not be null or empty.");
    if (image->size() > 255) return bad("Container.image for '" + cname + "' is too long.");

    bool essential = opt_bool(c, "essential").value_or(true);
    c["essential"] = essential;
    any_essential |= essential;

    int64_t cpu = opt_int(c, "cpu").value_or(0);
    if (cpu < 0) return bad("Invalid 'cpu' setting for container '" + cname + "'.");
    c["cpu"] = cpu;
    cpu_sum += cpu;

    auto mem = opt_int(c, "memory");
    auto res = opt_int(c, "memoryReservation");
    if (!mem && !res && !task_memory) {
      return bad("Invalid setting for container '" + cname +
                 "'. At least one of 'memory' or 'memoryReservation' must be specified.");
    }
    if (mem && *mem < 6) {
      return bad("Invalid 'memory' setting for container '" + cname +
                 "'. The container memory must be at least 6 MiB.");
    }
    if (res && *res < 6) {
      return bad("Invalid 'memoryReservation' setting for container '" + cname +
                 "'. The memory reservation must be at least 6 MiB.");
    }
    if (mem && res && *mem < *res) {
      return bad("Invalid setting for container '" + cname +
                 "'. The hard limit (memory) must be greater than or equal to the soft limit "
                 "(memoryReservation).");
    }
    if (task_memory && ((mem && *mem > *task_memory) || (res && *res > *task_memory))) {
      return bad("Invalid setting for container '" + cname +
                 "'. The container memory must not exceed the task memory.");
    }
    if (res)
      add_attr(out.requires_attributes, attr_seen,
               "com.amazonaws.ecs.capability.docker-remote-api.1.21");

    json::array mappings;
    if (auto* pm = opt_array(c, "portMappings")) {
      if (network_mode == "none" && !pm->empty()) {
        return bad("Port mappings are not allowed with network mode 'none' (container '" + cname +
                   "').");
      }
      for (const auto& m : *pm) {
        json::object mo = m.as_object();
        auto cport = opt_int(mo, "containerPort");
        auto hport = opt_int(mo, "hostPort");
        std::string proto(opt_string(mo, "protocol").value_or("tcp"));
        mo["protocol"] = proto;
        if (!cport && !mo.contains("containerPortRange")) {
          return bad("Invalid 'portMappings' for container '" + cname +
                     "': containerPort is required.");
        }
        if (cport && (*cport < 1 || *cport > 65535)) {
          return bad("Invalid 'portMappings' for container '" + cname +
                     "': containerPort must be between 1 and 65535.");
        }
        if (hport && (*hport < 0 || *hport > 65535)) {
          return bad("Invalid 'portMappings' for container '" + cname +
                     "': hostPort must be between 0 and 65535.");
        }
        if (network_mode == "awsvpc" || network_mode == "host") {
          if (hport && cport && *hport != *cport && *hport != 0) {
            return bad("When networkMode=" + network_mode +
                       ", the host ports and container ports in port mappings must match.");
          }
          if (cport) {
            mo["hostPort"] = *cport;
            hport = cport;
          }
        }
        if (hport && *hport != 0 && !host_ports.insert({*hport, proto}).second) {
          return bad("Host port " + std::to_string(*hport) + "/" + proto +
                     " is mapped more than once in the task definition.");
        }
        mappings.push_back(std::move(mo));
      }
    }
    c["portMappings"] = std::move(mappings);

    if (auto* links = opt_array(c, "links"); links && !links->empty() && network_mode != "bridge") {
      return bad("Links are only supported with network mode 'bridge' (container '" + cname +
                 "').");
    }
    if (auto* hc = c.if_contains("healthCheck"); hc && hc->is_object()) {
      BERTH_CHECK(check_health_check(cname, hc->as_object()));
      add_attr(out.requires_attributes, attr_seen,
               "com.amazonaws.ecs.capability.docker-remote-api.1.24");
      add_attr(out.requires_attributes, attr_seen, "ecs.capability.container-health-check");
    }
    if (auto* ul = opt_array(c, "ulimits")) {
      for (const auto& u : *ul) {
        auto soft = opt_int(u.as_object(), "softLimit").value_or(0);
        auto hard = opt_int(u.as_object(), "hardLimit").value_or(0);
        if (soft > hard) {
          return bad("Invalid 'ulimits' for container '" + cname +
                     "': softLimit exceeds hardLimit.");
        }
      }
    }
    for (const char* k : {"startTimeout", "stopTimeout"}) {
      if (auto v = opt_int(c, k); v && *v < 0) {
        return bad("Invalid '" + std::string(k) + "' for container '" + cname + "'.");
      }
    }
    if (auto* mps = opt_array(c, "mountPoints")) {
      for (const auto& mp : *mps) {
        auto src = opt_string(mp.as_object(), "sourceVolume");
        if (src && !volume_names.contains(std::string(*src))) {
          return bad("Invalid 'mountPoints' for container '" + cname + "': sourceVolume '" +
                     std::string(*src) + "' is not a volume of the task definition.");
        }
        auto path = opt_string(mp.as_object(), "containerPath");
        if (path && !path->empty() && (*path)[0] != '/') {
          return bad("Invalid 'mountPoints' for container '" + cname +
                     "': containerPath must be absolute.");
        }
      }
    }
    if (auto* log = opt_object(c, "logConfiguration")) {
      if (auto driver = opt_string(*log, "logDriver")) {
        add_attr(out.requires_attributes, attr_seen,
                 "com.amazonaws.ecs.capability.logging-driver." + std::string(*driver));
      }
    }
    if (opt_array(c, "dependsOn") != nullptr) {
      add_attr(out.requires_attributes, attr_seen, "ecs.capability.container-ordering");
    }
    for (const char* k : {"environment", "mountPoints", "volumesFrom"}) {
      if (!c.contains(k) || c.at(k).is_null()) c[k] = json::array();
    }
    if (by_name.contains(cname)) return bad("Duplicate container name '" + cname + "'.");
    containers.push_back(std::move(c));
    by_name[cname] = nullptr;
  }
  for (const auto& c : containers) by_name[container_label(c.as_object())] = &c.as_object();

  if (!any_essential) return bad("Task definition does not have any essential container.");
  if (task_cpu && cpu_sum > *task_cpu) {
    return bad("The sum of the container 'cpu' values (" + std::to_string(cpu_sum) +
               ") exceeds the task cpu (" + std::to_string(*task_cpu) + ").");
  }

  // dependsOn: known targets, condition rules, no cycles.
  std::map<std::string, std::vector<std::string>> edges;
  for (const auto& cv : containers) {
    const auto& c = cv.as_object();
    std::string cname = container_label(c);
    if (auto* vf = opt_array(c, "volumesFrom")) {
      for (const auto& v : *vf) {
        auto src = opt_string(v.as_object(), "sourceContainer");
        if (src && !by_name.contains(std::string(*src))) {
          return bad("Invalid 'volumesFrom' for container '" + cname + "': container '" +
                     std::string(*src) + "' is not in the task definition.");
        }
      }
    }
    const json::array* deps = opt_array(c, "dependsOn");
    if (deps == nullptr) continue;
    for (const auto& dv : *deps) {
      auto target = std::string(opt_string(dv.as_object(), "containerName").value_or(""));
      auto cond = opt_string(dv.as_object(), "condition").value_or("");
      auto it = by_name.find(target);
      if (it == by_name.end()) {
        return bad("Container '" + cname + "' depends on '" + target +
                   "', which is not defined in the task definition.");
      }
      if (target == cname) return bad("Container '" + cname + "' cannot depend on itself.");
      if (cond == "HEALTHY" && !it->second->contains("healthCheck")) {
        return bad("Container '" + cname + "' depends on '" + target + "' being HEALTHY, but '" +
                   target + "' has no healthCheck.");
      }
      if ((cond == "COMPLETE" || cond == "SUCCESS") &&
          opt_bool(*it->second, "essential").value_or(true)) {
        return bad("Dependency condition " + std::string(cond) +
                   " cannot be set on an essential container ('" + target + "').");
      }
      edges[cname].push_back(target);
    }
  }
  // Cycle check by depth-first search with colours.
  std::map<std::string, int> colour;  // 0 new, 1 on stack, 2 done
  std::function<bool(const std::string&)> cyclic = [&](const std::string& n) {
    colour[n] = 1;
    for (const auto& m : edges[n]) {
      if (colour[m] == 1 || (colour[m] == 0 && cyclic(m))) return true;
    }
    colour[n] = 2;
    return false;
  };
  for (const auto& [n, _] : by_name) {
    if (colour[n] == 0 && cyclic(n)) {
      return bad("Task definition contains a circular container dependency.");
    }
  }

  // The TaskDefinition members taken from the request as they are.
  for (const char* k :
       {"family", "taskRoleArn", "executionRoleArn", "networkMode", "volumes",
        "placementConstraints", "requiresCompatibilities", "cpu", "memory", "inferenceAccelerators",
        "pidMode", "ipcMode", "proxyConfiguration", "ephemeralStorage", "runtimePlatform"}) {
    if (auto* v = in.if_contains(k); v && !v->is_null()) out.body[k] = *v;
  }
  // ECS stores task-level sizes as plain units: "1 vCPU" -> "1024", "2 GB" -> "2048".
  if (task_cpu) out.body["cpu"] = std::to_string(*task_cpu);
  if (task_memory) out.body["memory"] = std::to_string(*task_memory);
  out.body["containerDefinitions"] = std::move(containers);
  if (!out.body.contains("volumes")) out.body["volumes"] = json::array();
  if (!out.body.contains("placementConstraints")) out.body["placementConstraints"] = json::array();

  if (in.contains("taskRoleArn"))
    add_attr(out.requires_attributes, attr_seen, "com.amazonaws.ecs.capability.task-iam-role");
  if (network_mode == "awsvpc")
    add_attr(out.requires_attributes, attr_seen, "ecs.capability.task-eni");

  out.compatibilities.push_back("EC2");
  out.compatibilities.push_back("EXTERNAL");
  if (network_mode == "awsvpc" && task_cpu && task_memory &&
      fargate_size_ok(*task_cpu, *task_memory)) {
    out.compatibilities.push_back("FARGATE");
  }
  return out;
}

}  // namespace berth::server::ecs
