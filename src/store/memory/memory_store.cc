#include "store/memory/memory_store.h"

namespace berth::store {

MemoryStore::MemoryStore(std::vector<KeyValue> kvs, int64_t revision) : revision_(revision) {
  for (KeyValue& kv : kvs) {
    std::string key = kv.key;
    data_.emplace(std::move(key), std::move(kv));
  }
}

Result<std::optional<KeyValue>> MemoryStore::get(std::string_view key) {
  std::shared_lock lock(mu_);
  auto it = data_.find(key);
  if (it == data_.end()) return std::optional<KeyValue>();
  return std::optional<KeyValue>(it->second);
}

Result<RangeResult> MemoryStore::range(const RangeRequest& req) {
  RangeResult out;
  std::shared_lock lock(mu_);
  out.revision = revision_.load(std::memory_order_relaxed);
  // Start at the first key >= prefix, or the first key > start_after when that is further on.
  auto it = req.start_after.empty() || req.start_after < req.prefix
                ? data_.lower_bound(req.prefix)
                : data_.upper_bound(req.start_after);
  for (; it != data_.end() && it->first.starts_with(req.prefix); ++it) {
    if (req.limit != 0 && out.kvs.size() == req.limit) {
      out.more = true;
      break;
    }
    out.kvs.push_back(it->second);
  }
  return out;
}

std::unique_ptr<Subscription> MemoryStore::watch(std::string prefix, WatchFn fn) {
  return hub_.subscribe(std::move(prefix), std::move(fn), [this] { return revision(); });
}

Result<int64_t> MemoryStore::commit_with(const Txn& txn, const PersistFn& persist) {
  std::lock_guard commit_lock(commit_mu_);
  // Only committers mutate data_, and we are the only committer, so reading it here without mu_
  // is safe (concurrent readers only read).
  const int64_t current = revision_.load(std::memory_order_relaxed);
  for (const Compare& c : txn.compares) {
    auto it = data_.find(c.key);
    int64_t actual = it == data_.end() ? 0 : it->second.mod_revision;
    if (actual != c.mod_revision) {
      return Error(Errc::conflict, "compare failed on key '" + c.key + "': mod_revision is " +
                                       std::to_string(actual) + ", expected " +
                                       std::to_string(c.mod_revision));
    }
  }

  // Fold the ops, in order, into each key's final state. `deleted` keys that did not exist before
  // the txn are dropped below, so deleting a missing key is a no-op.
  const int64_t next = current + 1;
  std::map<std::string, Event, std::less<>> changes;
  for (const Op& op : txn.ops) {
    auto [cit, inserted] = changes.try_emplace(op.key);
    Event& ch = cit->second;
    if (inserted) {
      auto it = data_.find(op.key);
      ch.deleted = it == data_.end();
      if (!ch.deleted) ch.kv = it->second;
      ch.kv.key = op.key;
    }
    if (op.kind == Op::Kind::put) {
      if (ch.deleted) ch.kv.create_revision = next;
      ch.deleted = false;
      ch.kv.value = op.value;
      ch.kv.mod_revision = next;
    } else {
      ch.deleted = true;
      ch.kv.value.clear();
      ch.kv.create_revision = 0;
    }
  }
  std::vector<Event> events;
  events.reserve(changes.size());
  for (auto& [key, ch] : changes) {
    if (ch.deleted) {
      if (!data_.contains(key)) continue;  // was absent before and after the txn
      ch.kv.mod_revision = next;
    }
    events.push_back(std::move(ch));
  }
  if (events.empty()) return current;

  if (persist) BERTH_CHECK(persist(events, next));

  {
    std::unique_lock lock(mu_);
    for (const Event& e : events) {
      if (e.deleted) {
        data_.erase(e.kv.key);
      } else {
        data_.insert_or_assign(e.kv.key, e.kv);
      }
    }
    revision_.store(next, std::memory_order_release);
  }
  // Still under commit_mu_, so batches reach the hub in revision order.
  hub_.publish(std::move(events), next);
  return next;
}

}  // namespace berth::store

namespace berth::store {

std::unique_ptr<Store> open_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace berth::store
