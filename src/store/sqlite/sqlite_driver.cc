#include "store/sqlite/sqlite_driver.h"

#include <sqlite3.h>
#include <time.h>

#include <chrono>
#include <mutex>
#include <random>
#include <unordered_map>

namespace keygate::store::sqlite {

namespace {

Status ErrorFromCode(int rc, sqlite3* db, std::string_view what) {
  std::string msg = std::string(what) + ": " +
                    (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xFF) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return UnavailableError(msg + " (the database is locked by another process)");
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_CANTOPEN:
      return FailedPreconditionError(msg);
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return AlreadyExistsError(msg);
      }
      return InvalidArgumentError(msg);
    case SQLITE_FULL:
    case SQLITE_IOERR:
      return UnavailableError(msg);
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return FailedPreconditionError(msg + " (not a keygate store, or a corrupted file)");
    default:
      return InternalError(msg);
  }
}

// Waits for a lock held by another connection, up to the busy timeout. SQLite's own handler
// (sqlite3_busy_timeout) sleeps 1, 2, 5, ... 50, then 100 ms between attempts: under many
// writer processes a sleeper rarely finds the lock free when it wakes, and the others keep
// taking it. With 16 processes rotating (bench/rotate_bench) single calls waited over 4 s, and
// with slower transactions ran past the 10 s timeout into "database is locked". Short,
// randomized sleeps keep every waiter in the race; the deadline is the same.
class BusyWaiter {
 public:
  explicit BusyWaiter(int timeout_ms) : timeout_(std::chrono::milliseconds(timeout_ms)) {}

  // sqlite3_busy_handler callback: nonzero to retry, 0 to give up with SQLITE_BUSY.
  static int Handler(void* self, int attempts) {
    return static_cast<BusyWaiter*>(self)->Wait(attempts);
  }

 private:
  int Wait(int attempts) {
    auto now = std::chrono::steady_clock::now();
    if (attempts == 0) start_ = now;  // a new wait begins
    if (now - start_ >= timeout_) return 0;
    // 0.1 .. 4 ms, growing with the attempts, jittered so waiters do not wake in lockstep.
    long max_us = std::min(4000L, 100L + 100L * attempts);
    long us = std::uniform_int_distribution<long>(max_us / 2, max_us)(rng_);
    timespec ts{0, us * 1000};
    nanosleep(&ts, nullptr);
    return 1;
  }

  const std::chrono::steady_clock::duration timeout_;
  std::chrono::steady_clock::time_point start_;
  std::minstd_rand rng_{std::random_device{}()};
};

// Process-wide settings. sqlite3_config works only before sqlite3_initialize, which the first
// open runs; if something else in the process opened a database first it returns SQLITE_MISUSE
// and the defaults stay, which is only slower.
// - Memory statistics off: with them on, every sqlite3_malloc and sqlite3_free takes a global
//   mutex (sqlite3_status is never read here).
// - Statement journals stay in memory up to 4 MiB instead of 64 KiB. A statement that may abort
//   halfway inside a transaction (a multi-row upsert: the usage writer adds up to 64 keys' costs
//   per statement) keeps the pages it changed there to undo itself; past the limit they go to a
//   temporary file in /var/tmp. 64 changed pages of a large pool's totals are 256 KiB.
void ConfigureSqliteOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, 4 << 20);
  });
}

class SqliteConnection final : public sql::Connection {
 public:
  SqliteConnection(sqlite3* db, int busy_timeout_ms) : db_(db), busy_(busy_timeout_ms) {
    sqlite3_busy_handler(db_, &BusyWaiter::Handler, &busy_);
  }
  ~SqliteConnection() override {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }

