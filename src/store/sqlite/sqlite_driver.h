// The embedded store's driver: one SQLite file in WAL mode, shared by the threads of one process
// and by several processes on one machine.
#ifndef KEYGATE_STORE_SQLITE_SQLITE_DRIVER_H_
#define KEYGATE_STORE_SQLITE_SQLITE_DRIVER_H_

#include <memory>
#include <string>

#include "store/sql/sql.h"

namespace keygate::store::sqlite {

// `path` is a file path; `busy_timeout_ms` bounds how long a writer waits for the write lock.
std::unique_ptr<sql::Driver> NewSqliteDriver(std::string path, int busy_timeout_ms,
                                             bool read_only);

}  // namespace keygate::store::sqlite

#endif  // KEYGATE_STORE_SQLITE_SQLITE_DRIVER_H_
