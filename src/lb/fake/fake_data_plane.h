#pragma once
// FakeDataPlane: an in-memory DataPlane for other modules' unit tests (the LB controller, the
// ELBv2 handlers). It records every applied DesiredState and reports health for the servers of
// the last one: "healthy" once applied, "draining" while draining, unless a test scripted another
// state for a server with set_health(). apply() and health() can be made to fail. Thread-safe, so
// a test may script health while a controller applies on its own thread.

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lb/data_plane.h"

namespace berth::lb {

class FakeDataPlane final : public DataPlane {
 public:
  Status apply(const DesiredState& desired) override {
    std::lock_guard l(mu_);
    ++apply_count_;
    if (apply_error_) return *apply_error_;
    last_ = desired;
    applied_ = true;
    return {};
  }

  Result<std::vector<ServerHealth>> health() override {
    std::lock_guard l(mu_);
    if (health_error_) return *health_error_;
    std::vector<ServerHealth> out;
    if (!last_) return out;
    for (const auto& s : last_->servers) {
      auto it = scripted_.find({s.backend, s.name});
      if (it != scripted_.end()) {
        out.push_back(it->second);
        continue;
      }
      ServerHealth h{s.backend, s.name, "healthy", "", "", 0};
      if (s.draining)
        h = {s.backend,
             s.name,
             "draining",
             "Target.DeregistrationInProgress",
             "Target deregistration is in progress",
             0};
      out.push_back(std::move(h));
    }
    return out;
  }

  /// Reports `state` (with reason and description) for that server while it is applied.
  void set_health(const std::string& backend, const std::string& name, std::string state,
                  std::string reason = "", std::string description = "") {
    std::lock_guard l(mu_);
    scripted_[{backend, name}] = {
        backend, name, std::move(state), std::move(reason), std::move(description), 0};
  }
  /// Back to the default (healthy once applied, draining if draining).
  void clear_health(const std::string& backend, const std::string& name) {
    std::lock_guard l(mu_);
    scripted_.erase({backend, name});
  }
  /// Makes apply() (health()) fail with `e` until called again with std::nullopt.
  void fail_apply(std::optional<Error> e) {
    std::lock_guard l(mu_);
    apply_error_ = std::move(e);
  }
  void fail_health(std::optional<Error> e) {
    std::lock_guard l(mu_);
    health_error_ = std::move(e);
  }

  /// The last successfully applied state (empty before the first).
  DesiredState last() const {
    std::lock_guard l(mu_);
    return last_.value_or(DesiredState{});
  }
  bool applied() const {
    std::lock_guard l(mu_);
    return applied_;
  }
  /// apply() calls, failed ones included.
  int apply_count() const {
    std::lock_guard l(mu_);
    return apply_count_;
  }

 private:
  mutable std::mutex mu_;
  std::optional<DesiredState> last_;
  bool applied_ = false;
  int apply_count_ = 0;
  std::map<std::pair<std::string, std::string>, ServerHealth> scripted_;
  std::optional<Error> apply_error_;
  std::optional<Error> health_error_;
};

}  // namespace berth::lb
