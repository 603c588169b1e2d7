#pragma once
// ReconcileLoop: the run loop every controller shares. It calls `pass` on its own thread every
// `period`, and soon after any store change under one of `prefixes`; a burst of changes (the
// pass's own writes, agents' reports) is coalesced into one next pass. A failing pass is logged
// once per distinct message, so a lasting failure (a proxy that cannot bind) does not flood the
// log.

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "store/store.h"

namespace berth::server {

class ReconcileLoop {
 public:
  ReconcileLoop(std::string name, std::function<Status()> pass)
      : name_(std::move(name)), pass_(std::move(pass)) {}
  ~ReconcileLoop() { stop(); }
  ReconcileLoop(const ReconcileLoop&) = delete;
  ReconcileLoop& operator=(const ReconcileLoop&) = delete;

  void start(store::Store& store, const std::vector<std::string>& prefixes,
             std::chrono::milliseconds period) {
    for (const auto& p : prefixes) {
      watches_.push_back(store.watch(p, [this](const std::vector<store::Event>&, int64_t) {
        {
          std::lock_guard lock(mu_);
          dirty_ = true;
        }
        cv_.notify_all();
      }));
    }
    thread_ = std::thread([this, period] {
      std::string last_error;
      std::unique_lock lock(mu_);
      while (!stop_) {
        cv_.wait_for(lock, period, [this] { return stop_ || dirty_; });
        if (stop_) break;
        dirty_ = false;
        lock.unlock();
        Status r = pass_();
        std::string error = r.ok() ? "" : r.error().message;
        if (!error.empty() && error != last_error)
          std::fprintf(stderr, "berth: %s: %s\n", name_.c_str(), error.c_str());
        last_error = error;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        lock.lock();
      }
    });
  }

  void stop() {
    watches_.clear();
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::string name_;
  std::function<Status()> pass_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool dirty_ = false;
  std::thread thread_;
  std::vector<std::unique_ptr<store::Subscription>> watches_;
};

}  // namespace berth::server
