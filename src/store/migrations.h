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

}  // namespace keygate::store

#endif  // KEYGATE_STORE_MIGRATIONS_H_
