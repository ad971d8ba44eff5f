#include "store/postgres/pg_driver.h"

#include <libpq-fe.h>

#include <cstring>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

namespace keygate::store::postgres {

namespace {

// Maps a failed result to a Status by SQLSTATE class: what the caller should do next.
Status ErrorFromResult(PGconn* conn, const PGresult* res) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  std::string msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
  if (PQstatus(conn) != CONNECTION_OK) {
    return UnavailableError("PostgreSQL connection lost: " + msg);
  }
  std::string_view code = state ? state : "";
  if (code == "23505") return AlreadyExistsError(msg);
  if (code == "40001" || code == "40P01") return AbortedError(msg);
  if (code == "25006") return FailedPreconditionError(msg);
  if (code.substr(0, 2) == "08" || code.substr(0, 2) == "53" || code.substr(0, 2) == "57") {
    return UnavailableError(msg);
  }
  if (code.substr(0, 2) == "23") return InvalidArgumentError(msg);
  return InternalError(msg);
}

// A statement this connection has run, by its text as the store wrote it.
struct Statement {
  std::string text;  // with $1, $2, ... placeholders
  std::string name;  // its server-side name once prepared; "" before
  int runs = 0;
  int stale = 0;              // times the server forgot it or its plan went stale
  bool unpreparable = false;  // refused, or stale twice (a pooler that does not keep prepared
                              // statements per client): always sent with its text from then
};

// True for the errors of a prepared statement that went stale under us: the server no longer has
// it (26000: a connection pooler or DISCARD/DEALLOCATE reset the session), or a table it reads
// changed shape (0A000 "cached plan must not change result type").
bool StalePrepared(const PGresult* res) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  return state != nullptr && (std::strcmp(state, "26000") == 0 || std::strcmp(state, "0A000") == 0);
}

class PgConnection final : public sql::Connection {
 public:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  ~PgConnection() override { PQfinish(conn_); }

  // A statement run kPrepareAfter times on this connection is prepared, then runs by name: the
  // server parses and plans it once instead of on every call. With the usage writer's multi-row
  // inserts (960 parameters) sent as text, the server spent 14.5-16.2 µs of CPU per stored
  // record against 11.4-13.4 prepared, and, sharing a core with the load, fell behind until
  // keygate's usage queue overflowed (bench/cpu_per_request.sh --store postgres,
  // docs/benchmarks.md). Rare statements (admin reads, migrations) keep going with their text.
  StatusOr<sql::Result> Exec(std::string_view sql, std::span<const sql::Value> params) override {
    Statement& st = Lookup(sql);
    std::vector<std::string> storage(params.size());
    std::vector<const char*> values(params.size(), nullptr);
    for (size_t i = 0; i < params.size(); ++i) {
      if (const auto* n = std::get_if<int64_t>(&params[i])) {
        storage[i] = std::to_string(*n);
        values[i] = storage[i].c_str();
      } else if (const auto* s = std::get_if<std::string>(&params[i])) {
        values[i] = s->c_str();
      }
    }
    const bool in_transaction = PQtransactionStatus(conn_) != PQTRANS_IDLE;
    KG_ASSIGN_OR_RETURN(PGresult * res, Run(st, values, in_transaction));
    if (!st.name.empty() && StalePrepared(res)) {
      PQclear(res);
      st.name.clear();  // prepared again (under a new name) after kPrepareAfter more runs
      st.runs = 0;
      if (++st.stale >= 2) st.unpreparable = true;
      // Inside a transaction the error aborted it: the store reruns the whole transaction.
      if (in_transaction) return AbortedError("prepared statement went stale; retry");
      KG_ASSIGN_OR_RETURN(res, Run(st, values, in_transaction));
    }
    ExecStatusType status = PQresultStatus(res);
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
      Status s = ErrorFromResult(conn_, res);
      PQclear(res);
      return s;
    }
    sql::Result out;
    int nrows = PQntuples(res), ncols = PQnfields(res);
    out.rows.reserve(nrows);
    for (int r = 0; r < nrows; ++r) {
      std::vector<sql::Value> row;
      row.reserve(ncols);
      for (int c = 0; c < ncols; ++c) {
        if (PQgetisnull(res, r, c)) {
          row.emplace_back(std::monostate{});
        } else {
          row.emplace_back(std::string(PQgetvalue(res, r, c), PQgetlength(res, r, c)));
        }
      }
      out.rows.emplace_back(std::move(row));
    }
    const char* affected = PQcmdTuples(res);
    out.rows_affected = (affected && *affected) ? std::strtoll(affected, nullptr, 10) : 0;
    PQclear(res);
    return out;
  }

  Status ExecScript(std::string_view sql) override {
    std::string copy(sql);
    PGresult* res = PQexec(conn_, copy.c_str());
    ExecStatusType st = PQresultStatus(res);
    Status s = (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) ? OkStatus()
                                                                 : ErrorFromResult(conn_, res);
    PQclear(res);
    return s;
  }

  Status BeginWrite() override { return ExecScript("BEGIN"); }
  Status Commit() override { return ExecScript("COMMIT"); }
  Status Rollback() override {
    if (PQtransactionStatus(conn_) == PQTRANS_IDLE) return OkStatus();
    return ExecScript("ROLLBACK");
  }
  bool Broken() const override { return PQstatus(conn_) != CONNECTION_OK; }

 private:
  static constexpr int kPrepareAfter = 3;

  Statement& Lookup(std::string_view sql) {
    std::string key(sql);
    auto it = statements_.find(key);
    if (it == statements_.end()) {
      it = statements_.emplace(std::move(key), Statement{RenumberPlaceholders(sql)}).first;
    }
    return it->second;
  }

  // Runs `st` by name when prepared (preparing it on its kPrepareAfter-th run), else with its
  // text. A result or an error status (a refused preparation inside a transaction, which the
  // refusal aborted: the store reruns the transaction, and the statement goes by text from then).
  StatusOr<PGresult*> Run(Statement& st, const std::vector<const char*>& values,
                          bool in_transaction) {
    const int n = static_cast<int>(values.size());
    if (st.name.empty() && !st.unpreparable && ++st.runs >= kPrepareAfter) {
      // Unique on this connection; the random part keeps two connections that a pooler puts on
      // one server session from colliding.
      std::string name = "kg_" + prefix_ + "_" + std::to_string(++prepared_);
      PGresult* p = PQprepare(conn_, name.c_str(), st.text.c_str(), n, nullptr);
      const bool ok = PQresultStatus(p) == PGRES_COMMAND_OK;
      PQclear(p);
      if (ok) {
        st.name = std::move(name);
      } else {
        if (PQstatus(conn_) != CONNECTION_OK) {
          return UnavailableError(std::string("PostgreSQL connection lost: ") +
                                  PQerrorMessage(conn_));
        }
        st.unpreparable = true;
        if (in_transaction) return AbortedError("statement could not be prepared; retry");
      }
    }
    if (!st.name.empty()) {
      return PQexecPrepared(conn_, st.name.c_str(), n, values.data(), nullptr, nullptr, 0);
    }
    return PQexecParams(conn_, st.text.c_str(), n, nullptr, values.data(), nullptr, nullptr, 0);
  }

  PGconn* conn_;
  std::unordered_map<std::string, Statement> statements_;
  const std::string prefix_ = std::to_string(std::random_device{}());
  int64_t prepared_ = 0;
};

