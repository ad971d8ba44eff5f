// The one Store implementation, written once over sql::Driver. SQLite and PostgreSQL differ
// only in their drivers and in the few Dialect branches inside sql_store.cc.
#ifndef KEYGATE_STORE_SQL_SQL_STORE_H_
#define KEYGATE_STORE_SQL_SQL_STORE_H_

#include <memory>

#include "store/sql/sql.h"
#include "store/store.h"

namespace keygate::store::sql {

// Takes ownership of `driver`, opens a first connection, applies migrations and checks the master
// key. Errors as OpenStore().
StatusOr<std::unique_ptr<Store>> NewSqlStore(std::unique_ptr<Driver> driver,
                                             const StoreOptions& options);

}  // namespace keygate::store::sql

#endif  // KEYGATE_STORE_SQL_SQL_STORE_H_
