#pragma once
// SqliteStore: the single-node durable Store. The whole dataset lives in a MemoryStore, loaded at
// open, so get/range never touch SQLite; each commit is written through to SQLite as one
// transaction (BEGIN IMMEDIATE ... COMMIT, WAL, synchronous=FULL: one fsync of the WAL) and only
// then applied in memory. An acknowledged commit therefore survives kill -9 and power loss; a
// failed write changes nothing and returns Errc::io.
//
// One process owns the file: a commit verifies the on-disk revision matches memory and fails
// with Errc::io if another writer changed it behind our back.

#include <chrono>
#include <memory>
#include <string>

#include "store/store.h"

namespace berth::store {

/// The schema version this binary writes (SQLite's PRAGMA user_version after migrations). Opening
/// a database with a newer version fails with Errc::corrupt rather than misreading it.
inline constexpr int kSqliteSchemaVersion = 2;

struct SqliteOptions {
  // How long a commit waits for a lock held by another connection before failing with Errc::io.
  // Normally nobody else writes; 5 s rides out an operator's ad-hoc `sqlite3` session briefly.
  std::chrono::milliseconds busy_timeout{5000};
};

/// open_sqlite_store() with explicit options.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path,
                                                 const SqliteOptions& options);

}  // namespace berth::store
