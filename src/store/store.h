// The Store: every durable fact of keygate (pools, upstream keys, egress proxies, bindings,
// rotations, spend and usage records, client keys) behind one interface with two
// implementations (SQLite, PostgreSQL) that pass one conformance suite.
//
// Rotation is the core promise (docs/design.md, "rotation invariants"): Rotate() claims the failed
// key with one conditional update whose rows-affected it checks, claims one backup with the
// store's own atomicity, moves the bindings, writes the rotation record and bumps the pool
// version, all in one transaction. It returns one of three domain outcomes; a storage failure is
// a Status, never an outcome.
//
// Secrets: upstream keys and proxy passwords are sealed with the SecretBox the store was opened
// with; they leave the store in plaintext only where a caller asks for them (`with_secrets`).
// Client keys are stored as hashes only.
//
// Thread safety: a Store is safe to use from many threads at once. Every call blocks on I/O: call
// it from a store thread, never from an event-loop thread.
#ifndef KEYGATE_STORE_STORE_H_
#define KEYGATE_STORE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/clock.h"
#include "common/proxy_url.h"
#include "common/status.h"
#include "secrets/secrets.h"

namespace keygate::store {

enum class KeyState { kActive, kBackup, kCooling, kExhausted, kRetired };
inline constexpr KeyState kAllKeyStates[] = {KeyState::kActive, KeyState::kBackup,
                                             KeyState::kCooling, KeyState::kExhausted,
                                             KeyState::kRetired};
std::string_view KeyStateName(KeyState state);  // "active", "backup", ...
std::optional<KeyState> ParseKeyState(std::string_view name);

struct Pool {
  int64_t id = 0;
  std::string name;
  std::string provider;       // e.g. "openai", "anthropic", "litellm"
  std::string settings_json;  // free-form JSON object owned by later layers; "{}" by default
  int64_t version = 0;        // bumped by every change to the pool's keys or bindings
  int64_t created_at_ms = 0;
};

struct UpstreamKey {
  int64_t id = 0;
  int64_t pool_id = 0;
  std::string secret;       // plaintext; empty unless requested with_secrets
  std::string masked;       // "sk-…abcd"; always present
  std::string fingerprint;  // keyed hash for duplicate detection
  KeyState state = KeyState::kBackup;
  int64_t priority = 0;                 // higher is preferred (backups: claimed first)
  std::optional<int64_t> budget_micros;  // micro-USD; nullopt = unknown
  int64_t spend_micros = 0;              // last known spend
  int64_t cooldown_until_ms = 0;         // meaningful while state == kCooling
  std::string last_error;
  std::string label;        // free text (e.g. the id in the system it was imported from)
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  std::optional<int64_t> activated_at_ms;
  std::optional<int64_t> retired_at_ms;
  std::optional<int64_t> replaced_by;  // set on a retired key: its replacement
  std::optional<int64_t> replaces;     // set on a replacement: the key it replaced
};

struct NewKey {
  std::string secret;
  KeyState state = KeyState::kActive;  // any state (imports may carry history)
  int64_t priority = 0;
  std::optional<int64_t> budget_micros;
  std::string label;
  std::optional<int64_t> proxy_id;  // bind to this proxy (priority 0) when inserted
};

struct ImportResult {
  // One entry per input key, in input order: the id of the inserted key, or of the existing key
  // with the same fingerprint when it was a duplicate.
  std::vector<int64_t> key_ids;
  std::vector<bool> duplicate;  // per input key: true when it was not inserted
  int64_t inserted = 0;
  int64_t duplicates = 0;
};

struct KeyFilter {
  std::optional<int64_t> pool_id;
  std::optional<KeyState> state;
  bool with_secrets = false;
};

struct StateCounts {
  int64_t active = 0, backup = 0, cooling = 0, exhausted = 0, retired = 0;
  int64_t total() const { return active + backup + cooling + exhausted + retired; }
  int64_t& operator[](KeyState s);
};

// The three outcomes of Rotate(). Callers handle all three (std::visit).
struct Rotated {
  int64_t new_key_id = 0;
  int64_t rotation_id = 0;
};
struct AlreadyRotated {};  // someone else rotated it, or the key is no longer active/cooling
struct NoBackup {          // the failed key is now exhausted; an alert should be raised
  int64_t rotation_id = 0;
};
using RotateOutcome = std::variant<Rotated, AlreadyRotated, NoBackup>;
std::string_view RotateOutcomeName(const RotateOutcome& o);  // rotated|already_rotated|no_backup

struct RotationRecord {
  int64_t id = 0;
  int64_t pool_id = 0;
  int64_t failed_key_id = 0;
  std::optional<int64_t> new_key_id;  // nullopt for no_backup
  std::string reason;
  std::string outcome;  // "rotated" or "no_backup"
  std::string actor;
  int64_t created_at_ms = 0;
};

struct HistoryFilter {
  std::optional<int64_t> pool_id;
  std::optional<int64_t> key_id;   // rotations: failed or new key; spend: the key
  std::optional<int64_t> before_id;  // paging: records with id < before_id
  int64_t limit = 100;
};

struct Proxy {
  int64_t id = 0;
  ProxyUrl url;  // url.password empty unless requested with_secrets
  bool has_password = false;
  bool healthy = true;
  std::string last_error;
  int64_t checked_at_ms = 0;
  int64_t created_at_ms = 0;
};

struct Binding {
  int64_t id = 0;
  int64_t key_id = 0;
  int64_t proxy_id = 0;
  int64_t priority = 0;  // higher is tried first
};

struct SpendRecord {
  int64_t id = 0;
  int64_t key_id = 0;
  int64_t pool_id = 0;
  int64_t spend_micros = 0;
  std::optional<int64_t> budget_micros;
  std::string action;  // "none", "rotated", "already_rotated", "no_backup", "failed"
  std::string reason;  // rotation reason when the action rotated
  std::optional<int64_t> new_key_id;  // only when action == "rotated"
  std::string error;   // probe error when action == "failed"
  int64_t created_at_ms = 0;
};

// A spending cap of a client key on one model (micro-USD), typically on a sub-key: what it may
// spend of its parent's credits on that model. `spent_micros` counts settled costs plus open
// reservations.
struct ModelCap {
  std::string model;  // catalog id, or "*" for every model without a cap of its own
  int64_t cap_micros = 0;
  int64_t spent_micros = 0;
};

struct ClientKey {
  int64_t id = 0;
  std::string name;
  std::string key_hash;
  std::string hint;    // masked form of the secret, for display
  bool enabled = true;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  // A sub-key spends the credits of its parent (one level: a parent is never a sub-key).
  std::optional<int64_t> parent_id;
  // The balance in micro-USD; nullopt = unlimited. Always nullopt on a sub-key.
  std::optional<int64_t> credits_micros;
  std::vector<std::string> allowed_models;  // catalog ids; empty = every model
  std::optional<int64_t> rpm_limit, tpm_limit, concurrency_limit;  // nullopt = no limit
  std::optional<int64_t> expires_at_ms;                           // nullopt = never
  std::vector<ModelCap> caps;                                     // by model
};

struct NewClientKey {
  std::string name;
  std::string key_hash;
  std::string hint;
  std::optional<int64_t> parent_id;
  std::optional<int64_t> credits_micros;
  std::vector<std::string> allowed_models;
  std::optional<int64_t> rpm_limit, tpm_limit, concurrency_limit;
  std::optional<int64_t> expires_at_ms;
  std::vector<ModelCap> caps;  // spent_micros ignored
};

// A change of a client key's settings: fields left unset stay as they are. An inner nullopt
// clears a limit (no limit, never expires, unlimited credits).
struct ClientKeyUpdate {
  std::optional<bool> enabled;
  std::optional<std::vector<std::string>> allowed_models;
  std::optional<std::optional<int64_t>> rpm_limit, tpm_limit, concurrency_limit, expires_at_ms;
  std::optional<std::optional<int64_t>> credits_micros;  // sets the balance
  std::optional<int64_t> add_credits_micros;  // adds (or, negative, takes) atomically
  std::vector<ModelCap> caps;  // upserted by model (spent kept); cap_micros < 0 removes the cap
};

// An operator's credential for the admin API (hash only, like client keys, but hashed with its
// own subkey: an admin key never authenticates as a client key or the reverse).
struct AdminKey {
  int64_t id = 0;
  std::string name;      // unique
  std::string key_hash;
  std::string hint;      // masked form of the secret, for display
  int64_t created_at_ms = 0;
};

// One admin action: who (the admin key's name), what, on what, and how it ended. Never a secret.
struct AuditRecord {
  int64_t id = 0;
  std::string admin;   // admin key name ("cli" for the command line)
  std::string action;  // e.g. "keys.import", "pools.create"
  std::string target;  // e.g. "pool main", "key 12"
  std::string result;  // "ok", or the error status ("not_found: key 12 does not exist")
  int64_t created_at_ms = 0;
};

struct UsageRecord {
  int64_t id = 0;
  std::string request_id;  // unique: re-writing a batch never duplicates a record
  std::optional<int64_t> client_key_id;
  std::optional<int64_t> upstream_key_id;
  std::optional<int64_t> pool_id;
  std::string model;
  int64_t input_tokens = 0, output_tokens = 0, cache_read_tokens = 0, cache_write_tokens = 0;
  int64_t cost_micros = 0;
  int64_t latency_ms = 0, ttfb_ms = 0;
  int64_t status = 0;
  int64_t attempts = 1;
  int64_t created_at_ms = 0;
  // Not stored. When set, InsertUsage settles the request's credits in the same transaction as
  // the record (see ReserveCredits).
  bool settle = false;
};

// A credit reservation: taken before a request of a metered client key is forwarded, settled by
// the usage record with the same request_id (InsertUsage with settle), or released by the sweep
// once it expired (its process died).
struct ReserveRequest {
  std::string request_id;
  int64_t client_key_id = 0;
  std::string model;          // catalog id: which cap of the key applies
  int64_t amount_micros = 0;  // the estimate, taken from the payer's credits and the cap
  std::string owner;          // the instance that holds it (diagnostics)
  int64_t expires_at_ms = 0;
};

enum class ReserveVerdict {
  kReserved,
  kNoCredits,   // the payer's balance cannot cover the estimate (nothing changed)
  kCapReached,  // the key's cap on this model cannot cover it (nothing changed)
  kUnknownKey,  // the client key was deleted
  kRateLimited,  // the key's RPM, TPM or concurrency limit (nothing changed)
};

struct ReserveOutcome {
  ReserveVerdict verdict = ReserveVerdict::kReserved;
  std::optional<int64_t> balance_micros;  // the payer's balance after (or when refused)
  std::string limit;                      // kRateLimited: "rpm", "tpm" or "concurrency"
  int64_t retry_after_ms = 0;             // kRateLimited: when a retry can pass
};

// `keygate usage`: usage records summed by client key, model and UTC day.
struct UsageQuery {
  std::optional<int64_t> client_key_id;
  std::optional<std::string> model;
  std::optional<int64_t> since_ms;  // records created at or after
  std::optional<int64_t> until_ms;  // records created before
};
struct UsageSummary {
  std::optional<int64_t> client_key_id;
  std::string model;
  int64_t day = 0;  // days since 1970-01-01 (UTC)
  int64_t requests = 0;
  int64_t input_tokens = 0, output_tokens = 0, cache_read_tokens = 0, cache_write_tokens = 0;
  int64_t cost_micros = 0;
};

// Store::TrafficSeries: usage records bucketed by time, for the traffic report (ops) and the
// dashboard. Buckets are [from_ms + i * bucket_ms, from_ms + (i + 1) * bucket_ms), the last one
// cut at to_ms.
inline constexpr int64_t kMinTrafficBucketMs = 10'000;      // 10 s
inline constexpr int64_t kMaxTrafficBucketMs = 86'400'000;  // 1 day
inline constexpr int64_t kMaxTrafficBuckets = 1'500;
// The fixed histogram of latency and time to first byte, like Prometheus buckets: bound i counts
// the records whose value is below kTrafficBoundsMs[i] (ms); the last bucket is open above.
inline constexpr int64_t kTrafficBoundsMs[] = {
    10,     25,     50,     100,     200,     300,     500,    750,    1'000,
    1'500,  2'000,  3'000,  5'000,   7'500,   10'000,  15'000, 20'000, 30'000,
    45'000, 60'000, 90'000, 120'000, 180'000, 300'000, 600'000};
inline constexpr size_t kTrafficBounds = std::size(kTrafficBoundsMs);

struct TrafficQuery {
  int64_t from_ms = 0;  // records created at or after
  int64_t to_ms = 0;    // records created before
  int64_t bucket_ms = 60'000;
  std::optional<int64_t> pool_id, client_key_id, upstream_key_id;
  std::optional<std::string> model;
};

// Counts of values (whole milliseconds) in the fixed buckets of kTrafficBoundsMs.
struct LatencyHistogram {
  int64_t count = 0;  // values counted
  int64_t sum_ms = 0;
  int64_t max_ms = 0;
  int64_t below[kTrafficBounds] = {};  // below[i]: values < kTrafficBoundsMs[i] (cumulative)
  void Add(const LatencyHistogram& other);
  double AverageMs() const;  // 0 when empty
  // The q-quantile (0 < q <= 1) of the counted values, interpolated linearly within the bucket
  // that holds the nearest-rank value and capped at max_ms: it lies in the same bucket as the
  // exact value, so it is off by less than that bucket's width. 0 when empty.
  double Percentile(double q) const;
};

struct TrafficBucket {
  int64_t start_ms = 0;
  int64_t requests = 0;
  int64_t errors_4xx = 0, errors_5xx = 0;
  int64_t no_answer = 0;  // status 0: no answer reached the client (cut, or never sent)
  int64_t input_tokens = 0, output_tokens = 0, cost_micros = 0;
  LatencyHistogram latency;              // every record
  LatencyHistogram ttfb;                 // records with a first byte (ttfb_ms > 0)
  void Add(const TrafficBucket& other);  // sums (start_ms unchanged)
};

// Store::KeysUsedAfter: which upstream keys carried requests recorded by any instance.
struct KeyUse {
  int64_t key_id = 0;
  int64_t last_used_ms = 0;  // the newest record's created_at
};
struct KeysUsed {
  std::vector<KeyUse> keys;
  int64_t max_record_id = 0;  // the cursor for the next call (the `after_record_id` given if none)
};

struct PoolVersion {
  int64_t pool_id = 0;
  int64_t version = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  // "sqlite:/var/lib/keygate.db" or "postgresql://user@host/db"; never contains a password.
  virtual std::string Describe() const = 0;
  virtual StatusOr<int64_t> SchemaVersion() = 0;

  // ---- pools
  // AlreadyExists when the name is taken; InvalidArgument for an empty name or provider.
  virtual StatusOr<Pool> CreatePool(std::string_view name, std::string_view provider,
                                    std::string_view settings_json = "{}") = 0;
  virtual StatusOr<Pool> GetPool(std::string_view name) = 0;  // NotFound
  virtual StatusOr<std::vector<Pool>> ListPools() = 0;
  virtual StatusOr<std::vector<PoolVersion>> ListPoolVersions() = 0;

  // ---- upstream keys
  // Inserts `keys` into the pool in one transaction: all of them, or on error none. A key whose
  // fingerprint already exists (in any pool, or earlier in `keys`) is not inserted and is
  // reported as a duplicate. InvalidArgument for an empty secret; NotFound for an unknown pool
  // or proxy.
  virtual StatusOr<ImportResult> ImportKeys(int64_t pool_id, const std::vector<NewKey>& keys) = 0;
  virtual StatusOr<std::vector<UpstreamKey>> ListKeys(const KeyFilter& filter) = 0;
  virtual StatusOr<UpstreamKey> GetKey(int64_t key_id, bool with_secret) = 0;  // NotFound
  virtual StatusOr<StateCounts> CountKeys(int64_t pool_id) = 0;
  // Deletes a key and its bindings. Returns false when no such key.
  virtual StatusOr<bool> DeleteKey(int64_t key_id) = 0;

  // ---- key state
  // See the header comment and docs/design.md. NotFound when the key does not exist;
  // InvalidArgument when it belongs to another pool.
  virtual StatusOr<RotateOutcome> Rotate(int64_t pool_id, int64_t failed_key_id,
                                         std::string_view reason, std::string_view actor = "") = 0;
  // Puts an active or cooling key in `cooling` until `until_ms`; the later of the existing and
  // the new deadline wins. Returns false when the key is in another state (nothing changed).
  virtual StatusOr<bool> CoolDown(int64_t key_id, int64_t until_ms, std::string_view reason) = 0;
  // Returns cooling keys whose deadline has passed to `active`. Returns how many.
  virtual StatusOr<int64_t> ReactivateCooled() = 0;
  // Marks an active or cooling key exhausted. Returns false when it was in another state.
  virtual StatusOr<bool> MarkExhausted(int64_t key_id, std::string_view reason) = 0;
  // Returns an exhausted, retired or cooling key to `target` (kActive or kBackup).
  // Returns false when the key was already active or backup. InvalidArgument for another target.
  virtual StatusOr<bool> Restore(int64_t key_id, KeyState target) = 0;
  // Records the last known spend (and budget, when known) of a key.
  virtual Status UpdateSpend(int64_t key_id, int64_t spend_micros,
                             std::optional<int64_t> budget_micros) = 0;
  virtual StatusOr<std::vector<RotationRecord>> ListRotations(const HistoryFilter& filter) = 0;

  // ---- egress proxies and bindings
  // Adds a proxy, or returns the existing one with the same scheme, host, port and username
  // (updating its password) with *created = false.
  virtual StatusOr<Proxy> AddProxy(const ProxyUrl& url, bool* created) = 0;
  virtual StatusOr<std::vector<Proxy>> ListProxies(bool with_secrets) = 0;
  virtual StatusOr<Proxy> GetProxy(int64_t proxy_id, bool with_secret) = 0;  // NotFound
  // Records a proxy's health as observed at `observed_at_ms` (0 = now). An observation older than
  // the one stored is ignored, so reports that race (two threads, two instances) settle on the
  // latest. NotFound for an unknown proxy.
  virtual Status SetProxyHealth(int64_t proxy_id, bool healthy, std::string_view error,
                                int64_t observed_at_ms = 0) = 0;
  // Deletes a proxy and its bindings. Returns false when no such proxy.
  virtual StatusOr<bool> DeleteProxy(int64_t proxy_id) = 0;
  // Binds a key to a proxy (or updates the priority). Returns true when the binding is new.
  // NotFound for an unknown key or proxy.
  virtual StatusOr<bool> Bind(int64_t key_id, int64_t proxy_id, int64_t priority) = 0;
  virtual StatusOr<bool> Unbind(int64_t key_id, int64_t proxy_id) = 0;
  // Bindings of the keys of one pool (all pools when nullopt), highest priority first.
  virtual StatusOr<std::vector<Binding>> ListBindings(std::optional<int64_t> pool_id) = 0;

  // ---- records
  virtual StatusOr<int64_t> AddSpendRecord(const SpendRecord& record) = 0;
  virtual StatusOr<std::vector<SpendRecord>> ListSpendRecords(const HistoryFilter& filter) = 0;
  // Writes a batch in one transaction; records whose request_id is already stored are skipped.
  // Returns how many were inserted. A record with `settle` that is inserted also settles its
  // request, in the same transaction: the reservation with its request_id (if still there) is
  // deleted and its amount given back to the payer, the record's cost taken from the payer's
  // credits (when limited) and added to the key's cap on the model (when capped). So the credits
  // spent always equal the sum of settled records' costs, and a record re-written after an unknown
  // outcome never settles twice. Likewise the inserted records' costs, and only theirs, are added
  // to their upstream keys' running totals (LedgerSpendMicros) in the same transaction.
  virtual StatusOr<int64_t> InsertUsage(const std::vector<UsageRecord>& records) = 0;
  virtual StatusOr<std::vector<UsageRecord>> ListUsage(const HistoryFilter& filter) = 0;
  // Sums by (day, client key, model), in that order (records without a client key last).
  virtual StatusOr<std::vector<UsageSummary>> SummarizeUsage(const UsageQuery& query) = 0;
  // The buckets of `query` that hold records, in time order (a bucket without records is not
  // returned). One statement over the created_at range; every figure is exact (sums over the
  // records) except the percentiles, which come from the fixed histogram. InvalidArgument when
  // to_ms <= from_ms, bucket_ms is outside [kMinTrafficBucketMs, kMaxTrafficBucketMs], or the
  // range holds more than kMaxTrafficBuckets buckets.
  virtual StatusOr<std::vector<TrafficBucket>> TrafficSeries(const TrafficQuery& query) = 0;
  // keygate's own ledger of what upstream key `key_id` has spent: the cost_micros of its usage
  // records inserted since it was last activated (imported active or cooling, promoted by
  // Rotate) or restored (Restore); all of them when it never was; 0 when there are none. Read
  // from a running total that InsertUsage keeps per key, not by summing records. A record counts
  // by when it was recorded, not by its created_at: one created before the activation but
  // written after it (a batch still queued, another instance's) counts. NotFound for an unknown
  // key.
  virtual StatusOr<int64_t> LedgerSpendMicros(int64_t key_id) = 0;
  // The upstream keys of the usage records with an id above `after_record_id` created at or after
  // `since_ms` — the traffic of every instance on the store, read incrementally by the spend
  // checker's leader (its schedule). On PostgreSQL a record whose id was drawn before another's
  // but committed after the cursor passed it is not seen: this is a scheduling hint, never a
  // ledger.
  virtual StatusOr<KeysUsed> KeysUsedAfter(int64_t after_record_id, int64_t since_ms) = 0;

  // ---- credits
  // Reserves `amount_micros` for a request of client key `client_key_id` in one transaction that
  // first locks the key's row (so one key's reservations are serialized across instances): its
  // limits — concurrency (open reservations), RPM (requests in the current fixed minute), TPM
  // (tokens settled in the current minute) —, then conditional decrements (rows affected decide)
  // of the key's cap on the model, when it has one, and of the payer's balance (the parent's for
  // a sub-key), when limited; then the reservation row. A refusal rolls everything back.
  // AlreadyExists when the request_id is reserved already.
  virtual StatusOr<ReserveOutcome> ReserveCredits(const ReserveRequest& request) = 0;
  // Releases every reservation whose expiry has passed (their owner died, or hung): gives the
  // amounts back. Returns how many.
  virtual StatusOr<int64_t> ReleaseExpiredReservations() = 0;
  virtual StatusOr<int64_t> CountReservations() = 0;

  // ---- leases (leader election across instances)
  // Tries to hold the lease `name` for `holder` until now + ttl_ms. Returns true when the caller
  // holds it now: it was free (inserted), already the caller's (renewed), or expired (taken
  // over); false when another holder's lease is still running (nothing changed). One conditional
  // statement whose rows affected decide, so of any number of concurrent callers across processes
  // at most one holds an unexpired lease. InvalidArgument for an empty name or holder, or
  // ttl_ms <= 0.
  virtual StatusOr<bool> TryAcquireLease(std::string_view name, std::string_view holder,
                                         int64_t ttl_ms) = 0;
  // Gives the lease up when `holder` holds it (so another instance need not wait for it to
  // expire); does nothing otherwise.
  virtual Status ReleaseLease(std::string_view name, std::string_view holder) = 0;

  // ---- client keys (hash only)
  // AlreadyExists when the hash is taken; InvalidArgument for an empty name, a negative amount,
  // credits on a sub-key, a model name with a comma; NotFound for an unknown parent;
  // FailedPrecondition when the parent is itself a sub-key.
  virtual StatusOr<ClientKey> CreateClientKey(const NewClientKey& key) = 0;
  StatusOr<ClientKey> CreateClientKey(std::string_view name, std::string_view key_hash,
                                      std::string_view hint) {
    return CreateClientKey(NewClientKey{.name = std::string(name),
                                        .key_hash = std::string(key_hash),
                                        .hint = std::string(hint)});
  }
  virtual StatusOr<ClientKey> GetClientKey(int64_t id) = 0;  // NotFound
  virtual StatusOr<std::vector<ClientKey>> ListClientKeys() = 0;  // by id
  // Applies `update` in one transaction and returns the key as it is now. NotFound; InvalidArgument
  // as CreateClientKey; FailedPrecondition for credits added to an unlimited key or a sub-key.
  virtual StatusOr<ClientKey> UpdateClientKey(int64_t id, const ClientKeyUpdate& update) = 0;
  // Replaces the key's secret (its hash and hint): the old secret stops working at the next
  // refresh of the instances. Returns false when no such key; AlreadyExists for a taken hash.
  virtual StatusOr<bool> RollClientKey(int64_t id, std::string_view key_hash,
                                       std::string_view hint) = 0;
  // Deletes a key and its caps. Returns false when no such key. FailedPrecondition while it has
  // sub-keys. Its usage records stay.
  virtual StatusOr<bool> DeleteClientKey(int64_t id) = 0;

  // ---- admin keys (hash only) and the audit log
  // AlreadyExists when the name (or hash) is taken; InvalidArgument for an empty name.
  virtual StatusOr<AdminKey> CreateAdminKey(std::string_view name, std::string_view key_hash,
                                            std::string_view hint) = 0;
  virtual StatusOr<std::vector<AdminKey>> ListAdminKeys() = 0;
  // Returns false when no admin key has that name.
  virtual StatusOr<bool> DeleteAdminKey(std::string_view name) = 0;
  // Appends one record (its id and, when 0, created_at_ms are filled in). Returns the id.
  virtual StatusOr<int64_t> AddAuditRecord(const AuditRecord& record) = 0;
  // Newest first; `filter.before_id` and `filter.limit` page, pool_id and key_id are ignored.
  virtual StatusOr<std::vector<AuditRecord>> ListAuditRecords(const HistoryFilter& filter) = 0;
};

struct StoreOptions {
  // A SQLite path ("keygate.db", "sqlite:///abs/path.db", "sqlite:rel.db") or a PostgreSQL URL
  // ("postgres://…", "postgresql://…").
  std::string url;
  std::shared_ptr<const SecretBox> secrets;  // required
  const Clock* clock = &RealClock::Get();
  int max_connections = 4;
  int busy_timeout_ms = 10000;  // SQLite: how long a writer waits for the lock
  bool read_only = false;       // open without migrating or writing (inspection)
};

// Opens the store, applies pending migrations (serialized across processes), and checks that the
// master key matches the one the store was created with.
// FailedPrecondition: wrong master key, a store from a newer keygate, a read-only file that needs
// migrating. Unavailable: the database cannot be reached or is locked.
StatusOr<std::unique_ptr<Store>> OpenStore(const StoreOptions& options);

// True when `url` names a PostgreSQL store.
bool IsPostgresUrl(std::string_view url);
// The SQLite file path of a SQLite store URL (empty for PostgreSQL).
std::string SqlitePath(std::string_view url);

}  // namespace keygate::store

#endif  // KEYGATE_STORE_STORE_H_