class PgDriver final : public sql::Driver {
 public:
  explicit PgDriver(std::string url) : url_(std::move(url)) {}

  sql::Dialect dialect() const override { return sql::Dialect::kPostgres; }
  std::string Describe() const override { return RedactPostgresUrl(url_); }

  StatusOr<std::unique_ptr<sql::Connection>> Connect() override {
    // connect_timeout bounds how long an unreachable server blocks us.
    const char* keys[] = {"dbname", "connect_timeout", "application_name", nullptr};
    const char* vals[] = {url_.c_str(), "5", "keygate", nullptr};
    PGconn* conn = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
    if (conn == nullptr) return UnavailableError("out of memory connecting to PostgreSQL");
    if (PQstatus(conn) != CONNECTION_OK) {
      std::string msg = PQerrorMessage(conn);
      while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
      PQfinish(conn);
      return UnavailableError("cannot connect to PostgreSQL at " + Describe() + ": " + msg);
    }
    auto out = std::make_unique<PgConnection>(conn);
    // Quiet NOTICEs ("relation already exists, skipping") instead of printing them on stderr.
    PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
    KG_RETURN_IF_ERROR(out->ExecScript("SET client_min_messages = warning"));
    return std::unique_ptr<sql::Connection>(std::move(out));
  }

  Status LockForMigration(sql::Connection& conn) override {
    // An arbitrary constant ("keygate" in ASCII); released at commit or rollback.
    return conn.ExecScript("SELECT pg_advisory_xact_lock(7021781854926436)");
  }

 private:
  std::string url_;
};

}  // namespace

std::string RenumberPlaceholders(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int n = 0;
  char quote = 0;
  for (char c : sql) {
    if (quote != 0) {
      if (c == quote) quote = 0;
      out += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      out += c;
    } else if (c == '?') {
      out += '$';
      out += std::to_string(++n);
    } else {
      out += c;
    }
  }
  return out;
}

std::string RedactPostgresUrl(std::string_view url) {
  std::string out(url);
  size_t scheme = out.find("://");
  if (scheme == std::string::npos) return out;
  size_t at = out.find('@', scheme + 3);
  if (at == std::string::npos) return out;
  size_t colon = out.find(':', scheme + 3);
  if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
  return out;
}

std::unique_ptr<sql::Driver> NewPostgresDriver(std::string url) {
  return std::make_unique<PgDriver>(std::move(url));
}

}  // namespace keygate::store::postgres
