#include "store/memory/watch_hub.h"

#include <algorithm>

namespace berth::store {

struct WatchHub::Watcher {
  std::string prefix;
  WatchFn fn;
  int64_t start_revision = 0;
  // Held by the delivery thread while `fn` runs, so a Subscription destroyed on another thread
  // waits for an in-flight callback and the caller may free what `fn` captured right after.
  std::mutex call_mu;
  std::atomic<bool> active{true};
};

namespace {
// The watcher whose callback is running on this thread, so a callback may destroy its own
// Subscription without self-deadlocking on call_mu.
thread_local const void* tl_in_callback = nullptr;
}  // namespace

class WatchHub::WatcherSubscription final : public Subscription {
 public:
  explicit WatcherSubscription(std::shared_ptr<Watcher> w) : w_(std::move(w)) {}
  // Touches only the Watcher (shared), never the hub, so it may outlive the store.
  ~WatcherSubscription() override {
    if (tl_in_callback == w_.get()) {
      w_->active = false;  // inside our own callback: call_mu is already ours
      return;
    }
    std::lock_guard lock(w_->call_mu);
    w_->active = false;
  }

 private:
  std::shared_ptr<Watcher> w_;
};

WatchHub::~WatchHub() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<Subscription> WatchHub::subscribe(
    std::string prefix, WatchFn fn, const std::function<int64_t()>& current_revision) {
  auto w = std::make_shared<Watcher>();
  w->prefix = std::move(prefix);
  w->fn = std::move(fn);
  std::lock_guard lock(mu_);
  w->start_revision = current_revision();
  watchers_.push_back(w);
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  return std::make_unique<WatcherSubscription>(std::move(w));
}

void WatchHub::publish(std::vector<Event> events, int64_t revision) {
  {
    std::lock_guard lock(mu_);
    if (watchers_.empty()) return;
    queue_.push_back({std::move(events), revision});
  }
  cv_.notify_one();
}

void WatchHub::run() {
  for (;;) {
    Batch batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything published has been delivered
      batch = std::move(queue_.front());
      queue_.pop_front();
    }
    deliver(batch);
  }
}

void WatchHub::deliver(const Batch& batch) {
  std::vector<std::shared_ptr<Watcher>> watchers;
  {
    std::lock_guard lock(mu_);
    std::erase_if(watchers_, [](const auto& w) { return !w->active; });
    watchers = watchers_;
  }
  std::vector<Event> mine;
  for (const auto& w : watchers) {
    if (batch.revision <= w->start_revision) continue;  // already in the watcher's snapshot
    mine.clear();
    for (const Event& e : batch.events) {
      if (e.kv.key.starts_with(w->prefix)) mine.push_back(e);
    }
    if (mine.empty()) continue;
    std::lock_guard lock(w->call_mu);
    if (!w->active) continue;
    tl_in_callback = w.get();
    w->fn(mine, batch.revision);
    tl_in_callback = nullptr;
  }
}

}  // namespace berth::store
