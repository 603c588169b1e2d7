#pragma once
// Store: the control plane's durable state, as an ordered key-value map with a single global
// revision, compare-and-swap transactions and change notification. This is the shape of etcd's
// v3 API on purpose, so an etcd-backed implementation can slot in for HA later.
//
// Every successful commit() is durable when it returns: an acknowledged write survives kill -9.
// Values are opaque bytes (the server stores JSON documents).
// Implementations are thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "common/result.h"

namespace berth::store {

enum class Errc {
  conflict = 1,  // a transaction's compare failed: re-read and retry
  io,            // the backing storage failed; the transaction was not applied
  corrupt,       // the backing storage holds data this version cannot read
};
const std::error_category& category();
inline std::error_code make_error_code(Errc e) { return {static_cast<int>(e), category()}; }

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;  // revision of the commit that created the key
  int64_t mod_revision = 0;     // revision of the last commit that changed it
};

/// A precondition of a transaction: the key's mod_revision must equal `mod_revision`, where 0 means
/// "the key must not exist".
struct Compare {
  std::string key;
  int64_t mod_revision = 0;
};

struct Op {
  enum class Kind { put, del };
  Kind kind = Kind::put;
  std::string key;
  std::string value;  // for put

  static Op put(std::string k, std::string v) { return {Kind::put, std::move(k), std::move(v)}; }
  static Op del(std::string k) { return {Kind::del, std::move(k), {}}; }
};

/// All compares hold -> all ops are applied atomically at one new revision; otherwise nothing is
/// applied and commit() returns Errc::conflict. Deleting a missing key is not an error.
struct Txn {
  std::vector<Compare> compares;
  std::vector<Op> ops;
};

/// One change as seen by watchers: a put (value set) or a delete (value empty, deleted == true).
struct Event {
  bool deleted = false;
  KeyValue kv;
};

/// A range read: keys starting with `prefix`, strictly greater than `start_after` (if not empty),
/// in ascending byte order, at most `limit` of them (0 = no limit).
struct RangeRequest {
  std::string prefix;
  std::string start_after;
  size_t limit = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  bool more = false;     // there are further keys after the last one returned
  int64_t revision = 0;  // store revision the read was served at
};

class Store;

/// Ends a watch when destroyed.
class Subscription {
 public:
  virtual ~Subscription() = default;
};

class Store {
 public:
  virtual ~Store() = default;

  /// The value at `key`, or nullopt if absent.
  virtual Result<std::optional<KeyValue>> get(std::string_view key) = 0;

  /// An ordered prefix scan; see RangeRequest.
  virtual Result<RangeResult> range(const RangeRequest& req) = 0;

  /// Applies `txn` atomically and durably. Returns the new revision, Errc::conflict when a compare
  /// fails, Errc::io when storage fails. A txn with no ops, or whose ops change nothing (only
  /// deletes of missing keys), still checks compares and returns the current revision unchanged.
  virtual Result<int64_t> commit(const Txn& txn) = 0;

  /// The revision of the latest commit (0 for an empty store).
  virtual int64_t revision() = 0;

  /// Calls `fn` after every commit that touches a key starting with `prefix`, with that commit's
  /// events (filtered to the prefix; one per changed key, in key order) and revision. Calls for one
  /// subscription are serialized and in revision order. The watch sees commits after revision() at
  /// the time watch() is called, so "watch, then range()" misses nothing: skip events whose
  /// revision is <= the range's revision. Delivery is asynchronous, on one thread per store:
  /// commit() may return before `fn` runs. `fn` may call any Store method (including commit()) but
  /// must not throw, must not destroy the store, and should be quick (it delays every other watcher
  /// of the store). Destroying the Subscription stops further calls; when destroyed on another
  /// thread it first waits for an in-flight call to finish, so `fn`'s captures may be freed right
  /// after.
  virtual std::unique_ptr<Subscription> watch(
      std::string prefix, std::function<void(const std::vector<Event>&, int64_t revision)> fn) = 0;
};

/// An in-memory store for unit tests; passes the same conformance tests as SQLite.
std::unique_ptr<Store> open_memory_store();

/// Opens (creating if needed) a SQLite database in WAL mode at `path`, applying schema migrations.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

}  // namespace berth::store

template <>
struct std::is_error_code_enum<berth::store::Errc> : std::true_type {};
