#include "store/sqlite/sqlite_store.h"

#include <sqlite3.h>

#include <iterator>

#include "store/memory/memory_store.h"

namespace berth::store {
namespace {

// Ordered schema migrations: step i takes the database from user_version i to i + 1. Append new
// steps; never edit a released one. All pending steps run in one transaction at open.
constexpr const char* kMigrations[] = {
    // 1: the key-value table (WITHOUT ROWID: the key is the only access path) and the revision
    // counter, kept as a single row so deletes and no-key commits still persist the revision.
    "CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL,"
    "  create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 0), revision INTEGER NOT NULL);"
    "INSERT INTO meta (id, revision) VALUES (0, 0);",
    // 2: values are JSON documents of a few KiB, and WITHOUT ROWID stores them inside the key's
    // B-tree, where every insert moves large cells around and spills to overflow pages. A rowid
    // table keeps values in its own tree and the key in a small unique index (measured: a
    // RunTask's commit of 10 tasks got markedly cheaper).
    "CREATE TABLE kv2 (id INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, value BLOB NOT NULL,"
    "  create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL);"
    "INSERT INTO kv2 (key, value, create_rev, mod_rev)"
    "  SELECT key, value, create_rev, mod_rev FROM kv ORDER BY key;"
    "DROP TABLE kv;"
    "ALTER TABLE kv2 RENAME TO kv;",
};
static_assert(std::size(kMigrations) == kSqliteSchemaVersion);

struct DbClose {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using DbPtr = std::unique_ptr<sqlite3, DbClose>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalize>;

Error sqlite_error(sqlite3* db, int rc, const std::string& what) {
  int primary = rc & 0xff;
  Errc code = primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB ? Errc::corrupt : Errc::io;
  std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  return Error(code, what + ": " + msg);
}

Status exec(sqlite3* db, const char* sql) {
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, std::string("executing '") + sql + "'");
  return {};
}

Result<StmtPtr> prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr);
  if (rc != SQLITE_OK) return sqlite_error(db, rc, std::string("preparing '") + sql + "'");
  return StmtPtr(s);
}

// Runs a single-row query returning one integer.
Result<int64_t> query_int(sqlite3* db, const char* sql) {
  BERTH_TRY(StmtPtr s, prepare(db, sql));
  int rc = sqlite3_step(s.get());
  if (rc != SQLITE_ROW) return sqlite_error(db, rc, std::string("running '") + sql + "'");
  return sqlite3_column_int64(s.get(), 0);
}

