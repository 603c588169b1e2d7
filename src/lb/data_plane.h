#pragma once
// DataPlane: the proxy that carries load-balanced traffic (HAProxy now). The control plane hands
// it the whole desired state on every pass — frontends (one per listener), backends (one per
// target group) and servers (one per registered target) — and reads back each server's health.
// Implementations apply only the difference: servers change at run time without a reload;
// frontend/backend changes regenerate the configuration and reload seamlessly, keeping server
// state. apply() is idempotent, so a restarted control plane re-applies the same state and finds
// nothing to do. Thread-compatible: the LB controller is the one caller.

#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace berth::lb {

struct HealthCheck {
  bool enabled = true;
  std::string path = "/";
  int port = 0;  // 0: the server's own (traffic) port
  int interval_seconds = 30;
  int timeout_seconds = 5;
  int healthy_threshold = 5;    // consecutive successes before a server takes traffic
  int unhealthy_threshold = 2;  // consecutive failures before it stops taking traffic
  std::string matcher = "200";  // ELBv2 HttpCode: "200", "200,202", "200-299"
};

/// One target group. `id` is stable and safe as a proxy identifier ([A-Za-z0-9_-]).
struct Backend {
  std::string id;
  HealthCheck health_check;
};

/// An ELBv2 fixed-response action: answered by the proxy itself.
struct FixedResponse {
  int status = 503;
  std::string content_type = "text/plain";
  std::string body;
};

struct Route {
  int priority = 0;                        // lower wins
  std::vector<std::string> path_patterns;  // ELBv2 patterns: '*' and '?' wildcards; any matches
  std::vector<std::string> host_patterns;  // same wildcards, case-insensitive; any matches
  std::string backend;                     // Backend::id
  std::optional<FixedResponse> fixed;      // answered instead of forwarding (backend empty)
};

/// One listener. An empty default_backend answers 503.
struct Frontend {
  std::string id;
  std::string address;  // "0.0.0.0", "127.0.0.1"
  int port = 0;
  std::vector<Route> routes;  // all conditions of a route must match (path AND host)
  std::string default_backend;
  std::optional<FixedResponse> default_fixed;  // the default action is a fixed response
};

struct Server {
  std::string backend;  // Backend::id
  std::string name;     // stable per target, unique within its backend ([A-Za-z0-9_-])
  std::string address;
  int port = 0;
  bool draining = false;  // finishes in-flight requests, takes no new ones
};

struct DesiredState {
  std::vector<Frontend> frontends;
  std::vector<Backend> backends;
  std::vector<Server> servers;
};

/// ELBv2 TargetHealth values.
struct ServerHealth {
  std::string backend;
  std::string name;
  std::string state;   // initial | healthy | unhealthy | draining | unavailable
  std::string reason;  // Elb.InitialHealthChecking, Target.FailedHealthChecks,
                       // Target.Timeout, Target.ResponseCodeMismatch,
                       // Target.DeregistrationInProgress, Target.HealthCheckDisabled; "" if healthy
  std::string description;  // human-readable, e.g. "Health checks failed with these codes: [500]"
  int current_sessions = 0;
};

class DataPlane {
 public:
  virtual ~DataPlane() = default;
  /// Makes the proxy serve `desired`. Starts the proxy if it is not running.
  virtual Status apply(const DesiredState& desired) = 0;
  /// Health of every server the proxy knows.
  virtual Result<std::vector<ServerHealth>> health() = 0;
};

}  // namespace berth::lb
