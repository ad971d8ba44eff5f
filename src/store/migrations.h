// Numbered schema migrations, applied at start-up in one transaction that is serialized across
// processes. The schema version is the highest applied migration.
#ifndef KEYGATE_STORE_MIGRATIONS_H_
#define KEYGATE_STORE_MIGRATIONS_H_

#include <cstdint>

#include "common/clock.h"
#include "common/status.h"
#include "store/sql/sql.h"

namespace keygate::store {

// The newest schema version this build knows.
int64_t LatestSchemaVersion();

// Brings the schema up to LatestSchemaVersion(). Returns the version afterwards.
// FailedPrecondition when the store is newer than this build, or when it needs migrating and
// `read_only` is set.
StatusOr<int64_t> ApplyMigrations(sql::Driver& driver, sql::Connection& conn, const Clock& clock,
                                  bool read_only);

// Brings the schema up to `version` only (1 <= version <= LatestSchemaVersion(); InvalidArgument
// otherwise), so a test can build a store as an older keygate left it and then migrate it.
// Returns the version afterwards (higher when the store already was).
StatusOr<int64_t> ApplyMigrationsUpToForTest(sql::Driver& driver, sql::Connection& conn,
                                             const Clock& clock, int64_t version);

}  // namespace keygate::store

#endif  // KEYGATE_STORE_MIGRATIONS_H_
