// The multi-instance store's driver: libpq, blocking calls, one connection per pooled Connection.
#ifndef KEYGATE_STORE_POSTGRES_PG_DRIVER_H_
#define KEYGATE_STORE_POSTGRES_PG_DRIVER_H_

#include <memory>
#include <string>

#include "store/sql/sql.h"

namespace keygate::store::postgres {

// `url` is a libpq connection URI ("postgresql://user:pw@host:5432/db?sslmode=…").
std::unique_ptr<sql::Driver> NewPostgresDriver(std::string url);

// Replaces each `?` placeholder outside quotes with $1, $2, …
std::string RenumberPlaceholders(std::string_view sql);

// The URL with any password replaced by "***", for logs and errors.
std::string RedactPostgresUrl(std::string_view url);

}  // namespace keygate::store::postgres

#endif  // KEYGATE_STORE_POSTGRES_PG_DRIVER_H_
