// SQLite-specific behaviour: what is on disk, and what survives reopening and kill -9.

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "store/sqlite/sqlite_store.h"
#include "store/store.h"
#include "store/tests/temp_dir.h"

namespace berth::store {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<Store> open_or_fail(const std::string& path, const SqliteOptions& opts = {}) {
  auto r = open_sqlite_store(path, opts);
  if (!r.ok()) {
    ADD_FAILURE() << r.error().message;
    return nullptr;
  }
  return std::move(r).value();
}

// Runs `sql` on a separate raw connection and returns the first column of the first row.
int64_t raw_query_int(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql, -1, &s, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  int64_t v = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

void raw_exec(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(dir_.ok()); }
  testing::TempDir dir_;
  std::string path_ = dir_.file("berth.db");
};

TEST_F(SqliteStoreTest, ReopenPreservesContentsRevisionAndDeletes) {
  {
    auto s = open_or_fail(path_);
    ASSERT_TRUE(s);
    ASSERT_TRUE(s->commit({{}, {Op::put("a", "1"), Op::put("b", "2")}}).ok());  // 1
    ASSERT_TRUE(s->commit({{}, {Op::put("a", "3")}}).ok());                     // 2
    ASSERT_TRUE(s->commit({{}, {Op::del("b")}}).ok());                          // 3
    ASSERT_TRUE(s->commit({{}, {Op::put(std::string("z\0", 2), "")}}).ok());    // 4
  }
  auto s = open_or_fail(path_);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->revision(), 4);
  auto a = **s->get("a");
  EXPECT_EQ(a.value, "3");
  EXPECT_EQ(a.create_revision, 1);
  EXPECT_EQ(a.mod_revision, 2);
  EXPECT_FALSE(s->get("b")->has_value());
  EXPECT_TRUE(s->get(std::string("z\0", 2))->has_value());
  EXPECT_EQ(s->range({})->kvs.size(), 2u);
  // Revisions continue from where they were.
  auto r = s->commit({{}, {Op::put("c", "x")}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 5);
}

TEST_F(SqliteStoreTest, MigratesAVersion1Database) {
  // A database as schema version 1 wrote it: WITHOUT ROWID key-value table.
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    const char* v1 =
        "CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL,"
        "  create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 0), revision INTEGER NOT NULL);"
        "INSERT INTO meta (id, revision) VALUES (0, 7);"
        "INSERT INTO kv VALUES (CAST('b' AS BLOB), CAST('2' AS BLOB), 5, 7);"
        "INSERT INTO kv VALUES (CAST('a' AS BLOB), CAST('1' AS BLOB), 3, 4);"
        "PRAGMA user_version = 1;";
    ASSERT_EQ(sqlite3_exec(db, v1, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
    sqlite3_close(db);
  }
  auto s = open_or_fail(path_);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->revision(), 7);
  auto all = s->range({})->kvs;
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].key, "a");
  EXPECT_EQ(all[0].create_revision, 3);
  EXPECT_EQ(all[1].value, "2");
  ASSERT_TRUE(s->commit({{{"a", 4}}, {Op::put("a", "x")}}).ok());  // upsert on the new table
  EXPECT_EQ((**s->get("a")).value, "x");
}

TEST_F(SqliteStoreTest, RecordsSchemaVersionAndUsesWal) {
  { ASSERT_TRUE(open_or_fail(path_)); }
  EXPECT_EQ(raw_query_int(path_, "PRAGMA user_version"), kSqliteSchemaVersion);
  EXPECT_EQ(raw_query_int(path_, "SELECT revision FROM meta"), 0);
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  sqlite3_close(db);
  // Reopening an up-to-date database is a no-op migration.
  { ASSERT_TRUE(open_or_fail(path_)); }
  EXPECT_EQ(raw_query_int(path_, "PRAGMA user_version"), kSqliteSchemaVersion);
}

TEST_F(SqliteStoreTest, RefusesNewerSchema) {
  { ASSERT_TRUE(open_or_fail(path_)); }
  raw_exec(path_, "PRAGMA user_version = 99");
  auto r = open_sqlite_store(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::corrupt);
}

TEST_F(SqliteStoreTest, RefusesNonDatabaseFile) {
  FILE* f = fopen(path_.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fputs("this is not a sqlite database, just some text that is long enough to matter........\n", f);
  fclose(f);
  auto r = open_sqlite_store(path_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::corrupt) << r.error().message;
}

TEST_F(SqliteStoreTest, FailedWriteChangesNothing) {
  auto s = open_or_fail(path_, SqliteOptions{50ms});
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->commit({{}, {Op::put("a", "1")}}).ok());

  // Another connection holds the write lock, so our commit cannot get it within the timeout.
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto r = s->commit({{}, {Op::put("a", "2"), Op::put("b", "2")}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::io) << r.error().message;
  EXPECT_EQ(s->revision(), 1);
  EXPECT_EQ((*s->get("a"))->value, "1");
  EXPECT_FALSE(s->get("b")->has_value());
  ASSERT_EQ(sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(other);

  // The store recovers once the lock is released.
  auto ok = s->commit({{}, {Op::put("a", "2")}});
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(*ok, 2);
}

TEST_F(SqliteStoreTest, DetectsAnotherWriter) {
  auto s = open_or_fail(path_);
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->commit({{}, {Op::put("a", "1")}}).ok());
  raw_exec(path_, "UPDATE meta SET revision = 10");
  auto r = s->commit({{}, {Op::put("a", "2")}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::io);
  EXPECT_EQ((*s->get("a"))->value, "1");
}

// The durability promise: once commit() returns, the write survives the process being killed.
TEST_F(SqliteStoreTest, AcknowledgedCommitsSurviveKill9) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: commit forever, reporting each acknowledged commit. No gtest macros here.
    close(fds[0]);
    auto r = open_sqlite_store(path_);
    if (!r.ok()) _exit(2);
    auto& s = *r;
    for (uint32_t i = 1;; ++i) {
      if (!s->commit({{}, {Op::put("k/" + std::to_string(i), std::to_string(i))}}).ok()) _exit(3);
      if (write(fds[1], &i, sizeof i) != sizeof i) _exit(4);
    }
  }
  close(fds[1]);
  uint32_t last = 0, n = 0;
  // Let it get going, then kill it mid-stream.
  while (last < 300 && read(fds[0], &n, sizeof n) == sizeof n) last = n;
  ASSERT_EQ(last, 300u) << "child stopped early";
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  while (read(fds[0], &n, sizeof n) == sizeof n) last = n;  // drain acks sent before the kill
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  auto s = open_or_fail(path_);
  ASSERT_TRUE(s);
  // Every acknowledged commit is there; at most one more (committed, not yet acknowledged).
  EXPECT_GE(s->revision(), int64_t(last));
  EXPECT_LE(s->revision(), int64_t(last) + 1);
  for (uint32_t i = 1; i <= last; ++i) {
    auto kv = s->get("k/" + std::to_string(i));
    ASSERT_TRUE(kv.ok() && kv->has_value()) << "acknowledged key " << i << " lost";
    EXPECT_EQ((*kv)->value, std::to_string(i));
  }
}

}  // namespace
}  // namespace berth::store
