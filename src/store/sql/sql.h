// The SQL layer under both stores: a connection abstraction (one per driver) and the generic
// Store implementation written once on top of it. Not part of the public store interface.
//
// SQL is written once with `?` placeholders; the PostgreSQL driver renumbers them to $n. The few
// places where the dialects differ are methods of Dialect below.
//
// Thread safety: a Connection is used by one thread at a time (the pool hands it out).
#ifndef KEYGATE_STORE_SQL_SQL_H_
#define KEYGATE_STORE_SQL_SQL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/status.h"

namespace keygate::store::sql {

using Value = std::variant<std::monostate, int64_t, std::string>;

inline Value Null() { return std::monostate{}; }
inline Value OptInt(const std::optional<int64_t>& v) { return v ? Value(*v) : Null(); }

class Row {
 public:
  explicit Row(std::vector<Value> values) : values_(std::move(values)) {}
  size_t size() const { return values_.size(); }
  bool IsNull(size_t i) const { return std::holds_alternative<std::monostate>(values_[i]); }
  // Integers come back typed from SQLite and as text from PostgreSQL; both read here.
  int64_t Int(size_t i) const;
  std::optional<int64_t> OptInt(size_t i) const;
  std::string Str(size_t i) const;

 private:
  std::vector<Value> values_;
};

struct Result {
  std::vector<Row> rows;
  int64_t rows_affected = 0;  // for INSERT/UPDATE/DELETE
};

enum class Dialect { kSqlite, kPostgres };

class Connection {
 public:
  virtual ~Connection() = default;
  // Runs one statement. Error codes: AlreadyExists for a unique violation, Aborted for a
  // serialization failure or deadlock, Unavailable for a busy/locked database or a lost
  // connection, FailedPrecondition for a read-only database, Internal otherwise.
  virtual StatusOr<Result> Exec(std::string_view sql, std::span<const Value> params) = 0;
  // Runs several statements without parameters (migrations).
  virtual Status ExecScript(std::string_view sql) = 0;
  // Starts a write transaction that holds the write lock from the start (SQLite: BEGIN
  // IMMEDIATE, because deferred transactions fail with SQLITE_BUSY_SNAPSHOT under contention).
  virtual Status BeginWrite() = 0;
  virtual Status Commit() = 0;
  virtual Status Rollback() = 0;
  // True when the connection can no longer be used and must be dropped from the pool.
  virtual bool Broken() const = 0;
};

class Driver {
 public:
  virtual ~Driver() = default;
  virtual Dialect dialect() const = 0;
  virtual std::string Describe() const = 0;  // without credentials
  virtual StatusOr<std::unique_ptr<Connection>> Connect() = 0;
  // Serializes migrations across processes inside the current write transaction
  // (PostgreSQL: an advisory transaction lock; SQLite: BEGIN IMMEDIATE already did).
  virtual Status LockForMigration(Connection& conn) = 0;
};

}  // namespace keygate::store::sql

#endif  // KEYGATE_STORE_SQL_SQL_H_