std::string column_bytes(sqlite3_stmt* s, int col) {
  const void* p = sqlite3_column_blob(s, col);  // NULL for a zero-length blob
  int n = sqlite3_column_bytes(s, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

Status migrate(sqlite3* db) {
  BERTH_CHECK(exec(db, "BEGIN IMMEDIATE"));
  auto body = [&]() -> Status {
    BERTH_TRY(int64_t version, query_int(db, "PRAGMA user_version"));
    if (version > kSqliteSchemaVersion || version < 0) {
      return Error(Errc::corrupt, "database schema version " + std::to_string(version) +
                                      " is newer than this binary supports (" +
                                      std::to_string(kSqliteSchemaVersion) + ")");
    }
    if (version == kSqliteSchemaVersion) return {};
    for (int64_t v = version; v < kSqliteSchemaVersion; ++v) BERTH_CHECK(exec(db, kMigrations[v]));
    // user_version lives in the database header, so it commits atomically with the steps.
    std::string set = "PRAGMA user_version = " + std::to_string(kSqliteSchemaVersion);
    return exec(db, set.c_str());
  };
  Status s = body();
  if (!s.ok()) {
    (void)exec(db, "ROLLBACK");
    return s;
  }
  return exec(db, "COMMIT");
}

class SqliteStore final : public Store {
 public:
  static Result<std::unique_ptr<Store>> open(const std::string& path, const SqliteOptions& opts);

  Result<std::optional<KeyValue>> get(std::string_view key) override { return mem_->get(key); }
  Result<RangeResult> range(const RangeRequest& req) override { return mem_->range(req); }
  int64_t revision() override { return mem_->revision(); }
  std::unique_ptr<Subscription> watch(std::string prefix, WatchFn fn) override {
    return mem_->watch(std::move(prefix), std::move(fn));
  }
  Result<int64_t> commit(const Txn& txn) override {
    return mem_->commit_with(txn, [this](const std::vector<Event>& changes, int64_t rev) {
      return write(changes, rev);
    });
  }

 private:
  SqliteStore() = default;
  Status write(const std::vector<Event>& changes, int64_t revision);
  Status write_in_txn(const std::vector<Event>& changes, int64_t revision);
  Status step_done(sqlite3_stmt* s, const char* what);

  // Declaration order matters for destruction: statements are finalized before the db closes.
  DbPtr db_;
  StmtPtr begin_, commit_, rollback_, read_rev_, upsert_, erase_, write_rev_;
  std::unique_ptr<MemoryStore> mem_;
};

Status SqliteStore::step_done(sqlite3_stmt* s, const char* what) {
  int rc = sqlite3_step(s);
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  if (rc != SQLITE_DONE) return sqlite_error(db_.get(), rc, what);
  return {};
}

// Called by MemoryStore under its commit lock, so statements are never used concurrently.
Status SqliteStore::write(const std::vector<Event>& changes, int64_t revision) {
  BERTH_CHECK(step_done(begin_.get(), "beginning transaction"));
  Status s = write_in_txn(changes, revision);
  if (s.ok()) s = step_done(commit_.get(), "committing transaction");
  // A failed COMMIT (e.g. SQLITE_BUSY) can leave the transaction open; some errors roll it back
  // automatically. Either way the database must end up without our changes.
  if (!s.ok() && !sqlite3_get_autocommit(db_.get())) {
    (void)step_done(rollback_.get(), "rolling back");
  }
  return s;
}

Status SqliteStore::write_in_txn(const std::vector<Event>& changes, int64_t revision) {
  sqlite3_stmt* rr = read_rev_.get();
  int rc = sqlite3_step(rr);
  int64_t on_disk = rc == SQLITE_ROW ? sqlite3_column_int64(rr, 0) : -1;
  sqlite3_reset(rr);
  if (rc != SQLITE_ROW) return sqlite_error(db_.get(), rc, "reading revision");
  if (on_disk != revision - 1) {
    return Error(Errc::io, "database revision is " + std::to_string(on_disk) + ", expected " +
                               std::to_string(revision - 1) +
                               ": another process modified it; restart to reload");
  }
  for (const Event& e : changes) {
    const std::string& k = e.kv.key;
    if (e.deleted) {
      sqlite3_bind_blob(erase_.get(), 1, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
      BERTH_CHECK(step_done(erase_.get(), "deleting key"));
    } else {
      sqlite3_stmt* u = upsert_.get();
      const std::string& v = e.kv.value;
      // data() is never null, so empty strings bind as zero-length blobs, not NULL.
      sqlite3_bind_blob(u, 1, k.data(), static_cast<int>(k.size()), SQLITE_STATIC);
      sqlite3_bind_blob(u, 2, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
      sqlite3_bind_int64(u, 3, e.kv.create_revision);
      sqlite3_bind_int64(u, 4, e.kv.mod_revision);
      BERTH_CHECK(step_done(u, "writing key"));
    }
  }
  sqlite3_bind_int64(write_rev_.get(), 1, revision);
  return step_done(write_rev_.get(), "writing revision");
}

Result<std::unique_ptr<Store>> SqliteStore::open(const std::string& path,
                                                 const SqliteOptions& opts) {
  std::unique_ptr<SqliteStore> st(new SqliteStore());
  sqlite3* raw = nullptr;
  // NOMUTEX: every use of the connection is serialized by MemoryStore's commit lock (or happens
  // here, before the store is shared).
  int rc =
      sqlite3_open_v2(path.c_str(), &raw,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  st->db_.reset(raw);
  if (rc != SQLITE_OK) return sqlite_error(raw, rc, "opening " + path);
  sqlite3* db = raw;
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, static_cast<int>(opts.busy_timeout.count()));

  {
    BERTH_TRY(StmtPtr wal, prepare(db, "PRAGMA journal_mode = WAL"));
    rc = sqlite3_step(wal.get());
    const unsigned char* mode = rc == SQLITE_ROW ? sqlite3_column_text(wal.get(), 0) : nullptr;
    if (!mode || std::string_view(reinterpret_cast<const char*>(mode)) != "wal") {
      return sqlite_error(db, rc, "enabling WAL mode on " + path);
    }
  }
  // FULL: the WAL is fsynced at every COMMIT, so an acknowledged commit survives power loss, not
  // just a process crash (NORMAL would only sync at checkpoints).
  BERTH_CHECK(exec(db, "PRAGMA synchronous = FULL"));
  // Writes update B-tree pages; with SQLite's 2 MiB default cache a large store re-reads them
  // from the kernel on every commit. Reads never come here (they are served from memory), so a
  // bigger page cache only serves the write path.
  BERTH_CHECK(exec(db, "PRAGMA cache_size = -65536"));
  BERTH_CHECK(migrate(db));

  BERTH_TRY(st->begin_, prepare(db, "BEGIN IMMEDIATE"));
  BERTH_TRY(st->commit_, prepare(db, "COMMIT"));
  BERTH_TRY(st->rollback_, prepare(db, "ROLLBACK"));
  BERTH_TRY(st->read_rev_, prepare(db, "SELECT revision FROM meta WHERE id = 0"));
  BERTH_TRY(st->upsert_, prepare(db,
                                 "INSERT INTO kv (key, value, create_rev, mod_rev) "
                                 "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (key) DO UPDATE SET "
                                 "value = ?2, create_rev = ?3, mod_rev = ?4"));
  BERTH_TRY(st->erase_, prepare(db, "DELETE FROM kv WHERE key = ?1"));
  BERTH_TRY(st->write_rev_, prepare(db, "UPDATE meta SET revision = ?1 WHERE id = 0"));

  BERTH_TRY(int64_t revision, query_int(db, "SELECT revision FROM meta WHERE id = 0"));
  std::vector<KeyValue> kvs;
  BERTH_TRY(StmtPtr scan, prepare(db, "SELECT key, value, create_rev, mod_rev FROM kv"));
  while ((rc = sqlite3_step(scan.get())) == SQLITE_ROW) {
    KeyValue kv{column_bytes(scan.get(), 0), column_bytes(scan.get(), 1),
                sqlite3_column_int64(scan.get(), 2), sqlite3_column_int64(scan.get(), 3)};
    if (kv.create_revision <= 0 || kv.create_revision > kv.mod_revision ||
        kv.mod_revision > revision) {
      return Error(Errc::corrupt, "key '" + kv.key +
                                      "' has revisions inconsistent with store "
                                      "revision " +
                                      std::to_string(revision));
    }
    kvs.push_back(std::move(kv));
  }
  if (rc != SQLITE_DONE) return sqlite_error(db, rc, "loading keys");
  st->mem_ = std::make_unique<MemoryStore>(std::move(kvs), revision);
  return std::unique_ptr<Store>(std::move(st));
}

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path,
                                                 const SqliteOptions& options) {
  return SqliteStore::open(path, options);
}

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path) {
  return open_sqlite_store(path, SqliteOptions{});
}

}  // namespace berth::store
