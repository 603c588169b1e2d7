#include "runtime/driver.h"

#include <string>

namespace berth::runtime {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "runtime"; }
  std::string message(int c) const override {
    switch (static_cast<Errc>(c)) {
      case Errc::timeout:
        return "timeout";
      case Errc::not_found:
        return "not found";
      case Errc::conflict:
        return "conflict";
      case Errc::bad_request:
        return "bad request";
      case Errc::engine:
        return "engine error";
      case Errc::unavailable:
        return "engine unavailable";
      case Errc::pull_failed:
        return "pull failed";
      case Errc::cancelled:
        return "cancelled";
    }
    return "unknown runtime error";
  }
};

}  // namespace

std::string registry_host(std::string_view image) {
  auto slash = image.find('/');
  if (slash == std::string_view::npos) return "docker.io";
  std::string_view first = image.substr(0, slash);
  if (first == "localhost" || first.find_first_of(".:") != std::string_view::npos)
    return std::string(first);
  return "docker.io";
}

const std::error_category& category() {
  static const Category c;
  return c;
}

bool retriable(const Error& e) {
  if (e.code.category() != category()) return false;
  switch (static_cast<Errc>(e.code.value())) {
    case Errc::timeout:
    case Errc::engine:
    case Errc::unavailable:
      return true;
    default:
      return false;
  }
}

std::vector<Ulimit> default_ulimits() { return {{"nofile", 1024, 1024}, {"nproc", 1024, 1024}}; }

std::vector<Ulimit> effective_ulimits(const ContainerSpec& spec) {
  std::vector<Ulimit> out;
  for (const Ulimit& d : default_ulimits()) {
    bool overridden = false;
    for (const Ulimit& u : spec.ulimits) overridden = overridden || u.name == d.name;
    if (!overridden) out.push_back(d);
  }
  out.insert(out.end(), spec.ulimits.begin(), spec.ulimits.end());
  return out;
}

const char* to_string(ContainerStatus s) {
  switch (s) {
    case ContainerStatus::created:
      return "created";
    case ContainerStatus::running:
      return "running";
    case ContainerStatus::paused:
      return "paused";
    case ContainerStatus::restarting:
      return "restarting";
    case ContainerStatus::removing:
      return "removing";
    case ContainerStatus::exited:
      return "exited";
    case ContainerStatus::dead:
      return "dead";
    case ContainerStatus::unknown:
      break;
  }
  return "unknown";
}

const char* to_string(HealthStatus s) {
  switch (s) {
    case HealthStatus::starting:
      return "starting";
    case HealthStatus::healthy:
      return "healthy";
    case HealthStatus::unhealthy:
      return "unhealthy";
    case HealthStatus::none:
      break;
  }
  return "none";
}

ContainerStatus parse_container_status(std::string_view s) {
  if (s == "created" || s == "configured" || s == "initialized") return ContainerStatus::created;
  if (s == "running") return ContainerStatus::running;
  if (s == "paused") return ContainerStatus::paused;
  if (s == "restarting") return ContainerStatus::restarting;
  if (s == "removing") return ContainerStatus::removing;
  if (s == "exited" || s == "stopped") return ContainerStatus::exited;
  if (s == "dead") return ContainerStatus::dead;
  return ContainerStatus::unknown;
}

HealthStatus parse_health_status(std::string_view s) {
  if (s == "starting") return HealthStatus::starting;
  if (s == "healthy") return HealthStatus::healthy;
  if (s == "unhealthy") return HealthStatus::unhealthy;
  return HealthStatus::none;
}

}  // namespace berth::runtime
