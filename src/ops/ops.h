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
#include "config/config.h"
#include "ops/client_settings.h"
#include "ops/traffic_params.h"
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

// ---- client keys (docs/cli.md "Client keys", docs/admin-api.md)
// ClientSettings (ops/client_settings.h): the settings as typed.
// The store update the settings describe. InvalidArgument naming the setting as `prefix` +
// its name ("--credits" for the CLI, "credits" for the API).
StatusOr<store::ClientKeyUpdate> ParseClientSettings(const ClientSettings& settings,
                                                     std::string_view prefix);
// {"id","name","hint","enabled","parent_id","credits_usd","credits_micros","models","rpm","tpm",
//  "concurrency","expires_at","caps":[{"model","cap_usd","cap_micros","spent_usd",
//  "spent_micros"}],"created_at"}: the hint only, never the secret.
json::object ClientJson(const store::ClientKey& key);

struct NewClientSecret {
  store::ClientKey key;
  std::string secret;  // shown once by the caller; only its hash is stored
};
// Creates a client key (a sub-key when settings.parent > 0): InvalidArgument for an empty name
// or bad settings (add_credits, "MODEL=none"); NotFound for an unknown parent;
// FailedPrecondition for credits on a sub-key or a parent that is itself a sub-key.
StatusOr<NewClientSecret> CreateClientKey(store::Store& store, const SecretBox& secrets,
                                          const std::string& name, const ClientSettings& settings,
                                          std::string_view prefix);
// Changes what `settings` gives (the parent cannot change). NotFound; FailedPrecondition for
// credits on an unlimited key or a sub-key.
StatusOr<store::ClientKey> UpdateClientKey(store::Store& store, int64_t id,
                                           const ClientSettings& settings, std::string_view prefix);
// Gives the key a new secret; the old one stops working. NotFound.
StatusOr<NewClientSecret> RollClientKey(store::Store& store, const SecretBox& secrets, int64_t id);
// NotFound; FailedPrecondition while it has sub-keys. Its usage records stay.
Status DeleteClientKey(store::Store& store, int64_t id);

// ---- usage report
// Usage records summed over the chosen dimensions, filtered. The numbers of `keygate usage`.
struct UsageReportQuery {
  // Any of "day", "client_key", "model", in any order (output rows are ordered by day, client
  // key, model); empty = one total only.
  std::vector<std::string> group = {"day", "client_key", "model"};
  std::optional<int64_t> client_key_id;
  std::optional<std::string> model;
  std::optional<int64_t> from_ms;  // created at or after
  std::optional<int64_t> to_ms;    // created before
};
// Parses "day,client_key,model" (InvalidArgument names an unknown dimension).
StatusOr<std::vector<std::string>> ParseUsageGroup(std::string_view text);
// A `to` bound as typed: a bare date ("2026-11-30") includes that whole UTC day (the bound is
// the next midnight); a time is exclusive. nullopt when it does not parse.
std::optional<int64_t> ParseUsageUntil(std::string_view text);
// {"group":[…],"usage":[{"day"?,"client_key_id"?,"name"?,"model"?,"requests","input_tokens",
//  "output_tokens","cache_read_tokens","cache_write_tokens","cost_micros","cost_usd"}],
//  "total":{same sums}}. A deleted client key is named "(deleted ID)", usage without one has
// client_key_id null and name "-".
StatusOr<json::object> UsageReport(store::Store& store, const UsageReportQuery& query);

// ---- traffic over time (docs/admin-api.md "Traffic")
// TrafficParams (ops/traffic_params.h): the window and filters as typed.
struct TrafficReportQuery {
  int64_t from_ms = 0;  // aligned down to a multiple of bucket_ms by TrafficReport
  int64_t to_ms = 0;
  int64_t bucket_ms = 60'000;
  std::string pool;  // "" = every pool
  std::optional<int64_t> client_key_id, upstream_key_id;
  std::optional<std::string> model;
};
// "90s", "15m", "6h", "1d", "500ms": whole milliseconds; nullopt when it does not parse or is
// not positive.
std::optional<int64_t> ParseDurationMs(std::string_view text);
// InvalidArgument naming the parameter as `prefix` + its name ("--since", "since").
StatusOr<TrafficReportQuery> ParseTrafficParams(const TrafficParams& params, int64_t now_ms,
                                                std::string_view prefix);
// Usage records of every instance on the store, by time bucket (Store::TrafficSeries), with
// every bucket of the window present (zeros where there was no traffic), `from` aligned down to
// a multiple of the bucket (UTC) so that successive reports share their buckets:
// {"from","from_ms","to","to_ms","bucket_ms","pool","client_key_id","upstream_key_id","model",
//  "buckets":[{"start","start_ms",<figures>}],"total":{<figures>}} where <figures> are
// "requests","errors":{"total","4xx","5xx","no_answer"},"input_tokens","output_tokens",
// "cost_micros","cost_usd","latency_ms":{"avg","max","p50","p95","p99"},
// "ttfb_ms":{"count","avg","max","p50","p95","p99"} (whole milliseconds, rounded; percentiles
// estimated from the fixed histogram, store/store.h LatencyHistogram::Percentile).
// NotFound for an unknown pool; InvalidArgument as Store::TrafficSeries.
StatusOr<json::object> TrafficReport(store::Store& store, const TrafficReportQuery& query);

// ---- spend against budget
// Per pool (all, or `pool`; NotFound for an unknown one): in-service keys by spend band of
// their budget (billing/spend_stats.h) and per key its last known spend, the budget it is
// judged against (its own, else the pool's) and its band:
// {"pools":[{"pool","keys","spend_usd","spend_micros","bands":{"lt50":n,…},
//   "key_spend":[{"key_id","key","label","state","spend_usd","spend_micros","budget_usd",
//   "budget_micros","budget_source","band","percent","checked_at"}]}]}.
StatusOr<json::object> SpendStats(store::Store& store, const config::Config& config,
                                  const std::string& pool);

}  // namespace keygate::ops

#endif  // KEYGATE_OPS_OPS_H_
