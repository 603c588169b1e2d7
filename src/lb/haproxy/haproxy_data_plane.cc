#include "lb/haproxy/haproxy_data_plane.h"

#include <filesystem>
#include <map>
#include <sstream>

#include "lb/errc.h"
#include "lb/haproxy/haproxy_config.h"

namespace berth::lb {

HaproxyDataPlane::HaproxyDataPlane(HaproxyOptions o)
    : process_(std::move(o.haproxy_binary), RunPaths::in(o.run_dir), o.socket_timeout,
               o.ready_timeout) {}

Status HaproxyDataPlane::apply(const DesiredState& desired) {
  // Nothing to serve and no proxy from an earlier run: do not start one (most servers never
  // create a load balancer). A running proxy is still updated, so deleting the last listener
  // takes effect.
  idle_ = desired.frontends.empty() && desired.backends.empty() && desired.servers.empty() &&
          !process_.master_pid().ok();
  if (idle_) return {};
  BERTH_TRY(std::string fp, config_fingerprint(desired, paths().config_paths()));
  const std::string description = fingerprint_description(fp);
  std::error_code ec;
  std::filesystem::create_directories(paths().dir, ec);
  if (ec) return Error(Errc::io, "cannot create " + paths().dir + ": " + ec.message());
  load_registering();

  BERTH_CHECK(ensure_running(desired, description));
  BERTH_TRY(std::string running, process_.running_description());
  if (running == description) {
    failed_description_.clear();
    return reconcile_servers(desired, false);
  }

  // A configuration the proxy refused fails the same way until the desired state changes (or
  // the taken port is freed): retry it only every kReloadRetryPasses passes, not every second.
  Status reloaded = failed_reload_;
  if (description != failed_description_ || ++passes_since_failure_ >= kReloadRetryPasses) {
    reloaded = reload(desired, description);
    failed_description_.clear();
    if (!reloaded.ok() && !retriable_reload_error(reloaded.error())) {
      failed_description_ = description;
      failed_reload_ = reloaded;
      passes_since_failure_ = 0;
    }
  }
  if (reloaded.ok()) return reconcile_servers(desired, false);
  // Targets keep following the desired state in the backends the old configuration has.
  (void)reconcile_servers(desired, true);  // the reload error is the one to report
  return reloaded;
}

bool HaproxyDataPlane::retriable_reload_error(const Error& e) {
  return e.code != make_error_code(Errc::reload_failed) &&
         e.code != make_error_code(Errc::invalid_config);
}

Status HaproxyDataPlane::ensure_running(const DesiredState& desired,
                                        const std::string& description) {
  if (process_.running_description().ok()) return {};
  // A master without a worker answering is between two workers (a reload in progress).
  if (process_.master_alive()) return process_.wait_ready("");

  // (Re)start. Servers the saved state knows go into the configuration and resume their health
  // from it (after a crash: as of the last apply); the others are added at run time below and go
  // through initial checks like any new target.
  std::set<Key> known;
  if (auto text = read_file(paths().server_state); text.ok())
    if (auto servers = parse_servers_state(*text); servers.ok())
      for (const auto& r : *servers) known.insert({r.proxy, r.name});
  std::vector<Server> servers;
  for (const auto& s : desired.servers)
    if (known.count({backend_name(s.backend), s.name})) servers.push_back(s);
  BERTH_TRY(std::string config, render_config(desired, paths().config_paths(), servers));
  BERTH_CHECK(write_file_atomic(paths().config, config));
  saved_state_.clear();
  return process_.start(description);
}

Status HaproxyDataPlane::reload(const DesiredState& desired, const std::string& description) {
  // Runtime changes (added servers, their health) are lost on reload unless the new worker finds
  // them in the configuration and their state in the server-state file.
  BERTH_TRY(std::string state, process_.admin().call("show servers state"));
  BERTH_TRY(std::vector<RuntimeServer> running, parse_servers_state(state));
  BERTH_CHECK(write_file_atomic(paths().server_state, state));
  saved_state_ = servers_state_without_times(state);

  std::set<Key> present;
  for (const auto& r : running) present.insert({r.proxy, r.name});
  std::vector<Server> servers;
  for (const auto& s : desired.servers)
    if (present.count({backend_name(s.backend), s.name})) servers.push_back(s);
  BERTH_TRY(std::string config, render_config(desired, paths().config_paths(), servers));
  const std::string candidate = paths().config + ".new";
  BERTH_CHECK(write_file_atomic(candidate, config));
  BERTH_CHECK(process_.check_config(candidate));
  std::error_code ec;
  std::filesystem::rename(candidate, paths().config, ec);
  if (ec) return Error(Errc::io, "cannot replace " + paths().config + ": " + ec.message());
  return process_.reload(description);
}

Status HaproxyDataPlane::save_state(const std::string& state_text) {
  // Rewritten only when a server changed, so a proxy restarted after a crash resumes from the
  // last pass's health instead of re-checking every server from scratch.
  std::string normalized = servers_state_without_times(state_text);
  if (normalized == saved_state_) return {};
  BERTH_CHECK(write_file_atomic(paths().server_state, state_text));
  saved_state_ = std::move(normalized);
  return {};
}

Status HaproxyDataPlane::command(const std::string& line,
                                 std::initializer_list<std::string_view> success) {
  BERTH_TRY(std::string reply, process_.admin().call(line));
  if (!reply_ok(reply, success))
    return Error(Errc::rejected, "'" + line + "': " + reply.substr(0, 300));
  return {};
}

Status HaproxyDataPlane::enable(const Key& key, const Server& s, const HealthCheck& hc) {
  const std::string srv = key.first + "/" + key.second;
  if (!hc.enabled)
    return command("set server " + srv + " state " + (s.draining ? "drain" : "ready"));
  // Leaving maintenance puts the server UP at once; weight 0 keeps it out of rotation for the
  // instant between `state ready` and `health down`, which restarts its checks from zero.
  registering_.insert(key);
  std::string line = "set server " + srv + " weight 0; enable health " + srv + "; set server " +
                     srv + " state ready; set server " + srv + " health down; set server " + srv +
                     " weight 1";
  if (s.draining) line += "; set server " + srv + " state drain";
  return command(line);
}

Status HaproxyDataPlane::reconcile_servers(const DesiredState& desired, bool old_config) {
  BERTH_TRY(std::string state, process_.admin().call("show servers state"));
  BERTH_TRY(std::vector<RuntimeServer> running, parse_servers_state(state));
  Status result = save_state(state);
  auto note = [&result](Status s) {
    if (result.ok() && !s.ok()) result = std::move(s);
  };
  // With the old configuration still running, only backends it has can take servers.
  std::set<std::string> proxies;
  if (old_config) {
    BERTH_TRY(std::string list, process_.admin().call("show backend"));
    std::istringstream in(list);
    for (std::string line; std::getline(in, line);)
      if (!line.empty() && line[0] != '#') proxies.insert(line);
  }

  std::map<std::string, const Backend*> backends;
  for (const auto& b : desired.backends) backends[b.id] = &b;
  std::map<Key, const RuntimeServer*> have;
  for (const auto& r : running) have[{r.proxy, r.name}] = &r;

  std::set<Key> wanted;
  for (const auto& s : desired.servers) {
    const Key key{backend_name(s.backend), s.name};
    const std::string srv = key.first + "/" + key.second;
    const HealthCheck& hc = backends.at(s.backend)->health_check;
    wanted.insert(key);
    if (old_config && !proxies.count(key.first)) continue;
    auto it = have.find(key);
    if (it == have.end()) {
      // Dynamic servers start in maintenance; enable() brings them in after their checks.
      Status added =
          command("add server " + srv + " " + server_arguments(s, hc), {"New server registered."});
      note(added.ok() ? enable(key, s, hc) : std::move(added));
      continue;
    }
    const RuntimeServer& r = *it->second;
    if (r.address != s.address || r.port != s.port) {
      auto reply = process_.admin().call("set server " + srv + " addr " + s.address + " port " +
                                         std::to_string(s.port));
      if (!reply.ok())
        note(reply.error());
      else if (reply->find("changed") == std::string::npos &&
               reply->find("no need to change") == std::string::npos)
        note(Error(Errc::rejected, "set server " + srv + " addr: " + *reply));
    }
    if (r.in_maintenance()) {
      note(enable(key, s, hc));  // was being removed, or restored in maintenance
    } else {
      if (r.op_state == RuntimeServer::kRunning) registering_.erase(key);
      if (s.draining && !r.draining())
        note(command("set server " + srv + " state drain"));
      else if (!s.draining && r.draining())
        // Registered again: like a new target, no traffic until it passes its checks again
        // (`state ready` alone would keep its old UP state, however stale).
        note(enable(key, s, hc));
    }
  }

  for (const auto& r : running) {
    const Key key{r.proxy, r.name};
    // Backends no longer desired vanish with the reload that removed them.
    if (wanted.count(key) || !r.proxy.starts_with(kBackendPrefix)) continue;
    const std::string srv = r.proxy + "/" + r.name;
    if (!r.in_maintenance()) {
      Status s = command("set server " + srv + " state maint");
      if (!s.ok()) {
        note(std::move(s));
        continue;
      }
    }
    // Deletion waits for the connections still using the server; a later pass retries it.
    auto reply = process_.admin().call("del server " + srv);
    if (!reply.ok())
      note(reply.error());
    else if (!reply_ok(*reply, {"Server deleted."}) &&
             reply->find("still has connections") == std::string::npos)
      note(Error(Errc::rejected, "del server " + srv + ": " + *reply));
  }

  std::erase_if(registering_, [&](const Key& k) { return !wanted.count(k); });
  note(store_registering());
  return result;
}

Result<std::vector<ServerHealth>> HaproxyDataPlane::health() {
  if (idle_) return std::vector<ServerHealth>();
  load_registering();
  BERTH_TRY(std::string csv, process_.admin().call("show stat"));
  BERTH_TRY(std::vector<StatServer> rows, parse_stat(csv));
  std::vector<ServerHealth> out;
  for (const auto& row : rows) {
    if (!row.proxy.starts_with(kBackendPrefix)) continue;
    const Key key{row.proxy, row.name};
    if (row.status.starts_with("UP")) registering_.erase(key);
    out.push_back(to_server_health(row, registering_.count(key) > 0));
  }
  // Reporting health does not depend on remembering it; apply() reports a failed write.
  (void)store_registering();
  return out;
}

Status HaproxyDataPlane::stop() { return process_.stop(); }

void HaproxyDataPlane::load_registering() {
  if (registering_loaded_) return;
  registering_loaded_ = true;
  auto text = read_file(paths().registering);
  if (!text.ok()) return;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    auto slash = line.find('/');
    if (slash != std::string::npos)
      registering_.insert({line.substr(0, slash), line.substr(slash + 1)});
  }
  stored_registering_ = registering_;
}

Status HaproxyDataPlane::store_registering() {
  if (registering_ == stored_registering_) return {};
  std::string text;
  for (const auto& [proxy, name] : registering_) text += proxy + "/" + name + "\n";
  BERTH_CHECK(write_file_atomic(paths().registering, text));
  stored_registering_ = registering_;
  return {};
}

}  // namespace berth::lb
