// Operator operations shared by the command line (src/cli) and the admin API (src/admin): one
// implementation of everything that is more than a single store call — importing a key file,
// changing a key's state with a reason when it does not apply, and the listings with their JSON
// documents. The CLI prints these documents with `--json` and the admin API answers with them, so
// the two surfaces cannot drift apart.
//
// Nothing here ever returns a secret whole: keys are masked, proxy passwords never leave the
// store (`has_password` only).
//
// Thread safety: free functions; each blocks on the store (call from a store thread).
#ifndef KEYGATE_OPS_OPS_H_
#define KEYGATE_OPS_OPS_H_

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "secrets/secrets.h"
#include "store/store.h"

namespace keygate::ops {

namespace json = boost::json;

json::object CountsJson(const store::StateCounts& c);

// ---- pools
// InvalidArgument when `settings_json` is not a JSON object ("" means "{}"); AlreadyExists.
StatusOr<store::Pool> CreatePool(store::Store& store, const std::string& name,
                                 const std::string& provider, const std::string& settings_json);
struct PoolSummary {
  store::Pool pool;
  store::StateCounts counts;
};
StatusOr<std::vector<PoolSummary>> ListPools(store::Store& store);
json::object PoolJson(const PoolSummary& p);
// NotFound for an unknown pool.
StatusOr<PoolSummary> PoolStatus(store::Store& store, const std::string& name);

// ---- key import
struct ImportRequest {
  std::string pool;
  std::string text;              // the key file (ops/key_list.h formats)
  std::string source = "input";  // names the input in errors ("stdin", a file name)
  bool backup = false;           // import as backup keys instead of active
  bool skip_duplicates = false;  // insert the others and report the duplicates
};
struct ImportDuplicate {
  int line = 0;
  std::string masked;
  std::optional<int64_t> existing_key_id;
  std::optional<int> repeats_line;
  std::string text;  // "line 2: sk-…0002 is already stored as key 2 (pool main, active)"
};
struct ImportReport {
  std::string pool;
  store::KeyState state = store::KeyState::kActive;
  // False when duplicates were found without skip_duplicates: nothing was written.
  bool imported = false;
  size_t entries = 0;
  int64_t inserted = 0;
  std::vector<int64_t> inserted_ids;
  std::vector<ImportDuplicate> duplicates;
  int64_t proxies_added = 0;
  // Keys another process stored between the duplicate check and the insert (skipped).
  int64_t concurrent_duplicates = 0;
  json::object Json() const;
};
// Parses the whole text before writing anything (a corrupt line: InvalidArgument naming
// `source` and the line, nothing written), checks duplicates against the store and within the
// text, adds the proxies a CSV names, and inserts the keys in one transaction. NotFound for an
// unknown pool.
StatusOr<ImportReport> ImportKeys(store::Store& store, const SecretBox& secrets,
                                  const ImportRequest& request);

// ---- key listing
struct KeyRow {
  store::UpstreamKey key;  // without its secret
  std::string pool;
  std::vector<int64_t> proxies;  // bound proxies, highest priority first
  std::string note;              // cooling deadline, replacement, last error
};
struct KeyListing {
  std::vector<KeyRow> rows;
  store::StateCounts counts;
};
// `pool` "" = every pool; `state` "" = every state. InvalidArgument for an unknown state,
// NotFound for an unknown pool.
StatusOr<KeyListing> ListKeys(store::Store& store, const std::string& pool,
                              const std::string& state);
json::object KeyJson(const KeyRow& row);
// One key (NotFound when missing), as a KeyRow.
StatusOr<KeyRow> GetKey(store::Store& store, int64_t key_id);

// ---- key state changes
// A change that does not apply (the key's state does not allow it) is not an error: `applied`
// is false and `message` says why. NotFound for an unknown key; InvalidArgument for bad input.
struct KeyChange {
  bool applied = false;
  std::string message;  // "key 3 is cooling until …" or why nothing changed
  json::object json;    // the result document when applied
};
StatusOr<KeyChange> CoolDownKey(store::Store& store, const Clock& clock, int64_t key_id,
                                int64_t seconds, const std::string& reason);
StatusOr<KeyChange> ExhaustKey(store::Store& store, int64_t key_id, const std::string& reason);
StatusOr<KeyChange> RestoreKey(store::Store& store, int64_t key_id, const std::string& as_state);

// ---- manual rotation
struct RotateReport {
  store::RotateOutcome outcome;
  std::string message;
  json::object json;
};
// NotFound for an unknown pool or key; InvalidArgument for an empty reason or a key of
// another pool.
StatusOr<RotateReport> RotateKey(store::Store& store, const std::string& pool, int64_t key_id,
                                 const std::string& reason, const std::string& actor);

// ---- proxies
struct ProxyRow {
  store::Proxy proxy;  // without its password
  int64_t bound_keys = 0;
};
StatusOr<std::vector<ProxyRow>> ListProxies(store::Store& store);
json::object ProxyJson(const ProxyRow& row);

// ---- history
struct HistoryQuery {
  std::string pool;  // "" = every pool
  std::optional<int64_t> key_id;
  std::optional<int64_t> before_id;  // paging: records older than this id
  int64_t limit = 100;
};
// Each returns {"<kind>": [...], "next_before_id": id|null}; InvalidArgument for limit <= 0,
// NotFound for an unknown pool.
StatusOr<json::object> RotationHistory(store::Store& store, const HistoryQuery& q);
StatusOr<json::object> SpendHistory(store::Store& store, const HistoryQuery& q);
StatusOr<json::object> UsageHistory(store::Store& store, const HistoryQuery& q);
StatusOr<json::object> AuditHistory(store::Store& store, const HistoryQuery& q);

// ---- admin keys
struct NewAdminKey {
  store::AdminKey key;
  std::string secret;  // shown once; only its hash is stored
};
StatusOr<NewAdminKey> CreateAdminKey(store::Store& store, const SecretBox& secrets,
                                     const std::string& name);

}  // namespace keygate::ops

#endif  // KEYGATE_OPS_OPS_H_
