// Test support: fresh store locations on SQLite and on the throw-away PostgreSQL that ctest starts
// (fixture `pg`, scripts/pgtest.sh), and a fixed master key.
#ifndef KEYGATE_TESTS_TESTING_STORE_ENV_H_
#define KEYGATE_TESTS_TESTING_STORE_ENV_H_

#include <memory>
#include <ostream>
#include <string>

#include "common/status.h"
#include "secrets/secrets.h"
#include "store/store.h"

namespace keygate::testing {

enum class StoreKind { kSqlite, kPostgres };
std::string StoreKindName(StoreKind kind);  // "sqlite" / "postgres" (for test names)
inline void PrintTo(StoreKind kind, std::ostream* os) { *os << StoreKindName(kind); }

// The DSN of the test PostgreSQL server, read from the file named by KEYGATE_TEST_PG_DSN_FILE.
// Unavailable when it is not set or the file is missing: PostgreSQL tests then fail, never skip.
StatusOr<std::string> TestPostgresDsn();

// A new empty store location, removed on destruction: a SQLite file in a fresh temp directory,
// or a fresh database on the test PostgreSQL server.
class StoreLocation {
 public:
  static StatusOr<std::unique_ptr<StoreLocation>> Create(StoreKind kind);
  ~StoreLocation();
  StoreLocation(const StoreLocation&) = delete;
  StoreLocation& operator=(const StoreLocation&) = delete;

  StoreKind kind() const { return kind_; }
  const std::string& url() const { return url_; }
  const std::string& dir() const { return dir_; }  // a private temp directory (both kinds)

 private:
  StoreLocation() = default;
  StoreKind kind_ = StoreKind::kSqlite;
  std::string url_;
  std::string dir_;
  std::string admin_dsn_;  // PostgreSQL: the server's maintenance database
  std::string db_name_;
  friend Status SetPostgresAccepting(const StoreLocation& location, bool accepting);
};

// Runs `sql` on the location's database through a raw connection of its own (not the Store's):
// for tests that tamper with a store behind keygate's back.
Status ExecRawSql(const StoreLocation& location, const std::string& sql);

// PostgreSQL only: makes the location's database refuse new connections and cuts the open ones
// (accepting = false), as when its server is down for everyone using it, or lets connections in
// again. Other databases of the shared test server are untouched. FailedPrecondition on SQLite.
Status SetPostgresAccepting(const StoreLocation& location, bool accepting);

MasterKey TestMasterKey();
std::string TestMasterKeyHex();
std::shared_ptr<const SecretBox> TestSecrets();
// Opens `url` with the test master key and `clock` (the real clock when null).
StatusOr<std::unique_ptr<store::Store>> OpenTestStore(const std::string& url,
                                                      const Clock* clock = nullptr);

}  // namespace keygate::testing

#endif  // KEYGATE_TESTS_TESTING_STORE_ENV_H_
