// `keygate import mongo DIR`: migration from the MongoDB-based system keygate replaces.
//
// DIR holds mongoexport files, one JSON document per line in extended JSON ({"$oid": …},
// {"$date": …}, {"$numberLong": …}, {"$numberInt": …}, {"$numberDouble": …},
// {"$numberDecimal": …}), named `<collection>.json` or `<collection>.jsonl`. The collections and
// how they map (docs/cli.md, "import mongo", has the full tables):
//
//   factory_keys           -> pool `factory`   (provider `factory`), state from `status`
//   openhands_keys         -> pool `openhands` (provider `litellm`), state from `status`
//   backup_keys            -> pool `factory`,   isUsed ? retired : backup
//   openhands_backup_keys  -> pool `openhands`, isUsed ? retired : backup
//   proxies                -> egress proxies (type http|https|socks5|socks5h), isActive -> health
//   proxy_key_bindings     -> bindings of `factory` keys   (factoryKeyId, proxyId, priority)
//   openhands_bindings     -> bindings of `openhands` keys (openhandsKeyId, proxyId, priority)
//
// Two phases. ReadMongoExport() parses and validates every file and builds a plan, writing
// nothing: a corrupt line is an InvalidArgument naming file:line, so nothing is written for a
// corrupt export. ApplyMongoImport() then writes the plan idempotently: keys dedupe by
// fingerprint, proxies by URL (and are left alone when already stored with the same password),
// bindings are only written when missing or of another priority, pools are only created when
// missing. Running it twice changes nothing the second time. The writes are several
// transactions (pools, proxies, one ImportKeys per pool, bindings): an interrupted run leaves a
// consistent subset, and running again completes it.
//
// Thread safety: functions without shared state; the Store is used as its header says.
#ifndef KEYGATE_CLI_MONGO_IMPORT_H_
#define KEYGATE_CLI_MONGO_IMPORT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/proxy_url.h"
#include "common/status.h"
#include "store/store.h"

namespace keygate::cli {

// A key collection of the old system and what it becomes.
enum class MongoKeyKind { kPrimary, kBackup };

struct MongoKey {
  std::string oid;     // the document's _id (an ObjectId's hex, or the _id as text)
  std::string origin;  // "factory_keys.json:3" for messages
  std::string secret;
  store::KeyState state = store::KeyState::kActive;
  int64_t priority = 0;
  std::optional<int64_t> budget_micros;
  std::optional<int64_t> spend_micros;
};

struct MongoProxy {
  std::string oid;
  std::string origin;
  ProxyUrl url;
  bool healthy = true;
};

struct MongoBinding {
  std::string origin;
  std::string proxy_oid;
  std::string key_oid;
  int64_t priority = 0;
};

struct MongoPoolPlan {
  std::string pool;      // "factory" / "openhands"
  std::string provider;  // "factory" / "litellm"
  std::vector<MongoKey> keys;  // primaries first, then backups (so a used backup that became a
                               // primary dedupes onto the primary)
  std::vector<MongoBinding> bindings;  // active bindings only
  int64_t inactive_bindings = 0;       // skipped: isActive false
};

struct MongoFileInfo {
  std::string collection;
  std::string path;       // empty when the file was not found
  int64_t documents = 0;
};

struct MongoExportPlan {
  std::string dir;
  std::vector<MongoFileInfo> files;  // one per known collection, in a fixed order
  std::vector<MongoPoolPlan> pools;  // "factory", then "openhands"
  std::vector<MongoProxy> proxies;
};

// Maps an old-system key status to a key state (case-insensitive; see the table in docs/cli.md).
// A missing status (empty) is active. nullopt for a status the table does not know.
std::optional<store::KeyState> MapMongoKeyStatus(std::string_view status);

// Parses one mongoexport line of a key collection. `origin` is used in messages.
// InvalidArgument "<origin>: ..." for malformed JSON, a missing _id or apiKey, an unknown status,
// a bad number. Never echoes a key whole.
StatusOr<MongoKey> ParseMongoKeyLine(std::string_view line, MongoKeyKind kind,
                                     const std::string& origin);
StatusOr<MongoProxy> ParseMongoProxyLine(std::string_view line, const std::string& origin);
// `key_field` is "factoryKeyId" or "openhandsKeyId". Returns nullopt for an inactive binding.
StatusOr<std::optional<MongoBinding>> ParseMongoBindingLine(std::string_view line,
                                                            std::string_view key_field,
                                                            const std::string& origin);

// Reads and validates every known collection file in `dir` (missing files are recorded in
// `files` with an empty path). NotFound when `dir` is not a directory; InvalidArgument
// "<file>:<line>: ..." for the first corrupt line or a repeated _id within a collection.
StatusOr<MongoExportPlan> ReadMongoExport(const std::string& dir);

struct MongoPoolReport {
  std::string pool;
  bool created = false;    // the pool was created by this run
  int64_t documents = 0;   // key documents read
  int64_t inserted = 0;    // keys inserted
  int64_t duplicates = 0;  // keys already stored (or repeated in the export)
  int64_t bindings_created = 0;
  int64_t bindings_updated = 0;    // priority changed
  int64_t bindings_unchanged = 0;
  int64_t bindings_inactive = 0;   // skipped: isActive false in the export
  int64_t bindings_dangling = 0;   // skipped: key or proxy not in the export
};

struct MongoImportReport {
  std::vector<MongoFileInfo> files;
  std::vector<MongoPoolReport> pools;
  int64_t proxies_created = 0;
  int64_t proxies_updated = 0;  // stored with another password: the password was replaced
  int64_t proxies_unchanged = 0;
  std::vector<std::string> warnings;  // "proxy_key_bindings.json:4: key … not in the export"
};

// Writes `plan` into `store` idempotently (see the file comment). Errors are storage errors.
StatusOr<MongoImportReport> ApplyMongoImport(store::Store& store, const MongoExportPlan& plan);

}  // namespace keygate::cli

#endif  // KEYGATE_CLI_MONGO_IMPORT_H_
