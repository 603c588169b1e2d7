// FakeDriver's Driver calls: the engine semantics the agent relies on, in memory.
#include <algorithm>
#include <cstdio>
#include <thread>

#include "runtime/fake/fake_driver.h"

namespace berth::runtime {
namespace {

Error no_such_container(const std::string& key) {
  return {Errc::not_found, "no such container: " + key};
}

bool labels_match(const Labels& labels, const std::vector<std::string>& wanted) {
  for (const std::string& w : wanted) {
    auto eq = w.find('=');
    auto it = labels.find(w.substr(0, eq));
    if (it == labels.end()) return false;
    if (eq != std::string::npos && it->second != w.substr(eq + 1)) return false;
  }
  return true;
}

int signal_number(const std::string& s) {
  std::string n = s.rfind("SIG", 0) == 0 ? s.substr(3) : s;
  static const std::pair<const char*, int> kNames[] = {
      {"HUP", 1}, {"INT", 2}, {"QUIT", 3}, {"KILL", 9}, {"USR1", 10}, {"USR2", 12}, {"TERM", 15}};
  for (const auto& [name, num] : kNames)
    if (n == name) return num;
  return std::atoi(n.c_str());
}

}  // namespace

// Records the call and runs `body` under the lock, unless a scripted failure replaces it; a
// failure with `apply` runs the body and still fails.
template <class F>
auto FakeDriver::run_call(Op op, std::string target, std::string detail, F&& body)
    -> decltype(body()) {
  std::lock_guard lock(mu_);
  auto failure = begin(op, std::move(target), std::move(detail));
  if (failure && !failure->apply) return failure->error;
  auto result = body();
  if (failure) return failure->error;
  return result;
}

Status FakeDriver::ping() {
  return run_call(Op::ping, "", "", [&] { return Status(); });
}

Result<EngineVersion> FakeDriver::version() {
  return run_call(Op::version, "", "", [&] {
    return Result<EngineVersion>(EngineVersion{.name = "Fake Engine",
                                               .version = "1.0.0",
                                               .api_version = "1.40",
                                               .os = "linux",
                                               .arch = "amd64",
                                               .kernel = "fake"});
  });
}

Result<bool> FakeDriver::image_present(const std::string& image) {
  return run_call(Op::image_present, image, "",
                  [&] { return Result<bool>(images_.count(image) > 0); });
}

Result<ImageInfo> FakeDriver::inspect_image(const std::string& image) {
  return run_call(Op::inspect_image, image, "", [&] {
    auto it = images_.find(image);
    if (it == images_.end())
      return Result<ImageInfo>(Error(Errc::not_found, "no such image: " + image));
    return Result<ImageInfo>(ImageInfo{
        .id = it->second, .digest = "sha256:" + it->second.substr(7), .repo_tags = {image}});
  });
}

Result<ImageInfo> FakeDriver::pull(const std::string& image,
                                   const std::optional<RegistryAuth>& auth) {
  return run_call(Op::pull, image, auth ? "auth=" + auth->username : std::string(), [&] {
    if (auto it = pull_errors_.find(image); it != pull_errors_.end())
      return Result<ImageInfo>(it->second);
    if (!images_.count(image)) {
      char id[80];
      std::snprintf(id, sizeof id, "sha256:1mage000%056zx", images_.size() + 1);
      images_[image] = id;
    }
    const std::string& id = images_[image];
    return Result<ImageInfo>(
        ImageInfo{.id = id, .digest = "sha256:" + id.substr(7), .repo_tags = {image}});
  });
}

Result<std::string> FakeDriver::create(const ContainerSpec& spec) {
  return run_call(Op::create, spec.name, "", [&] {
    auto img = images_.find(spec.image);
    if (img == images_.end())
      return Result<std::string>(Error(Errc::not_found, "no such image: " + spec.image));
    if (!spec.name.empty() && find(spec.name))
      return Result<std::string>(
          Error(Errc::conflict, "the container name \"" + spec.name + "\" is already in use"));
    char id[80];
    std::snprintf(id, sizeof id, "%064llx", static_cast<unsigned long long>(next_id_++));
    Container c;
    c.spec = spec;
    c.spec.ulimits = effective_ulimits(spec);
    ContainerState& s = c.state;
    s.id = id;
    s.name = spec.name.empty() ? std::string("fake_") + std::string(id).substr(56) : spec.name;
    s.image = spec.image;
    s.image_id = img->second;
    s.status = ContainerStatus::created;
    s.created_at = now_;
    s.labels = spec.labels;
    s.memory_bytes = spec.memory_bytes;
    // Podman assigns dynamic host ports at create time (Docker at start); either way inspect
    // after create or start reads them back.
    if (spec.network_mode == NetworkMode::bridge)
      for (const PortMapping& p : spec.ports)
        s.ports.push_back(
            {p.container_port, p.protocol, p.host_ip, p.host_port ? p.host_port : next_port_++});
    containers_[s.id] = c;
    emit(c, "create");
    return Result<std::string>(s.id);
  });
}

Status FakeDriver::start(const std::string& key) {
  return run_call(Op::start, key, "", [&] {
    Container* c = find(key);
    if (!c) return Status(no_such_container(key));
    if (c->state.running) return Status();  // like the engines' 304
    Script& script = script_for(c->state.name);
    if (script.start_error) return Status(*script.start_error);
    c->state.status = ContainerStatus::running;
    c->state.running = true;
    c->state.exit_code = 0;
    c->state.started_at = now_;
    c->state.finished_at.reset();
    c->state.health = c->spec.healthcheck ? HealthStatus::starting : HealthStatus::none;
    ++c->run;
    if (script.exit_after)
      timers_.push_back({now_ + *script.exit_after, next_seq_++, c->state.id, c->run});
    emit(*c, "start");
    return Status();
  });
}

Status FakeDriver::stop(const std::string& key, std::chrono::seconds grace) {
  return run_call(Op::stop, key, "grace=" + std::to_string(grace.count()), [&] {
    Container* c = find(key);
    if (!c) return Status(no_such_container(key));
    if (!c->state.running) return Status();  // like the engines' 304
    const Script& script = script_for(c->state.name);
    // No real waiting: fake time does not move, the recorded grace is what tests check.
    exit_locked(*c, script.ignores_sigterm ? 137 : script.sigterm_exit_code, false);
    return Status();
  });
}

Status FakeDriver::kill(const std::string& key, const std::string& signal) {
  return run_call(Op::kill, key, signal, [&] {
    Container* c = find(key);
    if (!c) return Status(no_such_container(key));
    if (!c->state.running) return Status(Error(Errc::conflict, "container not running: " + key));
    int sig = signal_number(signal);
    const Script& script = script_for(c->state.name);
    if (sig == 9 || (sig == 15 && !script.ignores_sigterm))
      exit_locked(*c, sig == 15 ? script.sigterm_exit_code : 137, false);
    return Status();
  });
}

Status FakeDriver::remove(const std::string& key, bool force) {
  return run_call(Op::remove, key, force ? "force" : std::string(), [&] {
    Container* c = find(key);
    if (!c) return Status(no_such_container(key));
    if (c->state.running && !force)
      return Status(Error(Errc::conflict, "cannot remove a running container: " + key));
    if (c->state.running) exit_locked(*c, 137, false);
    emit(*c, "destroy");
    containers_.erase(c->state.id);
    return Status();
  });
}

Result<ContainerState> FakeDriver::inspect(const std::string& key) {
  return run_call(Op::inspect, key, "", [&] {
    Container* c = find(key);
    if (!c) return Result<ContainerState>(no_such_container(key));
    return Result<ContainerState>(c->state);
  });
}

Result<std::vector<ContainerState>> FakeDriver::list(const ListFilter& filter) {
  return run_call(Op::list, "", "", [&] {
    std::vector<ContainerState> out;
    for (const auto& [id, c] : containers_)
      if ((filter.all || c.state.running) && labels_match(c.state.labels, filter.labels))
        out.push_back(c.state);
    return Result<std::vector<ContainerState>>(std::move(out));
  });
}

Result<ExecResult> FakeDriver::exec_check(const std::string& key,
                                          const std::vector<std::string>& cmd,
                                          std::chrono::milliseconds timeout, size_t max_output) {
  (void)timeout;
  std::string joined;
  for (const auto& a : cmd) joined += (joined.empty() ? "" : " ") + a;
  return run_call(Op::exec_check, key, joined, [&] {
    Container* c = find(key);
    if (!c) return Result<ExecResult>(no_such_container(key));
    if (!c->state.running)
      return Result<ExecResult>(Error(Errc::conflict, "container not running: " + key));
    auto& queue = script_for(c->state.name).exec_results;
    if (queue.empty()) return Result<ExecResult>(ExecResult{});
    Result<ExecResult> r = std::move(queue.front());
    queue.pop_front();
    if (r.ok() && r->output.size() > max_output) {
      r->output.resize(max_output);
      r->truncated = true;
    }
    return r;
  });
}

Result<StatsSample> FakeDriver::stats(const std::string& key) {
  return run_call(Op::stats, key, "", [&] {
    Container* c = find(key);
    if (!c) return Result<StatsSample>(no_such_container(key));
    const Script& script = script_for(c->state.name);
    if (script.stats) return Result<StatsSample>(*script.stats);
    return Result<StatsSample>(
        StatsSample{.read = now_,
                    .online_cpus = 2,
                    .memory_limit = static_cast<uint64_t>(c->spec.memory_bytes)});
  });
}

Result<std::unique_ptr<EventSubscription>> FakeDriver::events(const EventFilter& filter,
                                                              EventHandlers handlers) {
  using R = Result<std::unique_ptr<EventSubscription>>;
  return run_call(Op::events, "", "",
                  [&] { return R(subscribe_locked(filter, std::move(handlers))); });
}

}  // namespace berth::runtime
