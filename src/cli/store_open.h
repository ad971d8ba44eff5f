// Opening the store for a `keygate` command: the store URL, the master key and its key file.
//
// The master key comes from, in order:
//   1. KEYGATE_MASTER_KEY (64 hex characters);
//   2. the file named by KEYGATE_MASTER_KEY_FILE;
//   3. for a SQLite store only, the key file beside the database: `<dbpath>.masterkey`.
// A key file is created (mode 0600, announced loudly on stderr) only for a SQLite store whose
// database file does not exist yet; for an existing store a missing key is an error, never a
// fresh key. PostgreSQL stores have no default key file.
//
// KEYGATE_SQLITE_BUSY_TIMEOUT_MS (default 10000) bounds how long a SQLite writer waits for a lock.
//
// Thread safety: reads the process environment; call from the main thread.
#ifndef KEYGATE_CLI_STORE_OPEN_H_
#define KEYGATE_CLI_STORE_OPEN_H_

#include <memory>
#include <ostream>
#include <string>

#include "common/status.h"
#include "secrets/secrets.h"
#include "store/store.h"

namespace keygate::cli {

// The store URL when --store is not given: $KEYGATE_STORE, else "keygate.db".
std::string DefaultStoreUrl();

struct CliStore {
  std::unique_ptr<store::Store> store;
  std::shared_ptr<const SecretBox> secrets;
};

// Opens (and migrates) the store at `url`. `may_create`: a missing SQLite database may be
// created (commands that write); otherwise NotFound names the missing file. Writes the loud
// key-file notice to `err` when a key file was created.
// Errors: FailedPrecondition (no master key, wrong master key, newer schema, read-only file),
// Unavailable (unreachable or locked database), NotFound (no store and !may_create).
StatusOr<CliStore> OpenCliStore(const std::string& url, bool may_create, std::ostream& err);

}  // namespace keygate::cli

#endif  // KEYGATE_CLI_STORE_OPEN_H_
