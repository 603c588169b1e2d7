// ManagedTask, the container side: pull, create, start, watch, health-check, stop and remove
// through the Driver. All of it runs on the task's own thread.

#include <thread>

#include "agent/managed_task.h"
#include "common/clock.h"

namespace berth::agent {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {
double now_epoch() { return epoch_seconds(std::chrono::system_clock::now()); }
}  // namespace

void ManagedTask::readopt() {
  for (auto& c : containers_) {
    if (c.runtime_id.empty() || c.exited) continue;
    auto st = driver_.inspect(c.runtime_id);
    if (!st.ok()) {
      if (st.error().code != runtime::Errc::not_found) continue;  // engine busy: poll later
      if (c.started) {
        c.exited = true;
        c.reason = "container disappeared while the agent was not running";
      } else {
        c.runtime_id.clear();  // never started: create it again
        c.created = false;
      }
      continue;
    }
    if (st->running) {
      // Adopted as it is: not restarted. Health checks resume from now.
      c.created = c.started = true;
      c.started_at = Clock::now();
      c.next_check = Clock::now();
      if (c.bindings.empty()) c.bindings = st->ports;
    } else if (st->status == runtime::ContainerStatus::created && !c.started) {
      c.created = true;  // start_ready_containers() starts it
    } else {
      c.exited = true;
      c.exit_code = st->exit_code;
    }
  }
  persist();
}

bool ManagedTask::start_ready_containers() {
  auto now = Clock::now();
  for (bool progress = true; progress;) {
    progress = false;
    for (auto& c : containers_) {
      if (c.started || c.exited) continue;
      bool ready = true;
      for (const auto& d : c.plan.depends_on) {
        Container* dep = nullptr;
        for (auto& k : containers_) {
          if (k.plan.name == d.container) dep = &k;
        }
        bool met = false;
        std::string broken;
        if (d.condition == "START") {
          met = dep->started || dep->exited;
        } else if (d.condition == "COMPLETE") {
          met = dep->exited;
        } else if (d.condition == "SUCCESS") {
          met = dep->exited && dep->exit_code == 0;
          if (dep->exited && !met)
            broken = "exited with code " + std::to_string(dep->exit_code.value_or(-1));
        } else if (d.condition == "HEALTHY") {
          met = dep->health == "HEALTHY";
          if (dep->exited && !met) broken = "exited before it was HEALTHY";
        } else {
          broken = "has an unknown dependsOn condition " + d.condition;
        }
        if (!met && broken.empty() && dep->plan.start_timeout && dep->started &&
            now >= dep->started_at + *dep->plan.start_timeout) {
          broken = "did not reach " + d.condition + " within its startTimeout";
        }
        if (!broken.empty()) {
          c.exited = true;
          c.reason = "DependencyError: " + d.container + " " + broken;
          fail("TaskFailedToStart",
               "Container " + c.plan.name + " could not start: " + d.container + " " + broken);
          return false;
        }
        ready &= met;
      }
      if (!ready) continue;
      if (auto st = launch(c); !st.ok()) {
        c.exited = true;
        c.reason = st.error().message;
        fail("TaskFailedToStart", c.plan.name + ": " + st.error().message);
        return false;
      }
      progress = true;
      persist();
    }
  }
  return true;
}

Status ManagedTask::launch(Container& c) {
  auto& spec = c.plan.spec;
  runtime::ListFilter mine{{"berth.task-arn=" + arn_, "berth.container-name=" + c.plan.name}, true};
  if (!c.created && restored_) {
    // The agent may have died between create and checkpoint: adopt a running container, remove
    // one that never ran (its creation state is unknown).
    if (auto found = driver_.list(mine); found.ok()) {
      for (const auto& k : *found) {
        if (k.running && !c.created) {
          c.runtime_id = k.id;
          c.created = c.started = true;
          c.started_at = c.next_check = Clock::now();
          if (auto st = driver_.inspect(k.id); st.ok()) c.bindings = st->ports;
          return {};
        }
        (void)driver_.remove(k.id, true);
      }
    }
  }
  if (!c.created) {
    auto present = driver_.image_present(spec.image);
    if (!present.ok() || !*present) {
      if (!pull_started_) pull_started_ = now_epoch();
      std::optional<runtime::RegistryAuth> auth;
      if (auto it = config_.registry_auth.find(runtime::registry_host(spec.image));
          it != config_.registry_auth.end())
        auth = it->second;
      auto pulled = driver_.pull(spec.image, auth);
      pull_stopped_ = now_epoch();
      if (!pulled.ok())
        return Error(pulled.error().code, "CannotPullContainerError: " + pulled.error().message);
      c.image_digest = pulled->digest.empty() ? pulled->id : pulled->digest;
    } else if (auto img = driver_.inspect_image(spec.image); img.ok()) {
      c.image_digest = img->digest.empty() ? img->id : img->digest;
    }
    for (int attempt = 1;; ++attempt) {
      auto id = driver_.create(spec);
      if (id.ok()) {
        c.runtime_id = *id;
        break;
      }
      bool again = runtime::retriable(id.error()) || id.error().code == runtime::Errc::conflict;
      if (!again || attempt >= config_.create_attempts) {
        return Error(id.error().code, "CannotCreateContainerError: " + id.error().message);
      }
      // A create that timed out may still have happened (or a crash left one behind): remove
      // whatever carries this container's labels or name before trying again.
      if (auto found = driver_.list(mine); found.ok()) {
        for (const auto& k : *found) (void)driver_.remove(k.id, true);
      }
      (void)driver_.remove(spec.name, true);
      std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
    }
    c.created = true;
    persist();  // the id is on disk before the container runs
  }
  if (auto st = driver_.start(c.runtime_id); !st.ok()) {
    return Error(st.error().code, "CannotStartContainerError: " + st.error().message);
  }
  c.started = true;
  c.started_at = Clock::now();
  // Docker runs the first check one interval after start; capped at 1 s so HEALTHY (and a
  // dependency on it) is known quickly.
  if (c.plan.health)
    c.next_check = c.started_at + std::min<std::chrono::milliseconds>(c.plan.health->interval, 1s);
  if (spec.network_mode == runtime::NetworkMode::host) {
    for (size_t i = 0; i < c.plan.host_network_ports.size(); ++i) {
      c.bindings.push_back({c.plan.host_network_ports[i], c.plan.host_network_protocols[i], "",
                            c.plan.host_network_ports[i]});
    }
  } else if (!spec.ports.empty()) {
    // Dynamic host ports are only known from the engine, once created.
    if (auto st = driver_.inspect(c.runtime_id); st.ok()) c.bindings = st->ports;
  }
  return {};
}

void ManagedTask::check_exits(bool all) {
  for (auto& c : containers_) {
    if (!c.started || c.exited || c.runtime_id.empty()) continue;
    if (!all && !poked_now_.contains(c.runtime_id)) continue;
    auto st = driver_.inspect(c.runtime_id);
    if (!st.ok()) {
      if (st.error().code == runtime::Errc::not_found) {
        c.exited = true;
        c.reason = "container was removed outside the agent";
      }
      continue;
    }
    if (st->running) continue;
    if (st->status == runtime::ContainerStatus::created) continue;  // start still settling
    c.exited = true;
    c.exit_code = st->exit_code;
    if (st->oom_killed) c.reason = "OutOfMemoryError: Container killed due to memory usage";
  }
  poked_now_.clear();
}

void ManagedTask::run_health_checks() {
  auto now = Clock::now();
  for (auto& c : containers_) {
    if (!c.plan.health || !c.started || c.exited || now < c.next_check) continue;
    const auto& h = *c.plan.health;
    std::vector<std::string> cmd;
    if (h.test[0] == "CMD-SHELL" && h.test.size() > 1) {
      cmd = {"/bin/sh", "-c", h.test[1]};
    } else if (h.test[0] == "CMD") {
      cmd.assign(h.test.begin() + 1, h.test.end());
    } else {
      cmd = h.test;
    }
    auto r = driver_.exec_check(c.runtime_id, cmd, h.timeout);
    if (r.ok() && r->exit_code == 0) {
      c.health = "HEALTHY";
      c.failures = 0;
    } else if (Clock::now() >= c.started_at + h.start_period) {
      // Failures inside startPeriod do not count (ECS and Docker semantics).
      if (++c.failures >= std::max(1, h.retries)) c.health = "UNHEALTHY";
    }
    c.next_check = Clock::now() + h.interval;
  }
}

void ManagedTask::stop_all() {
  // Reverse dependency order: a container stops only after every container depending on it
  // stopped. Containers of one wave stop in parallel, each with its own stopTimeout.
  std::vector<bool> stopped(containers_.size());
  for (size_t done = 0; done < containers_.size();) {
    std::vector<size_t> wave;
    for (size_t i = 0; i < containers_.size(); ++i) {
      if (stopped[i]) continue;
      bool free = true;
      for (size_t j = 0; j < containers_.size(); ++j) {
        if (stopped[j] || j == i) continue;
        for (const auto& d : containers_[j].plan.depends_on)
          free &= d.container != containers_[i].plan.name;
      }
      if (free) wave.push_back(i);
    }
    if (wave.empty()) {  // a dependency cycle: stop the rest together
      for (size_t i = 0; i < containers_.size(); ++i) {
        if (!stopped[i]) wave.push_back(i);
      }
    }
    std::vector<std::thread> threads;
    for (size_t i : wave) {
      Container& c = containers_[i];
      stopped[i] = true;
      ++done;
      if (!c.started || c.runtime_id.empty()) {
        c.exited = true;
        continue;
      }
      threads.emplace_back([this, &c] {
        if (!c.exited && !driver_.stop(c.runtime_id, c.plan.stop_timeout).ok()) {
          (void)driver_.kill(c.runtime_id, "SIGKILL");
        }
        if (auto st = driver_.inspect(c.runtime_id); st.ok() && !st->running) {
          if (!c.exit_code || !c.exited) c.exit_code = st->exit_code;
        }
        c.exited = true;
      });
    }
    for (auto& t : threads) t.join();
  }
}

void ManagedTask::remove_all() {
  for (auto& c : containers_) {
    if (c.runtime_id.empty()) continue;
    (void)driver_.remove(c.runtime_id, true);
  }
}

}  // namespace berth::agent
