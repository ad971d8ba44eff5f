#include "tests/testing/store_env.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>

#include "common/strings.h"

namespace keygate::testing {

namespace {

// Runs `sql` (commands or queries) on a connection of its own to `dsn`.
Status PgAdmin(const std::string& dsn, const std::string& sql) {
  PGconn* conn = PQconnectdb(dsn.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    PQfinish(conn);
    return UnavailableError("test PostgreSQL: " + msg);
  }
  PGresult* res = PQexec(conn, sql.c_str());
  const ExecStatusType st = PQresultStatus(res);
  Status s = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK
                 ? OkStatus()
                 : InternalError(std::string("test PostgreSQL: ") + PQresultErrorMessage(res));
  PQclear(res);
  PQfinish(conn);
  return s;
}

std::string UniqueSuffix() {
  static std::atomic<int> counter{0};
  std::random_device rd;
  return std::to_string(::getpid()) + "_" + std::to_string(counter.fetch_add(1)) + "_" +
         std::to_string(rd() % 100000);
}

}  // namespace

std::string StoreKindName(StoreKind kind) {
  return kind == StoreKind::kSqlite ? "sqlite" : "postgres";
}

StatusOr<std::string> TestPostgresDsn() {
  const char* file = std::getenv("KEYGATE_TEST_PG_DSN_FILE");
  if (file == nullptr || *file == '\0') {
    return UnavailableError(
        "KEYGATE_TEST_PG_DSN_FILE is not set: run PostgreSQL tests through ctest (fixture `pg`)");
  }
  std::ifstream in(file);
  std::string dsn;
  if (!in || !std::getline(in, dsn) || Trim(dsn).empty()) {
    return UnavailableError(std::string("no test PostgreSQL DSN in ") + file +
                            " (did scripts/pgtest.sh start fail?)");
  }
  return std::string(Trim(dsn));
}

StatusOr<std::unique_ptr<StoreLocation>> StoreLocation::Create(StoreKind kind) {
  std::unique_ptr<StoreLocation> loc(new StoreLocation());
  loc->kind_ = kind;
  std::string tmpl = (std::filesystem::temp_directory_path() / "kgtest.XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) return InternalError("mkdtemp failed");
  loc->dir_ = tmpl;
  if (kind == StoreKind::kSqlite) {
    loc->url_ = loc->dir_ + "/keygate.db";
    return loc;
  }
  KG_ASSIGN_OR_RETURN(loc->admin_dsn_, TestPostgresDsn());
  loc->db_name_ = "kgt_" + UniqueSuffix();
  KG_RETURN_IF_ERROR(PgAdmin(loc->admin_dsn_, "CREATE DATABASE " + loc->db_name_));
  std::string base = loc->admin_dsn_.substr(0, loc->admin_dsn_.rfind('/'));
  loc->url_ = base + "/" + loc->db_name_;
  return loc;
}

StoreLocation::~StoreLocation() {
  if (!db_name_.empty()) {
    (void)PgAdmin(admin_dsn_, "DROP DATABASE IF EXISTS " + db_name_ + " WITH (FORCE)");
  }
  std::error_code ec;
  if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
}

Status ExecRawSql(const StoreLocation& location, const std::string& sql) {
  if (location.kind() == StoreKind::kPostgres) return PgAdmin(location.url(), sql);
  sqlite3* db = nullptr;
  int rc = sqlite3_open(location.url().c_str(), &db);
  // The server under test may hold the database lock (its usage writer, a claim): wait for it
  // like the store does, instead of failing the test with SQLITE_BUSY.
  if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(db, 5000);
  char* err = nullptr;
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  Status s = rc == SQLITE_OK ? OkStatus()
                             : InternalError(std::string("raw sqlite: ") +
                                             (err ? err : sqlite3_errmsg(db)));
  sqlite3_free(err);
  sqlite3_close(db);
  return s;
}

Status SetPostgresAccepting(const StoreLocation& location, bool accepting) {
  if (location.kind() != StoreKind::kPostgres) {
    return FailedPreconditionError("SetPostgresAccepting needs a PostgreSQL location");
  }
  const std::string& db = location.db_name_;
  KG_RETURN_IF_ERROR(PgAdmin(location.admin_dsn_, "ALTER DATABASE " + db + " ALLOW_CONNECTIONS " +
                                                      (accepting ? "true" : "false")));
  if (accepting) return OkStatus();
  return PgAdmin(location.admin_dsn_,
                 "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + db +
                     "' AND pid <> pg_backend_pid()");
}

MasterKey TestMasterKey() { return *ParseMasterKeyHex(TestMasterKeyHex()); }

std::string TestMasterKeyHex() {
  return "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
}

std::shared_ptr<const SecretBox> TestSecrets() {
  static const auto box = std::make_shared<const SecretBox>(TestMasterKey());
  return box;
}

StatusOr<std::unique_ptr<store::Store>> OpenTestStore(const std::string& url, const Clock* clock) {
  store::StoreOptions options;
  options.url = url;
  options.secrets = TestSecrets();
  if (clock != nullptr) options.clock = clock;
  return store::OpenStore(options);
}

}  // namespace keygate::testing
