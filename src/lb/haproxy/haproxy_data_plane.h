#pragma once
// HaproxyDataPlane: the DataPlane on a real HAProxy 2.6 that it starts, supervises and adopts.
//
// Each apply() (the LB controller calls it about every second) does, in order:
//  1. Supervision: if no worker answers on the admin socket and no master on the master socket,
//     start the proxy (daemonized, so it outlives Berth). A proxy already running from the same
//     run directory is adopted, never duplicated.
//  2. Configuration: if the running worker's fingerprint (config without servers) differs from
//     the desired one, save the server state, write the configuration with the servers it
//     already has, and reload seamlessly through the master CLI.
//  3. Servers, through the runtime API only: add, re-address, drain/undrain, remove.
//
// A server added at run time, or undrained (an ELB target deregistered and registered again),
// takes no traffic until it has passed healthy_threshold checks, like an ELB target in "initial":
// HAProxy 2.6 puts a leaving-maintenance server UP at once (health counter at rise), so it is
// enabled with weight 0, forced DOWN (`set server health down`, which zeroes the counter) and only
// then given weight 1; the checks bring it UP after `rise` passes. Servers added and not yet UP are
// remembered in the run directory ("registering") so a restarted Berth still reports them as
// initial.

#include <chrono>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lb/data_plane.h"
#include "lb/haproxy/haproxy_process.h"
#include "lb/haproxy/haproxy_status.h"

namespace berth::lb {

struct HaproxyOptions {
  std::string haproxy_binary = "/usr/sbin/haproxy";
  /// Holds the configuration, sockets, pid file and server state; one proxy per directory.
  std::string run_dir;
  /// One runtime API exchange; answers take microseconds, so this only bounds a wedged proxy.
  std::chrono::milliseconds socket_timeout{2000};
  /// Start or reload until the new worker answers; HAProxy needs ~100 ms, more on a busy host.
  std::chrono::milliseconds ready_timeout{10000};
};

class HaproxyDataPlane final : public DataPlane {
 public:
  explicit HaproxyDataPlane(HaproxyOptions options);

  Status apply(const DesiredState& desired) override;
  Result<std::vector<ServerHealth>> health() override;

  /// Stops the proxy, for tests and explicit shutdown. Berth exiting does not call it: the proxy
  /// keeps serving and the next Berth adopts it.
  Status stop();
  /// The master's pid, Errc::unavailable when no proxy runs from the run directory.
  Result<int> master_pid() const { return process_.master_pid(); }
  const RunPaths& paths() const { return process_.paths(); }

 private:
  using Key = std::pair<std::string, std::string>;  // HAProxy backend name, server name

  Status ensure_running(const DesiredState& desired, const std::string& description);
  Status reload(const DesiredState& desired, const std::string& description);
  // `old_config`: the reload failed, only servers of backends the running proxy has are handled.
  Status reconcile_servers(const DesiredState& desired, bool old_config);
  static bool retriable_reload_error(const Error& e);
  Status save_state(const std::string& state_text);
  Status command(const std::string& line, std::initializer_list<std::string_view> success = {});
  Status enable(const Key& key, const Server& s, const HealthCheck& hc);
  void load_registering();
  Status store_registering();

  HaproxyProcess process_;
  std::string saved_state_;    // last server-state file content, without times
  std::set<Key> registering_;  // added, not UP yet: "initial" in health()
  std::set<Key> stored_registering_;
  bool registering_loaded_ = false;
  bool idle_ = false;  // the last apply() had nothing to serve and no proxy was running

  // About 30 s at the controller's pace of one pass a second.
  static constexpr int kReloadRetryPasses = 30;
  std::string failed_description_;  // the configuration the proxy last refused
  Status failed_reload_;
  int passes_since_failure_ = 0;
};

}  // namespace berth::lb
