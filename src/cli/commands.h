// The `keygate` subcommands as plain functions on an open Store: cli.cc parses argv and calls
// these; tests may call them directly. Each returns the process exit code (the table below and
// docs/cli.md). Output for humans goes to `out` as text, or as one JSON document per command
// with `json`; errors go to `err` as one line "keygate: error: <message>". No output ever holds
// an upstream key, proxy password, client key or admin key whole, except the one line of
// `clients create` / `admin-key create` that hands out the new key.
//
// Thread safety: a Context is used by one thread at a time.
#ifndef KEYGATE_CLI_COMMANDS_H_
#define KEYGATE_CLI_COMMANDS_H_

#include <cstdint>
#include <istream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "common/status.h"
#include "config/config.h"
#include "ops/client_settings.h"
#include "ops/traffic_params.h"
#include "secrets/secrets.h"
#include "store/store.h"

namespace keygate::cli {

// Exit codes (docs/cli.md, "Exit codes").
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;           // runtime or storage error (unreachable, locked)
inline constexpr int kExitUsage = 2;           // bad flags or arguments, corrupt input
inline constexpr int kExitNotFound = 3;        // unknown pool, key, proxy, binding, store file
inline constexpr int kExitConflict = 4;        // exists already (pool, duplicate key), or the
                                               // key's state does not allow the change
inline constexpr int kExitStoreUnusable = 5;   // master key missing or wrong, newer schema,
                                               // read-only store
inline constexpr int kExitAlreadyRotated = 10;  // rotate: someone else rotated it
inline constexpr int kExitNoBackup = 11;        // rotate: no backup, the key is now exhausted

// The exit code for a failed Status.
int ExitCodeFor(const Status& status);

// Writes "keygate: error: <message>" to `err` and returns ExitCodeFor(status).
int ReportError(std::ostream& err, const Status& status);

struct Context {
  store::Store& store;
  const SecretBox& secrets;
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
  bool json = false;
};

// ---- pools
struct PoolCreateOptions {
  std::string name;
  std::string provider;
  std::string settings_json = "{}";  // must be a JSON object
};
int PoolCreate(Context& ctx, const PoolCreateOptions& options);
int PoolList(Context& ctx);  // with counts by state

// ---- keys
struct KeysImportOptions {
  std::string pool;
  bool backup = false;          // import as backup keys instead of active
  std::string file;             // "" or "-" = ctx.in
  bool skip_duplicates = false;  // insert the new keys and report duplicates (exit 0)
};
// Parses the whole input first (key_list.h): a corrupt line writes nothing. Without
// skip_duplicates, any key already stored (or repeated in the input) writes nothing and exits
// kExitConflict, listing the duplicates masked with the id of the existing key.
int KeysImport(Context& ctx, const KeysImportOptions& options);

struct KeysListOptions {
  std::string pool;   // "" = all pools
  std::string state;  // "" = all states
};
int KeysList(Context& ctx, const KeysListOptions& options);  // masked keys, counts at the end

int KeysCooldown(Context& ctx, int64_t key_id, int64_t seconds, const std::string& reason);
int KeysExhaust(Context& ctx, int64_t key_id, const std::string& reason);
int KeysRestore(Context& ctx, int64_t key_id, const std::string& as_state);  // active|backup
int KeysDelete(Context& ctx, int64_t key_id);

// ---- proxies and bindings
int ProxiesAdd(Context& ctx, const std::string& url);
int ProxiesList(Context& ctx);  // never a password: has_password
int ProxiesDelete(Context& ctx, int64_t proxy_id);
int Bind(Context& ctx, int64_t key_id, int64_t proxy_id, int64_t priority);
int Unbind(Context& ctx, int64_t key_id, int64_t proxy_id);

// ---- rotation and history
struct RotateOptions {
  std::string pool;
  int64_t key_id = 0;
  std::string reason = "manual";
};
// Exit: kExitOk (rotated), kExitAlreadyRotated, kExitNoBackup, or an error code.
int Rotate(Context& ctx, const RotateOptions& options);

struct HistoryOptions {
  std::string pool;
  std::optional<int64_t> key_id;
  int64_t limit = 100;
};
int HistoryRotations(Context& ctx, const HistoryOptions& options);
// Spend records (one per spend check), newest first.
int HistorySpend(Context& ctx, const HistoryOptions& options);

// ---- spend checker
struct SpendCheckOptions {
  std::string pool;  // "" = every pool whose config names a spend_probe
  const config::Config* config = nullptr;  // required: the probes and providers
};
// Runs one pass of the spend checker by hand (billing/spend_checker.h): probes, records, and
// rotates keys at their budget or threshold. Exit: kExitOk when every check completed (whatever
// it decided), kExitError when a probe or the store failed for some key (see the output),
// kExitUsage when --pool names a pool without a spend_probe, kExitNotFound for an unknown pool.
int SpendCheck(Context& ctx, const SpendCheckOptions& options);
// Spend stats per pool (billing/spend_stats.h): in-service keys by spend band of their budget,
// from the last known spend. Reads the store only (no probes). Exit: kExitNotFound for an
// unknown --pool.
int SpendStats(Context& ctx, const SpendCheckOptions& options);

// ---- client keys
// Settings of `clients create` and `clients update`, as typed: ops/client_settings.h.
using ClientSettings = ops::ClientSettings;
// Prints the new client key once; stores only its hash and a masked hint.
int ClientsCreate(Context& ctx, const std::string& name, const ClientSettings& settings = {});
int ClientsList(Context& ctx);
int ClientsUpdate(Context& ctx, int64_t id, const ClientSettings& settings);
int ClientsEnable(Context& ctx, int64_t id, bool enabled);
// Gives the key a new secret (printed once, like create); the old one stops working.
int ClientsRoll(Context& ctx, int64_t id);
int ClientsDelete(Context& ctx, int64_t id);  // kExitConflict while it has sub-keys

// ---- usage reports
struct UsageOptions {
  int64_t key_id = 0;   // 0 = every client key
  std::string model;    // "" = every model
  std::string since;    // "" = all time; else a UTC date or time (ParseTimeMs)
  std::string until;    // "" = up to now; a date includes that day (ops::ParseUsageUntil)
};
// Requests, tokens and cost by UTC day, client key and model, with a total line.
int UsageReport(Context& ctx, const UsageOptions& options);

// Requests, errors, tokens, cost, latency and time to first byte per time bucket, for every
// instance on the store (ops::TrafficReport): the options as typed (ops::TrafficParams, names
// with "--"), a window back from now by default.
int Traffic(Context& ctx, const ops::TrafficParams& params);

// ---- admin keys (docs/admin-api.md) and the audit log
// Prints the new admin key once; stores only its hash and a masked hint.
int AdminKeyCreate(Context& ctx, const std::string& name);
int AdminKeyList(Context& ctx);
int AdminKeyDelete(Context& ctx, const std::string& name);  // kExitNotFound when unknown
int AuditList(Context& ctx, int64_t limit);

// ---- migration
int ImportMongo(Context& ctx, const std::string& dir);

}  // namespace keygate::cli

#endif  // KEYGATE_CLI_COMMANDS_H_
