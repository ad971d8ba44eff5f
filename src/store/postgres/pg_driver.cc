#include "store/postgres/pg_driver.h"

#include <libpq-fe.h>

#include <cstring>
#include <unordered_map>

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

class PgConnection final : public sql::Connection {
 public:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  ~PgConnection() override { PQfinish(conn_); }

  StatusOr<sql::Result> Exec(std::string_view sql, std::span<const sql::Value> params) override {
    const std::string& text = Renumbered(sql);
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
    PGresult* res = PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()), nullptr,
                                 values.data(), nullptr, nullptr, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
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
  const std::string& Renumbered(std::string_view sql) {
    std::string key(sql);
    auto it = cache_.find(key);
    if (it == cache_.end()) it = cache_.emplace(key, RenumberPlaceholders(sql)).first;
    return it->second;
  }

  PGconn* conn_;
  std::unordered_map<std::string, std::string> cache_;
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
