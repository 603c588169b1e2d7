#pragma once
// `berth agent` and `berth dev`: flags and entry points (agent_main.cc, dev_main.cc).

#include <CLI/CLI.hpp>
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "api/credentials.h"
#include "common/result.h"

namespace berth::apps {

struct AgentFlags {
  std::string server;
  std::string cluster = "default";
  std::string credentials;
  std::string profile;  // empty: the first profile in the file
  std::string region = "us-east-1";
  std::string data_dir = "berth-agent";
  std::string engine = "unix:///run/podman/podman.sock";
  int reserved_memory_mib = 256;
  std::string reserved_ports = "22,2375,2376,51678,51679";
  std::string availability_zone;
  // Where load balancers reach this host's published ports (attribute berth.host-address); empty:
  // the local address of the route to the server.
  std::string host_address;
  std::string instance_type = "berth.host";
  std::vector<std::string> attributes;
  std::string instance_id;
  bool allow_privileged = false;
  std::vector<std::string> allowed_host_paths;
  std::vector<std::string> registry_auth;  // HOST=FILE, FILE holding username:password (0600)
};

/// Runs the agent until `stop` is set; `on_registered(arn)` runs once registered.
int run_agent(const AgentFlags& f, const std::atomic<bool>& stop,
              const std::function<void(const std::string&)>& on_registered);

/// Adds the subcommands; `run` is set to the chosen one's entry point.
void add_agent_command(CLI::App& app, std::function<int()>& run);
void add_dev_command(CLI::App& app, std::function<int()>& run);

/// The signing key of `profile` (empty: the first) in an AWS shared-credentials file.
Result<api::AccessKey> load_access_key(const std::string& path, const std::string& profile);

/// SIGINT/SIGTERM set this (installed by the commands).
std::atomic<bool>& stop_requested();
void install_stop_handlers();

}  // namespace berth::apps
