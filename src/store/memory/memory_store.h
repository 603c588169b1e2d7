#pragma once
// MemoryStore: the ordered map, revision counter, transaction logic and watch fan-out that every
// Store implementation shares. Used directly in unit tests (open_memory_store()), and by
// SqliteStore, which keeps its whole dataset here and only adds a durable write to each commit.
//
// Locking: readers (get/range/revision) take `mu_` shared and never wait for storage I/O.
// Committers are serialized by `commit_mu_`; a committer checks compares and runs the persist hook
// (the SQLite write and fsync) holding only `commit_mu_`, then takes `mu_` exclusively just long
// enough to swap the changes into the map. Reads therefore never block behind an fsync.

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <vector>

#include "store/memory/watch_hub.h"
#include "store/store.h"

namespace berth::store {

class MemoryStore final : public Store {
 public:
  /// Makes a commit durable before it becomes visible. `changes` holds one entry per key the txn
  /// changes (its final state: a put with the new KeyValue, or a delete), in key order; `revision`
  /// is the revision being committed. An error aborts the commit with nothing applied.
  using PersistFn = std::function<Status(const std::vector<Event>& changes, int64_t revision)>;

  MemoryStore() = default;
  /// Starts from existing contents (e.g. loaded from disk) at `revision`.
  MemoryStore(std::vector<KeyValue> kvs, int64_t revision);

  Result<std::optional<KeyValue>> get(std::string_view key) override;
  Result<RangeResult> range(const RangeRequest& req) override;
  Result<int64_t> commit(const Txn& txn) override { return commit_with(txn, nullptr); }
  int64_t revision() override { return revision_.load(std::memory_order_acquire); }
  std::unique_ptr<Subscription> watch(std::string prefix, WatchFn fn) override;

  /// commit() with a durability hook run after the compares pass and before anything is visible.
  /// A txn whose ops change nothing (no ops, or only deletes of missing keys) returns the current
  /// revision without calling `persist` or bumping the revision.
  Result<int64_t> commit_with(const Txn& txn, const PersistFn& persist);

 private:
  // std::less<> so lookups by string_view do not allocate.
  using Map = std::map<std::string, KeyValue, std::less<>>;

  std::mutex commit_mu_;  // serializes committers; held across the persist hook
  std::shared_mutex mu_;  // guards data_ and revision_ writes
  Map data_;              // mutated only by a committer holding commit_mu_ and mu_ (unique)
  std::atomic<int64_t> revision_{0};
  WatchHub hub_;  // declared last: destroyed first, so delivery stops before data_ goes
};

}  // namespace berth::store
