#pragma once
// The container runtime as the agent sees it: one Driver per host engine. The agent's task engine
// pulls images, creates, starts, watches, health-checks and stops the containers of its tasks
// through this interface only; DockerDriver (runtime/docker/) speaks the Docker Engine API to
// Docker or Podman, FakeDriver (runtime/fake/) is an in-memory engine for the agent's unit tests.
//
// Every call is blocking and bounded by a documented deadline (Timeouts below), so an agent
// thread or strand never waits on a wedged engine forever; the ECS agent's dockerapi is the
// model. Failures are runtime::Errc values (errc.h) and retriable() says whether to try again.
// Implementations are thread-safe: calls may run concurrently from many task threads.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "runtime/errc.h"

namespace berth::runtime {

using Labels = std::map<std::string, std::string>;
using TimePoint = std::chrono::system_clock::time_point;

/// Per-call deadlines. A deadline that passes yields Errc::timeout; the engine may still finish
/// the operation, so callers re-inspect before assuming it did not happen.
struct Timeouts {
  /// ping/version: a local socket answers in milliseconds; seconds of silence mean a sick engine.
  std::chrono::milliseconds ping{5'000};
  /// inspect, inspect_image, image_present, stats, kill: Podman takes per-container locks that
  /// a busy engine holds for seconds; 30 s is the ECS agent's inspect timeout.
  std::chrono::milliseconds inspect{30'000};
  /// list: one call over all containers, slower on a crowded host.
  std::chrono::milliseconds list{60'000};
  /// create: may set up storage and volumes (ECS agent: 4 min).
  std::chrono::milliseconds create{240'000};
  /// start: sets up networking and runs the OCI runtime (ECS agent: 3 min).
  std::chrono::milliseconds start{180'000};
  /// stop: the stop grace period plus this much for the kill and the engine's cleanup.
  std::chrono::milliseconds stop_extra{30'000};
  /// remove: deletes the writable layer, which can be large (ECS agent: 5 min).
  std::chrono::milliseconds remove{300'000};
  /// pull: whole-call cap for large images on slow links (ECS agent: 2 h) ...
  std::chrono::milliseconds pull{7'200'000};
  /// ... and the longest silence allowed in the progress stream before giving up (ECS: 1 min).
  std::chrono::milliseconds pull_inactivity{60'000};
  /// exec_check: added to the command's own timeout for exec create/start/inspect round trips.
  std::chrono::milliseconds exec_extra{10'000};
  /// events: connecting and reading the response header; the stream itself has no deadline.
  std::chrono::milliseconds events_connect{10'000};
};

struct EngineVersion {
  std::string name{};         // "Docker Engine - Community", "Podman Engine"
  std::string version{};      // engine version, e.g. "4.3.1"
  std::string api_version{};  // Docker API version the engine speaks, e.g. "1.41"
  std::string os{}, arch{}, kernel{};
};

/// Credentials for a private registry, sent as Docker's X-Registry-Auth.
struct RegistryAuth {
  std::string username{};
  std::string password{};
  std::string server_address{};  // e.g. "123456789012.dkr.ecr.us-east-1.amazonaws.com"
};

/// The registry host an image reference pulls from, as Docker resolves it: the first path
/// component when it names a host (has a '.' or ':', or is "localhost"), else "docker.io".
/// "127.0.0.1:5000/app:1" -> "127.0.0.1:5000", "busybox" -> "docker.io".
std::string registry_host(std::string_view image);

struct ImageInfo {
  std::string id{};      // "sha256:<config digest>"
  std::string digest{};  // "sha256:<manifest digest>" of the pulled reference, empty if unknown
  std::vector<std::string> repo_tags{};
};

enum class Protocol { tcp, udp };
enum class NetworkMode { bridge, host, none };
enum class MountKind { bind, volume, tmpfs };

/// A requested port mapping. host_port 0 asks the engine for a free port at create time; read it
/// back with inspect().
struct PortMapping {
  uint16_t container_port = 0;
  Protocol protocol = Protocol::tcp;
  uint16_t host_port = 0;
  std::string host_ip{};  // empty = all interfaces
};

struct Mount {
  MountKind kind = MountKind::bind;
  std::string source{};  // host path (bind) or volume name (volume); unused for tmpfs
  std::string target{};  // path inside the container
  bool read_only = false;
};

struct Ulimit {
  std::string name{};  // "nofile", "nproc", "core", ...
  int64_t soft = 0;
  int64_t hard = 0;
};

struct LogConfig {
  /// "json-file" works on Docker and Podman (Podman stores it as k8s-file); "none" disables
  /// logs. Podman without systemd rejects "journald"; Podman rejects "local" and "syslog".
  std::string driver = "json-file";
  std::map<std::string, std::string> options{};
};

/// Docker's HEALTHCHECK: test is {"CMD", arg...}, {"CMD-SHELL", script} or {"NONE"}.
struct HealthCheck {
  std::vector<std::string> test{};
  std::chrono::milliseconds interval{30'000};
  std::chrono::milliseconds timeout{5'000};
  std::chrono::milliseconds start_period{0};
  int retries = 3;
};

/// What the engine needs to create one container of an ECS task definition.
struct ContainerSpec {
  std::string
      name{};  // engine container name; unique per host (the agent derives it from the task)
  std::string image{};
  std::vector<std::string> entrypoint{};  // empty = the image's
  std::vector<std::string> command{};     // empty = the image's
  std::vector<std::pair<std::string, std::string>> env{};
  Labels labels{};
  std::vector<PortMapping> ports{};
  int64_t cpu_shares = 0;                // 0 = engine default (1024)
  int64_t memory_bytes = 0;              // hard limit; 0 = none
  int64_t memory_reservation_bytes = 0;  // soft limit; 0 = none
  /// Added to the defaults of default_ulimits(); an entry with the same name replaces a default.
  std::vector<Ulimit> ulimits{};
  std::vector<Mount> mounts{};
  std::string working_dir{};
  std::string user{};  // "uid", "uid:gid", "name"
  NetworkMode network_mode = NetworkMode::bridge;
  LogConfig log{};
  std::string hostname{};
  bool privileged = false;
  bool readonly_rootfs = false;
  bool init = false;  // run an init process (tini/catatonit) as PID 1 to reap and forward signals
  std::vector<std::string> dns_servers{};
  std::vector<std::string> dns_search{};
  std::vector<std::pair<std::string, std::string>> extra_hosts{};  // {hostname, ip}
  std::optional<std::chrono::seconds> stop_timeout{};              // engine default stop grace
  std::optional<HealthCheck> healthcheck{};  // also passed to the engine's container config
  std::vector<std::string> security_opts{};  // "no-new-privileges", "label=disable", ...
  std::map<std::string, std::string> sysctls{};
};

/// nofile=1024:1024 and nproc=1024:1024. Always sent: Podman's runtime fails with EPERM when it
/// inherits limits above the host's hard limits, and containers should not inherit the agent's.
std::vector<Ulimit> default_ulimits();
/// The defaults overlaid with spec.ulimits (same name replaces), in a stable order.
std::vector<Ulimit> effective_ulimits(const ContainerSpec& spec);

enum class ContainerStatus {
  created,
  running,
  paused,
  restarting,
  removing,
  exited,
  dead,
  unknown
};
enum class HealthStatus { none, starting, healthy, unhealthy };

const char* to_string(ContainerStatus s);
const char* to_string(HealthStatus s);
/// Accepts Docker's names and Podman's own ("configured", "initialized", "stopped").
ContainerStatus parse_container_status(std::string_view s);
HealthStatus parse_health_status(std::string_view s);

/// A port binding as the engine actually made it (the host port chosen for dynamic mappings).
struct PortBinding {
  uint16_t container_port = 0;
  Protocol protocol = Protocol::tcp;
  std::string host_ip{};  // "" or "0.0.0.0" = all interfaces (Podman reports "")
  uint16_t host_port = 0;
};

struct ContainerState {
  std::string id{};
  std::string name{};      // without Docker's leading '/'
  std::string image{};     // the reference it was created from
  std::string image_id{};  // "sha256:..."
  ContainerStatus status = ContainerStatus::unknown;
  bool running = false;
  int exit_code = 0;    // meaningful once exited; 137 = SIGKILL, 143 = SIGTERM
  std::string error{};  // engine's message when the container failed to start
  bool oom_killed = false;
  std::optional<TimePoint> created_at{}, started_at{}, finished_at{};
  Labels labels{};
  std::vector<PortBinding> ports{};
  int64_t memory_bytes = 0;  // HostConfig.Memory as applied
  HealthStatus health = HealthStatus::none;
  std::string health_output{};  // output of the last check the engine ran, if any
};

struct ListFilter {
  std::vector<std::string> labels{};  // "key" or "key=value"; all must match
  bool all = true;                    // include stopped containers
};

struct ExecResult {
  int exit_code = 0;
  std::string output{};  // stdout and stderr interleaved, first max_output bytes
  bool truncated = false;
};

/// One stats sample. CPU is cumulative, so a percentage needs two samples:
/// (Δcpu_total / Δsystem) * online_cpus.
struct StatsSample {
  TimePoint read{};
  uint64_t cpu_total_ns = 0;
  uint64_t system_cpu_ns = 0;
  uint32_t online_cpus = 0;
  uint64_t memory_usage = 0;  // bytes, minus inactive page cache as `docker stats` shows it
  uint64_t memory_limit = 0;  // bytes
};

struct Event {
  std::string type{};    // "container", "image", "network", ...
  std::string action{};  // "create", "start", "die", "health_status", "oom", "destroy", ...
  std::string id{};      // container id for container events
  std::string name{};    // container name, when the engine says
  std::string image{};
  std::optional<int> exit_code{};            // for "die"
  HealthStatus health = HealthStatus::none;  // for "health_status" (Docker says; Podman 4.3 not)
  Labels labels{};  // Actor.Attributes without the engine's own keys (name, image, exitCode, ...)
  TimePoint time{};
};

struct EventFilter {
  std::vector<std::string> labels{};   // "key" or "key=value"
  std::vector<std::string> types{};    // e.g. {"container"}
  std::vector<std::string> actions{};  // e.g. {"start", "die"}
  std::optional<TimePoint> since{};    // replay from here after a reconnect
};

/// A live event stream. Destroying it cancels and joins the delivery thread.
class EventSubscription {
 public:
  virtual ~EventSubscription() = default;
  /// Stops delivery: on_end(Errc::cancelled) runs (unless the stream had already ended), and
  /// after cancel() returns no callback runs. Safe from any thread except inside a callback.
  virtual void cancel() = 0;
};

struct EventHandlers {
  /// Called for each event, in engine order, on the subscription's own thread.
  std::function<void(const Event&)> on_event{};
  /// Called once when the stream ends: Errc::cancelled after cancel(), else why it broke.
  /// Reconnecting (with EventFilter::since) is the caller's job.
  std::function<void(const Error&)> on_end{};
};

class Driver {
 public:
  virtual ~Driver() = default;

  /// Whether the engine answers. Timeout: ping.
  virtual Status ping() = 0;
  /// Engine name and versions. Timeout: ping.
  virtual Result<EngineVersion> version() = 0;

  /// Whether `image` is in local storage. Timeout: inspect.
  virtual Result<bool> image_present(const std::string& image) = 0;
  /// Local image details; Errc::not_found if absent. Timeout: inspect.
  virtual Result<ImageInfo> inspect_image(const std::string& image) = 0;
  /// Pulls `image` ("repo[:tag|@digest]", default tag "latest") and returns what was stored.
  /// Registry failures reported inside the progress stream become Errc::pull_failed.
  /// Timeouts: pull for the whole call, pull_inactivity between progress messages.
  virtual Result<ImageInfo> pull(const std::string& image,
                                 const std::optional<RegistryAuth>& auth) = 0;

  /// Creates (does not start) a container; returns its id. Errc::conflict if the name is taken,
  /// Errc::not_found if the image is absent. After Errc::timeout the container may exist: inspect
  /// it by name. Timeout: create.
  virtual Result<std::string> create(const ContainerSpec& spec) = 0;
  /// Starts a created container; starting a running one succeeds. Timeout: start.
  virtual Status start(const std::string& id) = 0;
  /// SIGTERM (or the image's STOPSIGNAL), then SIGKILL after `grace`; stopping a stopped container
  /// succeeds. Timeout: grace + stop_extra.
  virtual Status stop(const std::string& id, std::chrono::seconds grace) = 0;
  /// Sends `signal` ("SIGKILL", "TERM", "9"); Errc::conflict if not running. Timeout: inspect.
  virtual Status kill(const std::string& id, const std::string& signal) = 0;
  /// Removes a container and its anonymous volumes; `force` kills a running one first.
  /// Errc::not_found if already gone. Timeout: remove.
  virtual Status remove(const std::string& id, bool force) = 0;

  /// Current state of a container by id or name. Timeout: inspect.
  virtual Result<ContainerState> inspect(const std::string& id_or_name) = 0;
  /// Containers matching `filter`. Fields come from the engine's list summary: id, name, image,
  /// image_id, status, running, labels, ports, created_at, and exit_code when the engine's status
  /// text carries it; inspect() for the rest. Timeout: list.
  virtual Result<std::vector<ContainerState>> list(const ListFilter& filter) = 0;

  /// Runs `cmd` inside the running container (no shell unless cmd invokes one) and waits for it:
  /// how the agent runs health checks itself, because Podman without systemd never runs the
  /// configured HEALTHCHECK on its own. Uses the compat exec API (create, start, inspect), which
  /// works on both engines; Podman's libpod healthcheck endpoint would not exist on Docker.
  /// Output beyond max_output bytes is read and dropped.
  /// Errc::timeout if it runs longer than `timeout`; engines cannot kill an exec, so the process
  /// may linger. Timeout: timeout + exec_extra.
  virtual Result<ExecResult> exec_check(const std::string& id, const std::vector<std::string>& cmd,
                                        std::chrono::milliseconds timeout,
                                        size_t max_output = 4096) = 0;

  /// One resource usage sample of a running container. Timeout: inspect.
  virtual Result<StatsSample> stats(const std::string& id) = 0;

  /// Subscribes to engine events matching `filter`; handlers run on a background thread until
  /// the stream ends or the subscription is cancelled. The call returns once the engine answered
  /// with the stream's header; events caused after that were delivered in every run measured
  /// here, but Podman attaches its reader just after answering, so pass `since` when the first
  /// milliseconds matter. Timeout: events_connect.
  virtual Result<std::unique_ptr<EventSubscription>> events(const EventFilter& filter,
                                                            EventHandlers handlers) = 0;
};

}  // namespace berth::runtime