  StatusOr<sql::Result> Exec(std::string_view sql, std::span<const sql::Value> params) override {
    KG_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Prepare(sql));
    sqlite3_reset(stmt);
    // Every parameter is bound again below; only a statement given fewer values than it has
    // parameters needs the rest cleared (to NULL, not the previous call's values). Clearing
    // walks every parameter: 960 of them in a 64-row usage insert.
    if (static_cast<int>(params.size()) < sqlite3_bind_parameter_count(stmt)) {
      sqlite3_clear_bindings(stmt);
    }
    for (size_t i = 0; i < params.size(); ++i) {
      int idx = static_cast<int>(i + 1);
      const sql::Value& v = params[i];
      int rc;
      if (const auto* n = std::get_if<int64_t>(&v)) {
        rc = sqlite3_bind_int64(stmt, idx, *n);
      } else if (const auto* s = std::get_if<std::string>(&v)) {
        // SQLITE_STATIC: `params` outlive the steps below, so SQLite need not copy the
        // text (a copy and a free per value). The pointer left bound after this call is
        // never read: the next call resets and binds every parameter again, or clears them.
        rc = sqlite3_bind_text(stmt, idx, s->data(), static_cast<int>(s->size()), SQLITE_STATIC);
      } else {
        rc = sqlite3_bind_null(stmt, idx);
      }
      if (rc != SQLITE_OK) return ErrorFromCode(rc, db_, "bind");
    }
    sql::Result result;
    while (true) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        Status s = ErrorFromCode(sqlite3_extended_errcode(db_), db_, "sqlite");
        sqlite3_reset(stmt);
        return s;
      }
      int n = sqlite3_column_count(stmt);
      std::vector<sql::Value> values;
      values.reserve(n);
      for (int i = 0; i < n; ++i) {
        switch (sqlite3_column_type(stmt, i)) {
          case SQLITE_NULL:
            values.emplace_back(std::monostate{});
            break;
          case SQLITE_INTEGER:
            values.emplace_back(static_cast<int64_t>(sqlite3_column_int64(stmt, i)));
            break;
          default: {
            const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, i));
            values.emplace_back(std::string(text ? text : "", sqlite3_column_bytes(stmt, i)));
          }
        }
      }
      result.rows.emplace_back(std::move(values));
    }
    result.rows_affected = sqlite3_changes64(db_);
    sqlite3_reset(stmt);
    return result;
  }

  Status ExecScript(std::string_view sql) override {
    char* err = nullptr;
    std::string copy(sql);
    int rc = sqlite3_exec(db_, copy.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      return ErrorFromCode(sqlite3_extended_errcode(db_), nullptr, msg);
    }
    return OkStatus();
  }

  // BEGIN IMMEDIATE takes the write lock now (waiting up to busy_timeout), so the transaction
  // can never fail later with SQLITE_BUSY_SNAPSHOT.
  Status BeginWrite() override { return ExecScript("BEGIN IMMEDIATE"); }
  Status Commit() override { return ExecScript("COMMIT"); }
  Status Rollback() override {
    if (sqlite3_get_autocommit(db_)) return OkStatus();  // nothing open
    return ExecScript("ROLLBACK");
  }
  bool Broken() const override { return false; }

 private:
  StatusOr<sqlite3_stmt*> Prepare(std::string_view sql) {
    std::string key(sql);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, key.data(), static_cast<int>(key.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return ErrorFromCode(rc, db_, "prepare");
    cache_.emplace(std::move(key), stmt);
    return stmt;
  }

  sqlite3* db_;
  BusyWaiter busy_;  // the busy handler's state; outlives every call on db_
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

class SqliteDriver final : public sql::Driver {
 public:
  SqliteDriver(std::string path, int busy_timeout_ms, bool read_only)
      : path_(std::move(path)), busy_timeout_ms_(busy_timeout_ms), read_only_(read_only) {}

  sql::Dialect dialect() const override { return sql::Dialect::kSqlite; }
  std::string Describe() const override { return "sqlite:" + path_; }

  StatusOr<std::unique_ptr<sql::Connection>> Connect() override {
    ConfigureSqliteOnce();
    sqlite3* db = nullptr;
    int flags = SQLITE_OPEN_NOMUTEX | (read_only_ ? SQLITE_OPEN_READONLY
                                                  : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(path_.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      Status s = ErrorFromCode(rc, db, "cannot open SQLite store " + path_);
      sqlite3_close_v2(db);
      return s;
    }
    auto conn = std::make_unique<SqliteConnection>(db, busy_timeout_ms_);
    sqlite3_extended_result_codes(db, 1);
    // WAL lets readers run beside the one writer; NORMAL sync is durable across process crashes
    // (a power loss may lose the last commits, never corrupt). foreign_keys is per connection.
    // wal_autocheckpoint: the commit that grows the WAL past 10,000 pages (~40 MB) checkpoints it,
    // instead of every 1,000 pages (~4 MB, the default): under load the usage writer's inserts
    // made checkpoints 9.4 % of keygate's CPU. The WAL file is reused from the start after a
    // checkpoint, so it stays near that size; docs (README, Backups) say so.
    std::string pragmas = "PRAGMA foreign_keys = ON;";
    if (!read_only_) {
      pragmas +=
          "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
          "PRAGMA wal_autocheckpoint = 10000;";
    }
    Status s = conn->ExecScript(pragmas);
    if (!s.ok()) return s.WithContext("cannot open SQLite store " + path_);
    // Touch the schema so a file that is not a database fails here, clearly.
    auto probe = conn->Exec("SELECT COUNT(*) FROM sqlite_master", {});
    if (!probe.ok()) return probe.status().WithContext("cannot open SQLite store " + path_);
    return std::unique_ptr<sql::Connection>(std::move(conn));
  }

  Status LockForMigration(sql::Connection&) override { return OkStatus(); }

 private:
  std::string path_;
  int busy_timeout_ms_;
  bool read_only_;
};

}  // namespace

std::unique_ptr<sql::Driver> NewSqliteDriver(std::string path, int busy_timeout_ms,
                                             bool read_only) {
  return std::make_unique<SqliteDriver>(std::move(path), busy_timeout_ms, read_only);
}

}  // namespace keygate::store::sqlite
