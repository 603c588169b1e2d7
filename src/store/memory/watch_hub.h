#pragma once
// WatchHub: fans committed changes out to watch() subscribers on one delivery thread per store.
//
// Why a dedicated thread rather than calling back on the committing thread: a committer may hold
// its own locks when it calls commit() (an HTTP handler, a reconcile loop), and a callback that
// takes one of those locks, blocks, or commits in turn would deadlock or stall unrelated writes.
// With one delivery thread, commit() never runs user code, callbacks may call anything on the store
// (get, range, even commit), and per-subscription ordering falls out of a single FIFO queue that
// committers append to in revision order.
//
// Watchers of one store are called one at a time, in the order they subscribed.
//
// The cost: commit() returns before watchers have been called, and a slow callback delays every
// watcher of the store (the queue grows meanwhile; it is unbounded).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace berth::store {

using WatchFn = std::function<void(const std::vector<Event>&, int64_t revision)>;

class WatchHub {
 public:
  WatchHub() = default;
  /// Delivers everything already published, then stops the delivery thread. Must not be called
  /// from a watch callback.
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  /// Registers `fn`; it will see every commit with a revision greater than `current_revision()`,
  /// which is evaluated under the hub's lock so it cannot race with publish().
  std::unique_ptr<Subscription> subscribe(std::string prefix, WatchFn fn,
                                          const std::function<int64_t()>& current_revision);

  /// Queues one commit's events. Callers publish in revision order (the store calls this while
  /// still serializing commits). Cheap when nobody watches: the events are dropped.
  void publish(std::vector<Event> events, int64_t revision);

 private:
  struct Watcher;
  struct Batch {
    std::vector<Event> events;
    int64_t revision = 0;
  };
  class WatcherSubscription;

  void run();
  void deliver(const Batch& batch);

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  std::vector<std::shared_ptr<Watcher>> watchers_;
  std::deque<Batch> queue_;
  bool stopping_ = false;
  std::thread thread_;  // started by the first subscribe()
};

}  // namespace berth::store
