#pragma once
// HaproxyProcess: one HAProxy 2.6 instance in master-worker mode, identified by its run
// directory rather than by a child pid, so that a restarted Berth adopts the proxy a previous
// Berth started. The proxy runs daemonized (-D): it outlives Berth. The master CLI socket says
// whether the master lives; the worker's admin socket says which configuration it runs (the
// fingerprint in `global description`), which is how start() and reload() know the new worker is
// up. Every wait is bounded; no call blocks longer than its configured timeout.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "lb/haproxy/haproxy_config.h"
#include "lb/haproxy/runtime_api.h"

namespace berth::lb {

/// The files of one proxy instance.
struct RunPaths {
  std::string dir;
  std::string config;         // haproxy.cfg: what the master (re)loads
  std::string master_socket;  // master CLI (-S)
  std::string admin_socket;   // worker's stats socket, level admin
  std::string pid_file;       // master pid (-p)
  std::string server_state;   // `show servers state`, loaded by a new worker
  std::string log;            // the proxy's stderr (startup and reload messages)
  std::string registering;    // servers added and not yet UP (see HaproxyDataPlane)

  static RunPaths in(const std::string& dir);
  ConfigPaths config_paths() const { return {admin_socket, server_state}; }
};

class HaproxyProcess {
 public:
  HaproxyProcess(std::string binary, RunPaths paths, std::chrono::milliseconds socket_timeout,
                 std::chrono::milliseconds ready_timeout);

  const RunPaths& paths() const { return paths_; }
  const RuntimeApi& admin() const { return admin_; }

  /// The `description` the current worker reports; Errc::unavailable when no worker answers.
  Result<std::string> running_description() const;
  /// True when a master answers on the master socket.
  bool master_alive() const;
  /// The master's pid (from the master CLI, else the pid file); Errc::unavailable if none runs.
  Result<int> master_pid() const;

  /// Checks a configuration file with `haproxy -c`; Errc::invalid_config with HAProxy's message.
  Status check_config(const std::string& file) const;
  /// Starts the proxy on paths().config and waits until a worker reports `description`.
  Status start(std::string_view description) const;
  /// Reloads paths().config through the master CLI (seamless: listeners pass to the new worker,
  /// the old one finishes its connections) and waits until a worker reports `description`.
  Status reload(std::string_view description) const;
  /// Waits until a worker answers with `description` ("" = any); Errc::timeout otherwise.
  Status wait_ready(std::string_view description) const;
  /// Stops master and workers (SIGTERM) and waits until they are gone. OK if none runs.
  Status stop() const;

 private:
  Result<int> run(const std::vector<std::string>& args, const std::string& output) const;
  Result<int> failed_reloads() const;
  std::string log_tail(const std::string& file) const;

  std::string binary_;
  RunPaths paths_;
  RuntimeApi admin_;
  RuntimeApi master_;
  std::chrono::milliseconds ready_timeout_;
};

/// Writes `content` to `path` through a temporary file and rename, so readers (HAProxy loading
/// the configuration or the server state) never see half a file.
Status write_file_atomic(const std::string& path, std::string_view content);
/// The whole file, or Errc::io.
Result<std::string> read_file(const std::string& path);

}  // namespace berth::lb
