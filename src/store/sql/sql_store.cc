#include "store/sql/sql_store.h"

#include <condition_variable>
#include <initializer_list>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "common/strings.h"
#include "store/migrations.h"

namespace keygate::store::sql {

namespace {

constexpr int kMaxTxnAttempts = 8;
constexpr std::string_view kUpstreamKeyContext = "upstream_key";
constexpr std::string_view kProxyPasswordContext = "proxy_password";

// A fixed-size pool of connections. Connections are opened lazily up to `max` and dropped when
// the driver reports them broken, so a lost PostgreSQL connection heals on the next call.
class ConnectionPool {
 public:
  ConnectionPool(Driver& driver, int max) : driver_(driver), max_(max < 1 ? 1 : max) {}

  class Lease {
   public:
    Lease(ConnectionPool* pool, std::unique_ptr<Connection> conn)
        : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& other) noexcept = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ != nullptr && conn_ != nullptr) pool_->Release(std::move(conn_));
    }
    Connection& operator*() { return *conn_; }
    Connection* operator->() { return conn_.get(); }

   private:
    ConnectionPool* pool_;
    std::unique_ptr<Connection> conn_;
  };

  StatusOr<Lease> Acquire() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_; });
    if (!idle_.empty()) {
      auto conn = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(conn));
    }
    ++open_;
    lock.unlock();
    auto conn = driver_.Connect();
    if (!conn.ok()) {
      std::lock_guard<std::mutex> relock(mu_);
      --open_;
      cv_.notify_one();
      return conn.status();
    }
    return Lease(this, std::move(conn).value());
  }

  // Hands a connection opened elsewhere to the pool (the one used for migrations).
  void Adopt(std::unique_ptr<Connection> conn) {
    std::lock_guard<std::mutex> lock(mu_);
    ++open_;
    idle_.push_back(std::move(conn));
  }

 private:
  void Release(std::unique_ptr<Connection> conn) {
    std::lock_guard<std::mutex> lock(mu_);
    if (conn->Broken()) {
      --open_;
    } else {
      idle_.push_back(std::move(conn));
    }
    cv_.notify_one();
  }

  Driver& driver_;
  const int max_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Connection>> idle_;  // GUARDED_BY(mu_)
  int open_ = 0;                                   // GUARDED_BY(mu_)
};

StatusOr<Result> Exec(Connection& conn, std::string_view sql, std::initializer_list<Value> params) {
  return conn.Exec(sql, std::span<const Value>(params.begin(), params.size()));
}

// Usage records per INSERT statement (kUsageParams each: 960, below both databases' limits).
constexpr size_t kUsageRowsPerInsert = 64;
constexpr size_t kUsageParams = 15;

// The texts of `head` followed by 1 .. max_rows rows of `row` ("(?, ?)") and then `tail`; entry n
// has n rows (entry 0 is empty). Built once per statement kind: both drivers cache their prepared
// form by the text, so at most max_rows statements each.
std::vector<std::string> MultiRowSql(std::string_view head, std::string_view row,
                                     std::string_view tail, size_t max_rows) {
  std::vector<std::string> out(max_rows + 1);
  std::string values;
  for (size_t n = 1; n <= max_rows; ++n) {
    values += n == 1 ? " " : ", ";
    values += row;
    out[n] = std::string(head) + values + std::string(tail);
  }
  return out;
}

// The statement that inserts `rows` usage records (1 <= rows <= kUsageRowsPerInsert), skipping
// those whose request_id is stored. With `returning`, it returns the key and cost of those it
// inserted (both databases return only inserted rows), which InsertUsage adds to the keys'
// totals when it cannot tell them from the count alone. RETURNING is not free: SQLite gathers the
// rows in a temporary table before the first one is stepped out (bench/micro_bench UsageInsert:
// 3.7 µs per record with it, 2.7 without), so InsertUsage asks for it only when it must.
// SQLite gets INSERT OR IGNORE, not ON CONFLICT (request_id) DO NOTHING: with the latter any
// other constraint may abort the statement halfway, so a multi-row statement keeps a statement
// journal to undo its earlier rows, and past 64 KiB SQLite spills that to a temporary file
// (measured: more pwrite64 calls to /var/tmp/etilqs_* than to the WAL). OR IGNORE cannot abort;
// the other constraints (NOT NULL) never fail for the values bound here.
const std::string& UsageInsertSql(Dialect dialect, size_t rows, bool returning) {
  static const auto make = [](bool pg, bool returning) {
    return MultiRowSql(std::string(pg ? "INSERT" : "INSERT OR IGNORE") +
                           " INTO usage_records (request_id, client_key_id, upstream_key_id,"
                           " pool_id, model, input_tokens, output_tokens, cache_read_tokens,"
                           " cache_write_tokens, cost_micros, latency_ms, ttfb_ms, status,"
                           " attempts, created_at) VALUES",
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       std::string(pg ? " ON CONFLICT (request_id) DO NOTHING" : "") +
                           (returning ? " RETURNING upstream_key_id, cost_micros" : ""),
                       kUsageRowsPerInsert);
  };
  static const std::vector<std::string> statements[2][2] = {
      {make(false, false), make(false, true)}, {make(true, false), make(true, true)}};
  return statements[dialect == Dialect::kPostgres][returning][rows];
}

// The statement that adds `rows` (key, cost) pairs to upstream_key_usage, creating missing rows.
// The keys of one statement must be distinct (PostgreSQL refuses to update a row twice). Up to
// kUsageRowsPerInsert keys per statement: a 256-record batch from a 1,000-key pool touches ~220
// keys. PostgreSQL: one round trip instead of one per key. SQLite: single-row upserts were a
// quarter of the usage writer's CPU (bench/micro_bench UsageInsert: 2.5 µs per record with them,
// 2.2 with 64 per statement). Such a statement may abort halfway, so SQLite keeps a statement
// journal for it, in memory (sqlite_driver.cc raises the spill limit from 64 KiB to 4 MiB).
const std::string& KeyTotalsUpsertSql(size_t rows) {
  static const std::vector<std::string> sql = MultiRowSql(
      "INSERT INTO upstream_key_usage (upstream_key_id, cost_micros) VALUES", "(?, ?)",
      " ON CONFLICT (upstream_key_id) DO UPDATE SET"
      " cost_micros = upstream_key_usage.cost_micros + excluded.cost_micros",
      kUsageRowsPerInsert);
  return sql[rows];
}

// Sets an upstream key's ledger base to its usage total now, in a statement that activates it:
// Store::LedgerSpendMicros counts from here.
constexpr const char* kResetLedgerBase =
    "ledger_base_micros = COALESCE((SELECT cost_micros FROM upstream_key_usage"
    " WHERE upstream_key_id = upstream_keys.id), 0)";

constexpr const char* kKeyColumns =
    "id, pool_id, secret_sealed, masked, fingerprint, state, priority, budget_micros, "
    "spend_micros, cooldown_until, last_error, label, created_at, updated_at, activated_at, "
    "retired_at, replaced_by, replaces";
constexpr const char* kPoolColumns = "id, name, provider, settings, version, created_at";
constexpr const char* kProxyColumns =
    "id, scheme, host, port, username, password_sealed, healthy, last_error, checked_at, "
    "created_at";
constexpr const char* kRotationColumns =
    "id, pool_id, failed_key_id, new_key_id, reason, outcome, actor, created_at";
constexpr const char* kSpendColumns =
    "id, key_id, pool_id, spend_micros, budget_micros, action, reason, new_key_id, error, "
    "created_at";
constexpr const char* kUsageColumns =
    "id, request_id, client_key_id, upstream_key_id, pool_id, model, input_tokens, "
    "output_tokens, cache_read_tokens, cache_write_tokens, cost_micros, latency_ms, ttfb_ms, "
    "status, attempts, created_at";
constexpr const char* kClientKeyColumns =
    "id, name, key_hash, hint, enabled, created_at, updated_at, parent_id, credits_micros,"
    " allowed_models, rpm_limit, tpm_limit, concurrency_limit, expires_at";

Pool PoolFromRow(const Row& r) {
  Pool p;
  p.id = r.Int(0);
  p.name = r.Str(1);
  p.provider = r.Str(2);
  p.settings_json = r.Str(3);
  p.version = r.Int(4);
  p.created_at_ms = r.Int(5);
  return p;
}

RotationRecord RotationFromRow(const Row& r) {
  RotationRecord rec;
  rec.id = r.Int(0);
  rec.pool_id = r.Int(1);
  rec.failed_key_id = r.Int(2);
  rec.new_key_id = r.OptInt(3);
  rec.reason = r.Str(4);
  rec.outcome = r.Str(5);
  rec.actor = r.Str(6);
  rec.created_at_ms = r.Int(7);
  return rec;
}

SpendRecord SpendFromRow(const Row& r) {
  SpendRecord s;
  s.id = r.Int(0);
  s.key_id = r.Int(1);
  s.pool_id = r.Int(2);
  s.spend_micros = r.Int(3);
  s.budget_micros = r.OptInt(4);
  s.action = r.Str(5);
  s.reason = r.Str(6);
  s.new_key_id = r.OptInt(7);
  s.error = r.Str(8);
  s.created_at_ms = r.Int(9);
  return s;
}

UsageRecord UsageFromRow(const Row& r) {
  UsageRecord u;
  u.id = r.Int(0);
  u.request_id = r.Str(1);
  u.client_key_id = r.OptInt(2);
  u.upstream_key_id = r.OptInt(3);
  u.pool_id = r.OptInt(4);
  u.model = r.Str(5);
  u.input_tokens = r.Int(6);
  u.output_tokens = r.Int(7);
  u.cache_read_tokens = r.Int(8);
  u.cache_write_tokens = r.Int(9);
  u.cost_micros = r.Int(10);
  u.latency_ms = r.Int(11);
  u.ttfb_ms = r.Int(12);
  u.status = r.Int(13);
  u.attempts = r.Int(14);
  u.created_at_ms = r.Int(15);
  return u;
}

ClientKey ClientKeyFromRow(const Row& r) {
  ClientKey k;
  k.id = r.Int(0);
  k.name = r.Str(1);
  k.key_hash = r.Str(2);
  k.hint = r.Str(3);
  k.enabled = r.Int(4) != 0;
  k.created_at_ms = r.Int(5);
  k.updated_at_ms = r.Int(6);
  k.parent_id = r.OptInt(7);
  k.credits_micros = r.OptInt(8);
  const std::string models = r.Str(9);
  for (std::string_view m : Split(models, ',')) {
    if (!m.empty()) k.allowed_models.emplace_back(m);
  }
  k.rpm_limit = r.OptInt(10);
  k.tpm_limit = r.OptInt(11);
  k.concurrency_limit = r.OptInt(12);
  k.expires_at_ms = r.OptInt(13);
  return k;
}

// Allowed models are stored as one comma-separated column (they are catalog ids).
std::string JoinModels(const std::vector<std::string>& models) {
  std::string out;
  for (const std::string& m : models) {
    if (!out.empty()) out += ',';
    out += m;
  }
  return out;
}

Status ValidateModels(const std::vector<std::string>& models) {
  for (const std::string& m : models) {
    if (Trim(m).empty() || m.find(',') != std::string::npos) {
      return InvalidArgumentError("model name '" + m + "' must be non-empty and without commas");
    }
  }
  return OkStatus();
}

Status ValidateLimit(const char* what, const std::optional<int64_t>& v) {
  if (v && *v < 0) return InvalidArgumentError(std::string(what) + " must not be negative");
  return OkStatus();
}

constexpr const char* kAdminKeyColumns = "id, name, key_hash, hint, created_at";

AdminKey AdminKeyFromRow(const Row& r) {
  AdminKey k;
  k.id = r.Int(0);
  k.name = r.Str(1);
  k.key_hash = r.Str(2);
  k.hint = r.Str(3);
  k.created_at_ms = r.Int(4);
  return k;
}

constexpr const char* kAuditColumns = "id, admin, action, target, result, created_at";

AuditRecord AuditFromRow(const Row& r) {
  AuditRecord a;
  a.id = r.Int(0);
  a.admin = r.Str(1);
  a.action = r.Str(2);
  a.target = r.Str(3);
  a.result = r.Str(4);
  a.created_at_ms = r.Int(5);
  return a;
}

// Builds "WHERE a = ? AND b = ?" clauses with their parameters, for the history listings.
class Where {
 public:
  // `clause` has one `?` per value in `values`.
  void Add(const char* clause, std::initializer_list<Value> values) {
    sql_ += sql_.empty() ? " WHERE " : " AND ";
    sql_ += clause;
    params_.insert(params_.end(), values.begin(), values.end());
  }
  void AddPaging(const HistoryFilter& f) {
    if (f.before_id) Add("id < ?", {*f.before_id});
  }
  std::string Finish(const HistoryFilter& f) {
    int64_t limit = f.limit <= 0 ? 100 : f.limit;
    return sql_ + " ORDER BY id DESC LIMIT " + std::to_string(limit);
  }
  std::span<const Value> params() const { return params_; }
  const std::string& sql() const { return sql_; }

 private:
  std::string sql_;
  std::vector<Value> params_;
};

// True for the errors after which rerunning the whole transaction is the right move.
bool Retriable(const Status& s) { return s.code() == StatusCode::kAborted; }

class SqlStore final : public Store {
 public:
  SqlStore(std::unique_ptr<Driver> driver, const StoreOptions& options)
      : driver_(std::move(driver)),
        dialect_(driver_->dialect()),
        secrets_(options.secrets),
        clock_(*options.clock),
        pool_(*driver_, options.max_connections) {}

  Status Open(bool read_only) {
    KG_ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, driver_->Connect());
    KG_ASSIGN_OR_RETURN(schema_version_, ApplyMigrations(*driver_, *conn, clock_, read_only));
    KG_RETURN_IF_ERROR(CheckMasterKey(*conn, read_only));
    pool_.Adopt(std::move(conn));
    return OkStatus();
  }

  std::string Describe() const override { return driver_->Describe(); }
  StatusOr<int64_t> SchemaVersion() override { return schema_version_; }

  // ---------------------------------------------------------------- pools

  StatusOr<Pool> CreatePool(std::string_view name, std::string_view provider,
                            std::string_view settings_json) override {
    if (Trim(name).empty()) return InvalidArgumentError("pool name must not be empty");
    if (Trim(provider).empty()) return InvalidArgumentError("pool provider must not be empty");
    std::string settings(settings_json.empty() ? "{}" : settings_json);
    return WriteTxn([&](Connection& c) -> StatusOr<Pool> {
      int64_t now = clock_.NowMs();
      auto r = Exec(c,
                    "INSERT INTO pools (name, provider, settings, version, created_at, updated_at)"
                    " VALUES (?, ?, ?, 0, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING id",
                    {std::string(name), std::string(provider), settings, now, now});
      if (!r.ok()) return r.status();
      if (r->rows.empty()) {
        return AlreadyExistsError("pool '" + std::string(name) + "' already exists");
      }
      Pool p;
      p.id = r->rows[0].Int(0);
      p.name = name;
      p.provider = provider;
      p.settings_json = settings;
      p.created_at_ms = now;
      return p;
    });
  }

  StatusOr<Pool> GetPool(std::string_view name) override {
    KG_ASSIGN_OR_RETURN(Result r, Read(std::string("SELECT ") + kPoolColumns +
                                           " FROM pools WHERE name = ?",
                                       {std::string(name)}));
    if (r.rows.empty()) return NotFoundError("pool '" + std::string(name) + "' does not exist");
    return PoolFromRow(r.rows[0]);
  }

  StatusOr<std::vector<Pool>> ListPools() override {
    KG_ASSIGN_OR_RETURN(Result r,
                        Read(std::string("SELECT ") + kPoolColumns + " FROM pools ORDER BY name", {}));
    std::vector<Pool> out;
    for (const Row& row : r.rows) out.push_back(PoolFromRow(row));
    return out;
  }

  StatusOr<std::vector<PoolVersion>> ListPoolVersions() override {
    KG_ASSIGN_OR_RETURN(Result r, Read("SELECT id, version FROM pools ORDER BY id", {}));
    std::vector<PoolVersion> out;
    for (const Row& row : r.rows) out.push_back({row.Int(0), row.Int(1)});
    return out;
  }

  // ---------------------------------------------------------------- keys

  StatusOr<ImportResult> ImportKeys(int64_t pool_id, const std::vector<NewKey>& keys) override {
    // Validate and seal outside the transaction: the write lock is held only for the writes.
    struct Prepared {
      std::string fingerprint, sealed, masked;
    };
    std::vector<Prepared> prepared;
    prepared.reserve(keys.size());
    for (size_t i = 0; i < keys.size(); ++i) {
      const std::string& secret = keys[i].secret;
      if (Trim(secret).empty() || Trim(secret).size() != secret.size()) {
        return InvalidArgumentError("key #" + std::to_string(i + 1) +
                                    " is empty or has surrounding whitespace");
      }
      for (unsigned char ch : secret) {
        if (ch < 0x20 || ch == 0x7F) {
          return InvalidArgumentError("key #" + std::to_string(i + 1) +
                                      " contains a control character");
        }
      }
      prepared.push_back({secrets_->Fingerprint(secret),
                          secrets_->Seal(secret, kUpstreamKeyContext), MaskSecret(secret)});
    }
    return WriteTxn([&](Connection& c) -> StatusOr<ImportResult> {
      KG_RETURN_IF_ERROR(RequirePool(c, pool_id));
      std::set<int64_t> proxies_checked;
      ImportResult out;
      std::unordered_map<std::string, int64_t> seen;  // fingerprint -> id, within this batch
      int64_t now = clock_.NowMs();
      for (size_t i = 0; i < keys.size(); ++i) {
        const NewKey& k = keys[i];
        const Prepared& p = prepared[i];
        if (k.proxy_id && proxies_checked.insert(*k.proxy_id).second) {
          KG_RETURN_IF_ERROR(RequireProxy(c, *k.proxy_id));
        }
        if (auto it = seen.find(p.fingerprint); it != seen.end()) {
          out.key_ids.push_back(it->second);
          out.duplicate.push_back(true);
          ++out.duplicates;
          continue;
        }
        bool active = k.state == KeyState::kActive || k.state == KeyState::kCooling;
        KG_ASSIGN_OR_RETURN(
            Result r,
            Exec(c,
                 "INSERT INTO upstream_keys (pool_id, secret_sealed, fingerprint, masked, state,"
                 " priority, budget_micros, label, created_at, updated_at, activated_at,"
                 " retired_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                 " ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
                 {pool_id, p.sealed, p.fingerprint, p.masked, std::string(KeyStateName(k.state)),
                  k.priority, OptInt(k.budget_micros), k.label, now, now,
                  active ? Value(now) : Null(),
                  k.state == KeyState::kRetired ? Value(now) : Null()}));
        int64_t id;
        if (r.rows.empty()) {
          KG_ASSIGN_OR_RETURN(Result existing,
                              Exec(c, "SELECT id FROM upstream_keys WHERE fingerprint = ?",
                                   {p.fingerprint}));
          if (existing.rows.empty()) return InternalError("duplicate key vanished during import");
          id = existing.rows[0].Int(0);
          out.duplicate.push_back(true);
          ++out.duplicates;
        } else {
          id = r.rows[0].Int(0);
          out.duplicate.push_back(false);
          ++out.inserted;
          if (k.proxy_id) {
            KG_ASSIGN_OR_RETURN(
                Result b, Exec(c,
                               "INSERT INTO key_proxy_bindings (key_id, proxy_id, priority,"
                               " created_at) VALUES (?, ?, 0, ?)",
                               {id, *k.proxy_id, now}));
          }
        }
        seen.emplace(p.fingerprint, id);
        out.key_ids.push_back(id);
      }
      if (out.inserted > 0) KG_RETURN_IF_ERROR(BumpPoolVersion(c, pool_id));
      return out;
    });
  }

  StatusOr<std::vector<UpstreamKey>> ListKeys(const KeyFilter& filter) override {
    std::string sql = std::string("SELECT ") + kKeyColumns + " FROM upstream_keys";
    std::vector<Value> params;
    const char* glue = " WHERE ";
    if (filter.pool_id) {
      sql += glue + std::string("pool_id = ?");
      params.push_back(*filter.pool_id);
      glue = " AND ";
    }
    if (filter.state) {
      sql += glue + std::string("state = ?");
      params.push_back(std::string(KeyStateName(*filter.state)));
    }
    sql += " ORDER BY pool_id, id";
    KG_ASSIGN_OR_RETURN(Result r, ReadSpan(sql, params));
    std::vector<UpstreamKey> out;
    out.reserve(r.rows.size());
    for (const Row& row : r.rows) {
      KG_ASSIGN_OR_RETURN(UpstreamKey k, KeyFromRow(row, filter.with_secrets));
      out.push_back(std::move(k));
    }
    return out;
  }

  StatusOr<UpstreamKey> GetKey(int64_t key_id, bool with_secret) override {
    KG_ASSIGN_OR_RETURN(Result r, Read(std::string("SELECT ") + kKeyColumns +
                                           " FROM upstream_keys WHERE id = ?",
                                       {key_id}));
    if (r.rows.empty()) return NotFoundError("key " + std::to_string(key_id) + " does not exist");
    return KeyFromRow(r.rows[0], with_secret);
  }

  StatusOr<StateCounts> CountKeys(int64_t pool_id) override {
    KG_ASSIGN_OR_RETURN(
        Result r,
        Read("SELECT state, COUNT(*) FROM upstream_keys WHERE pool_id = ? GROUP BY state",
             {pool_id}));
    StateCounts counts;
    for (const Row& row : r.rows) {
      if (auto s = ParseKeyState(row.Str(0))) counts[*s] = row.Int(1);
    }
    return counts;
  }

  StatusOr<bool> DeleteKey(int64_t key_id) override {
    return WriteTxn([&](Connection& c) -> StatusOr<bool> {
      KG_ASSIGN_OR_RETURN(Result k,
                          Exec(c, "SELECT pool_id FROM upstream_keys WHERE id = ?", {key_id}));
      if (k.rows.empty()) return false;
      KG_ASSIGN_OR_RETURN(Result b,
                          Exec(c, "DELETE FROM key_proxy_bindings WHERE key_id = ?", {key_id}));
      KG_ASSIGN_OR_RETURN(Result d, Exec(c, "DELETE FROM upstream_keys WHERE id = ?", {key_id}));
      if (d.rows_affected != 1) return InternalError("key delete changed no row");
      KG_RETURN_IF_ERROR(BumpPoolVersion(c, k.rows[0].Int(0)));
      return true;
    });
  }

  // ---------------------------------------------------------------- key state

  StatusOr<RotateOutcome> Rotate(int64_t pool_id, int64_t failed_key_id, std::string_view reason,
                                 std::string_view actor) override {
    return WriteTxn([&](Connection& c) -> StatusOr<RotateOutcome> {
      int64_t now = clock_.NowMs();
      // The claim. Under PostgreSQL READ COMMITTED a concurrent claimer blocks on the row lock and
      // then re-evaluates the WHERE clause against the committed row, so exactly one transaction
      // sees rows_affected == 1; SQLite serializes writers with BEGIN IMMEDIATE.
      KG_ASSIGN_OR_RETURN(
          Result claim,
          Exec(c,
               "UPDATE upstream_keys SET state = 'retired', retired_at = ?, updated_at = ?,"
               " last_error = ? WHERE id = ? AND pool_id = ? AND state IN ('active', 'cooling')",
               {now, now, std::string(reason), failed_key_id, pool_id}));
      if (claim.rows_affected == 0) {
        KG_ASSIGN_OR_RETURN(
            Result k, Exec(c, "SELECT pool_id FROM upstream_keys WHERE id = ?", {failed_key_id}));
        if (k.rows.empty()) {
          return NotFoundError("key " + std::to_string(failed_key_id) + " does not exist");
        }
        if (k.rows[0].Int(0) != pool_id) {
          return InvalidArgumentError("key " + std::to_string(failed_key_id) +
                                      " does not belong to pool " + std::to_string(pool_id));
        }
        return RotateOutcome(AlreadyRotated{});
      }
      if (claim.rows_affected != 1) return InternalError("rotation claim changed several rows");

      // Claim one backup. The subquery picks the preferred backup; PostgreSQL skips rows another
      // rotation has locked so concurrent rotations of different keys take different backups.
      auto pick = [&](std::string_view lock) {
        return Exec(c,
                    "UPDATE upstream_keys SET state = 'active', activated_at = ?, updated_at = ?,"
                    " cooldown_until = 0, replaces = ?, " + std::string(kResetLedgerBase) +
                        " WHERE state = 'backup' AND id = (SELECT id FROM upstream_keys WHERE"
                        " pool_id = ? AND state = 'backup' ORDER BY priority DESC, id LIMIT 1" +
                        std::string(lock) + ") RETURNING id",
                    {now, now, failed_key_id, pool_id});
      };
      const bool pg = dialect_ == Dialect::kPostgres;
      KG_ASSIGN_OR_RETURN(Result backup, pick(pg ? " FOR UPDATE SKIP LOCKED" : ""));
      if (backup.rows.empty() && pg) {
        // SKIP LOCKED found nothing, but the backups it skipped may still be there once their
        // lockers end (a rotation that rolls back, a spend update, a new binding): NoBackup must
        // mean none is left. Wait for them; READ COMMITTED re-checks each row after the wait, so
        // a backup another rotation took is passed over. Only reached when the pool is out of
        // free backups; no lock cycle, since rotations lock the pool row after this step.
        KG_ASSIGN_OR_RETURN(backup, pick(" FOR UPDATE"));
      }

      if (backup.rows.empty()) {
        KG_ASSIGN_OR_RETURN(Result ex, Exec(c,
                                            "UPDATE upstream_keys SET state = 'exhausted'"
                                            " WHERE id = ? AND state = 'retired'",
                                            {failed_key_id}));
        if (ex.rows_affected != 1) return InternalError("could not mark the failed key exhausted");
        KG_ASSIGN_OR_RETURN(int64_t rid, InsertRotation(c, pool_id, failed_key_id, std::nullopt,
                                                        reason, "no_backup", actor, now));
        KG_RETURN_IF_ERROR(BumpPoolVersion(c, pool_id));
        return RotateOutcome(NoBackup{rid});
      }
      int64_t new_id = backup.rows[0].Int(0);
      KG_ASSIGN_OR_RETURN(
          Result link,
          Exec(c, "UPDATE upstream_keys SET replaced_by = ? WHERE id = ?", {new_id, failed_key_id}));
      if (link.rows_affected != 1) return InternalError("could not link the failed key");
      KG_RETURN_IF_ERROR(MoveBindings(c, failed_key_id, new_id));
      KG_ASSIGN_OR_RETURN(int64_t rid, InsertRotation(c, pool_id, failed_key_id, new_id, reason,
                                                      "rotated", actor, now));
      KG_RETURN_IF_ERROR(BumpPoolVersion(c, pool_id));
      return RotateOutcome(Rotated{new_id, rid});
    });
  }

  StatusOr<bool> CoolDown(int64_t key_id, int64_t until_ms, std::string_view reason) override {
    return WriteTxn([&](Connection& c) -> StatusOr<bool> {
      int64_t now = clock_.NowMs();
      KG_ASSIGN_OR_RETURN(
          Result r,
          Exec(c,
               "UPDATE upstream_keys SET cooldown_until = CASE WHEN state = 'cooling' AND"
               " cooldown_until > ? THEN cooldown_until ELSE ? END, state = 'cooling',"
               " last_error = ?, updated_at = ? WHERE id = ? AND state IN ('active', 'cooling')"
               " RETURNING pool_id",
               {until_ms, until_ms, std::string(reason), now, key_id}));
      if (r.rows.empty()) return false;
      KG_RETURN_IF_ERROR(BumpPoolVersion(c, r.rows[0].Int(0)));
      return true;
    });
  }

  StatusOr<int64_t> ReactivateCooled() override {
    return WriteTxn([&](Connection& c) -> StatusOr<int64_t> {
      int64_t now = clock_.NowMs();
      KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                         "UPDATE upstream_keys SET state = 'active',"
                                         " cooldown_until = 0, updated_at = ? WHERE state ="
                                         " 'cooling' AND cooldown_until <= ? RETURNING pool_id",
                                         {now, now}));
      std::set<int64_t> pools;
      for (const Row& row : r.rows) pools.insert(row.Int(0));
      for (int64_t pool : pools) KG_RETURN_IF_ERROR(BumpPoolVersion(c, pool));
      return static_cast<int64_t>(r.rows.size());
    });
  }

  StatusOr<bool> MarkExhausted(int64_t key_id, std::string_view reason) override {
    return WriteTxn([&](Connection& c) -> StatusOr<bool> {
      int64_t now = clock_.NowMs();
      KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                         "UPDATE upstream_keys SET state = 'exhausted',"
                                         " last_error = ?, updated_at = ? WHERE id = ? AND state"
                                         " IN ('active', 'cooling') RETURNING pool_id",
                                         {std::string(reason), now, key_id}));
      if (r.rows.empty()) return ExistsOrNotFound(c, key_id);
      KG_RETURN_IF_ERROR(BumpPoolVersion(c, r.rows[0].Int(0)));
      return true;
    });
  }

  StatusOr<bool> Restore(int64_t key_id, KeyState target) override {
    if (target != KeyState::kActive && target != KeyState::kBackup) {
      return InvalidArgumentError("a key can be restored to active or backup only");
    }
    return WriteTxn([&](Connection& c) -> StatusOr<bool> {
      int64_t now = clock_.NowMs();
      KG_ASSIGN_OR_RETURN(
          Result r,
          Exec(c,
               "UPDATE upstream_keys SET state = ?, cooldown_until = 0, updated_at = ?,"
               " activated_at = ?, last_error = '', " + std::string(kResetLedgerBase) +
                   " WHERE id = ? AND state IN ('exhausted', 'retired', 'cooling')"
                   " RETURNING pool_id",
               {std::string(KeyStateName(target)), now,
                target == KeyState::kActive ? Value(now) : Null(), key_id}));
      if (r.rows.empty()) return ExistsOrNotFound(c, key_id);
      KG_RETURN_IF_ERROR(BumpPoolVersion(c, r.rows[0].Int(0)));
      return true;
    });
  }

  Status UpdateSpend(int64_t key_id, int64_t spend_micros,
                     std::optional<int64_t> budget_micros) override {
    auto r = WriteTxn([&](Connection& c) -> StatusOr<bool> {
      int64_t now = clock_.NowMs();
      KG_ASSIGN_OR_RETURN(
          Result u, Exec(c,
                         "UPDATE upstream_keys SET spend_micros = ?, budget_micros = COALESCE(?,"
                         " budget_micros), spend_checked_at = ?, updated_at = ? WHERE id = ?",
                         {spend_micros, OptInt(budget_micros), now, now, key_id}));
      if (u.rows_affected == 0) {
        return NotFoundError("key " + std::to_string(key_id) + " does not exist");
      }
      return true;
    });
    return r.status();
  }

  StatusOr<std::vector<RotationRecord>> ListRotations(const HistoryFilter& filter) override {
    Where where;
    if (filter.pool_id) where.Add("pool_id = ?", {*filter.pool_id});
    if (filter.key_id) {
      where.Add("(failed_key_id = ? OR new_key_id = ?)", {*filter.key_id, *filter.key_id});
    }
    where.AddPaging(filter);
    KG_ASSIGN_OR_RETURN(Result r, ReadSpan(std::string("SELECT ") + kRotationColumns +
                                               " FROM rotations" + where.Finish(filter),
                                           where.params()));
    std::vector<RotationRecord> out;
    for (const Row& row : r.rows) out.push_back(RotationFromRow(row));
    return out;
  }

  // ---------------------------------------------------------------- proxies and bindings

  StatusOr<Proxy> AddProxy(const ProxyUrl& url, bool* created) override {
    std::string display = url.DisplayUrl();
    Value sealed = url.password.empty()
                       ? Null()
                       : Value(secrets_->Seal(url.password, kProxyPasswordContext));
    KG_ASSIGN_OR_RETURN(int64_t id, WriteTxn([&](Connection& c) -> StatusOr<int64_t> {
      int64_t now = clock_.NowMs();
      KG_ASSIGN_OR_RETURN(
          Result r,
          Exec(c,
               "INSERT INTO egress_proxies (scheme, host, port, username, password_sealed,"
               " display_url, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
               " ON CONFLICT (display_url) DO NOTHING RETURNING id",
               {url.scheme, url.host, static_cast<int64_t>(url.port), url.username, sealed,
                display, now, now}));
      if (!r.rows.empty()) {
        if (created) *created = true;
        return r.rows[0].Int(0);
      }
      if (created) *created = false;
      KG_ASSIGN_OR_RETURN(Result u, Exec(c,
                                         "UPDATE egress_proxies SET password_sealed = ?,"
                                         " updated_at = ? WHERE display_url = ? RETURNING id",
                                         {sealed, now, display}));
      if (u.rows.empty()) return InternalError("existing proxy vanished");
      return u.rows[0].Int(0);
    }));
    return GetProxy(id, false);
  }

  StatusOr<std::vector<Proxy>> ListProxies(bool with_secrets) override {
    KG_ASSIGN_OR_RETURN(Result r, Read(std::string("SELECT ") + kProxyColumns +
                                           " FROM egress_proxies ORDER BY id",
                                       {}));
    std::vector<Proxy> out;
    for (const Row& row : r.rows) {
      KG_ASSIGN_OR_RETURN(Proxy p, ProxyFromRow(row, with_secrets));
      out.push_back(std::move(p));
    }
    return out;
  }

  StatusOr<Proxy> GetProxy(int64_t proxy_id, bool with_secret) override {
    KG_ASSIGN_OR_RETURN(Result r, Read(std::string("SELECT ") + kProxyColumns +
                                           " FROM egress_proxies WHERE id = ?",
                                       {proxy_id}));
    if (r.rows.empty()) {
      return NotFoundError("proxy " + std::to_string(proxy_id) + " does not exist");
    }
    return ProxyFromRow(r.rows[0], with_secret);
  }

  Status SetProxyHealth(int64_t proxy_id, bool healthy, std::string_view error,
                        int64_t observed_at_ms) override {
    return WriteTxn([&](Connection& c) -> StatusOr<bool> {
             int64_t now = clock_.NowMs();
             int64_t at = observed_at_ms != 0 ? observed_at_ms : now;
             KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                                "UPDATE egress_proxies SET healthy = ?,"
                                                " last_error = ?, checked_at = ?, updated_at = ?"
                                                " WHERE id = ? AND checked_at <= ?",
                                                {int64_t{healthy ? 1 : 0}, std::string(error), at,
                                                 now, proxy_id, at}));
             if (r.rows_affected == 0) {
               // Either unknown, or a newer observation is already stored (nothing to do).
               KG_ASSIGN_OR_RETURN(Result e, Exec(c, "SELECT id FROM egress_proxies WHERE id = ?",
                                                  {proxy_id}));
               if (e.rows.empty()) {
                 return NotFoundError("proxy " + std::to_string(proxy_id) + " does not exist");
               }
             }
             return true;
           })
        .status();
  }

  StatusOr<bool> DeleteProxy(int64_t proxy_id) override {
    return WriteTxn([&](Connection& c) -> StatusOr<bool> {
      KG_ASSIGN_OR_RETURN(Result pools, Exec(c,
                                             "SELECT DISTINCT k.pool_id FROM key_proxy_bindings b"
                                             " JOIN upstream_keys k ON k.id = b.key_id"
                                             " WHERE b.proxy_id = ?",
                                             {proxy_id}));
      KG_ASSIGN_OR_RETURN(Result b, Exec(c, "DELETE FROM key_proxy_bindings WHERE proxy_id = ?",
                                         {proxy_id}));
      KG_ASSIGN_OR_RETURN(Result d,
                          Exec(c, "DELETE FROM egress_proxies WHERE id = ?", {proxy_id}));
      for (const Row& row : pools.rows) KG_RETURN_IF_ERROR(BumpPoolVersion(c, row.Int(0)));
      return d.rows_affected == 1;
    });
  }

  StatusOr<bool> Bind(int64_t key_id, int64_t proxy_id, int64_t priority) override {
    return WriteTxn([&](Connection& c) -> StatusOr<bool> {
      KG_ASSIGN_OR_RETURN(int64_t pool_id, KeyPool(c, key_id));
      KG_RETURN_IF_ERROR(RequireProxy(c, proxy_id));
      int64_t now = clock_.NowMs();
      KG_ASSIGN_OR_RETURN(Result ins, Exec(c,
                                           "INSERT INTO key_proxy_bindings (key_id, proxy_id,"
                                           " priority, created_at) VALUES (?, ?, ?, ?)"
                                           " ON CONFLICT (key_id, proxy_id) DO NOTHING",
                                           {key_id, proxy_id, priority, now}));
      bool created = ins.rows_affected == 1;
      if (!created) {
        KG_ASSIGN_OR_RETURN(Result u, Exec(c,
                                           "UPDATE key_proxy_bindings SET priority = ?"
                                           " WHERE key_id = ? AND proxy_id = ?",
                                           {priority, key_id, proxy_id}));
        if (u.rows_affected != 1) return InternalError("binding vanished");
      }
      KG_RETURN_IF_ERROR(BumpPoolVersion(c, pool_id));
      return created;
    });
  }

  StatusOr<bool> Unbind(int64_t key_id, int64_t proxy_id) override {
    return WriteTxn([&](Connection& c) -> StatusOr<bool> {
      KG_ASSIGN_OR_RETURN(int64_t pool_id, KeyPool(c, key_id));
      KG_ASSIGN_OR_RETURN(Result d, Exec(c,
                                         "DELETE FROM key_proxy_bindings WHERE key_id = ? AND"
                                         " proxy_id = ?",
                                         {key_id, proxy_id}));
      if (d.rows_affected == 0) return false;
      KG_RETURN_IF_ERROR(BumpPoolVersion(c, pool_id));
      return true;
    });
  }

  StatusOr<std::vector<Binding>> ListBindings(std::optional<int64_t> pool_id) override {
    std::string sql =
        "SELECT b.id, b.key_id, b.proxy_id, b.priority FROM key_proxy_bindings b"
        " JOIN upstream_keys k ON k.id = b.key_id";
    std::vector<Value> params;
    if (pool_id) {
      sql += " WHERE k.pool_id = ?";
      params.push_back(*pool_id);
    }
    sql += " ORDER BY b.key_id, b.priority DESC, b.id";
    KG_ASSIGN_OR_RETURN(Result r, ReadSpan(sql, params));
    std::vector<Binding> out;
    for (const Row& row : r.rows) out.push_back({row.Int(0), row.Int(1), row.Int(2), row.Int(3)});
    return out;
  }

  // ---------------------------------------------------------------- records

  StatusOr<int64_t> AddSpendRecord(const SpendRecord& s) override {
    return WriteTxn([&](Connection& c) -> StatusOr<int64_t> {
      KG_ASSIGN_OR_RETURN(
          Result r,
          Exec(c,
               "INSERT INTO spend_records (key_id, pool_id, spend_micros, budget_micros, action,"
               " reason, new_key_id, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
               " RETURNING id",
               {s.key_id, s.pool_id, s.spend_micros, OptInt(s.budget_micros), s.action, s.reason,
                OptInt(s.new_key_id), s.error,
                s.created_at_ms != 0 ? s.created_at_ms : clock_.NowMs()}));
      if (r.rows.empty()) return InternalError("spend record insert returned no id");
      return r.rows[0].Int(0);
    });
  }

  StatusOr<std::vector<SpendRecord>> ListSpendRecords(const HistoryFilter& filter) override {
    Where where;
    if (filter.pool_id) where.Add("pool_id = ?", {*filter.pool_id});
    if (filter.key_id) where.Add("key_id = ?", {*filter.key_id});
    where.AddPaging(filter);
    KG_ASSIGN_OR_RETURN(Result r, ReadSpan(std::string("SELECT ") + kSpendColumns +
                                               " FROM spend_records" + where.Finish(filter),
                                           where.params()));
    std::vector<SpendRecord> out;
    for (const Row& row : r.rows) out.push_back(SpendFromRow(row));
    return out;
  }

  StatusOr<int64_t> InsertUsage(const std::vector<UsageRecord>& records) override {
    if (records.empty()) return int64_t{0};
    for (const UsageRecord& u : records) {
      if (u.request_id.empty()) return InvalidArgumentError("usage record without request_id");
    }
    // First without RETURNING: a statement's count of inserted rows says which records were new
    // when it is all of them or none. Only a statement that stored some of its records and
    // skipped others (part of a batch was written before: a flush retried after an unknown
    // outcome) leaves it open; then the transaction rolls back and the batch is written again
    // with RETURNING.
    bool ambiguous = false;
    auto fast = WriteTxn(
        [&](Connection& c) { return WriteUsage(c, records, /*returning=*/false, &ambiguous); });
    if (fast.ok() || !ambiguous) return fast;
    return WriteTxn(
        [&](Connection& c) { return WriteUsage(c, records, /*returning=*/true, nullptr); });
  }

  StatusOr<std::vector<UsageRecord>> ListUsage(const HistoryFilter& filter) override {
    Where where;
    if (filter.pool_id) where.Add("pool_id = ?", {*filter.pool_id});
    // No index by upstream key since migration 6 (it cost every insert a random page): with
    // key_id this walks the records newest first until the page is full. Admin pages only.
    if (filter.key_id) where.Add("upstream_key_id = ?", {*filter.key_id});
    where.AddPaging(filter);
    KG_ASSIGN_OR_RETURN(Result r, ReadSpan(std::string("SELECT ") + kUsageColumns +
                                               " FROM usage_records" + where.Finish(filter),
                                           where.params()));
    std::vector<UsageRecord> out;
    for (const Row& row : r.rows) out.push_back(UsageFromRow(row));
    return out;
  }

  StatusOr<std::vector<UsageSummary>> SummarizeUsage(const UsageQuery& q) override {
    Where where;
    if (q.client_key_id) where.Add("client_key_id = ?", {*q.client_key_id});
    if (q.model) where.Add("model = ?", {*q.model});
    if (q.since_ms) where.Add("created_at >= ?", {*q.since_ms});
    if (q.until_ms) where.Add("created_at < ?", {*q.until_ms});
    KG_ASSIGN_OR_RETURN(
        Result r,
        ReadSpan("SELECT created_at / 86400000 AS day, client_key_id, model, COUNT(*),"
                 " SUM(input_tokens), SUM(output_tokens), SUM(cache_read_tokens),"
                 " SUM(cache_write_tokens), SUM(cost_micros) FROM usage_records" +
                     where.sql() +
                     " GROUP BY created_at / 86400000, client_key_id, model"
                     " ORDER BY day, client_key_id IS NULL, client_key_id, model",
                 where.params()));
    std::vector<UsageSummary> out;
    for (const Row& row : r.rows) {
      out.push_back({.client_key_id = row.OptInt(1),
                     .model = row.Str(2),
                     .day = row.Int(0),
                     .requests = row.Int(3),
                     .input_tokens = row.Int(4),
                     .output_tokens = row.Int(5),
                     .cache_read_tokens = row.Int(6),
                     .cache_write_tokens = row.Int(7),
                     .cost_micros = row.Int(8)});
    }
    return out;
  }

  StatusOr<std::vector<TrafficBucket>> TrafficSeries(const TrafficQuery& q) override {
    if (q.to_ms <= q.from_ms) return InvalidArgumentError("the end must be after the start");
    if (q.bucket_ms < kMinTrafficBucketMs || q.bucket_ms > kMaxTrafficBucketMs) {
      return InvalidArgumentError("the bucket must be from 10 s to 1 day, not " +
                                  std::to_string(q.bucket_ms) + " ms");
    }
    const int64_t span = q.to_ms - q.from_ms;
    const int64_t buckets = span / q.bucket_ms + (span % q.bucket_ms != 0 ? 1 : 0);
    if (buckets > kMaxTrafficBuckets) {
      return InvalidArgumentError("the range holds " + std::to_string(buckets) +
                                  " buckets, more than " + std::to_string(kMaxTrafficBuckets) +
                                  ": use a larger bucket or a shorter range");
    }
    Where where;
    where.Add("created_at >= ?", {q.from_ms});
    where.Add("created_at < ?", {q.to_ms});
    if (q.pool_id) where.Add("pool_id = ?", {*q.pool_id});
    if (q.client_key_id) where.Add("client_key_id = ?", {*q.client_key_id});
    if (q.upstream_key_id) where.Add("upstream_key_id = ?", {*q.upstream_key_id});
    if (q.model) where.Add("model = ?", {*q.model});
    // The bucket index, with the (validated) integers inlined: the same expression must appear
    // in SELECT and GROUP BY, and PostgreSQL would see two parameters as two expressions.
    const std::string index =
        "(created_at - " + std::to_string(q.from_ms) + ") / " + std::to_string(q.bucket_ms);
    std::string sql = "SELECT " + index +
                      ", COUNT(*),"
                      " SUM(CASE WHEN status >= 400 AND status < 500 THEN 1 ELSE 0 END),"
                      " SUM(CASE WHEN status >= 500 THEN 1 ELSE 0 END),"
                      " SUM(CASE WHEN status = 0 THEN 1 ELSE 0 END),"
                      " SUM(input_tokens), SUM(output_tokens), SUM(cost_micros),"
                      " SUM(latency_ms), MAX(latency_ms),"
                      " SUM(CASE WHEN ttfb_ms > 0 THEN 1 ELSE 0 END), SUM(ttfb_ms), MAX(ttfb_ms)";
    // The histograms: cumulative counts below each fixed bound (Prometheus' `le`, exclusive).
    for (const char* column : {"latency_ms", "ttfb_ms"}) {
      const std::string floor = std::string(column) == "ttfb_ms" ? "ttfb_ms > 0 AND " : "";
      for (int64_t bound : kTrafficBoundsMs) {
        sql += ", SUM(CASE WHEN " + floor + column + " < " + std::to_string(bound) +
               " THEN 1 ELSE 0 END)";
      }
    }
    sql += " FROM usage_records" + where.sql() + " GROUP BY " + index + " ORDER BY 1";
    KG_ASSIGN_OR_RETURN(Result r, ReadSpan(sql, where.params()));
    std::vector<TrafficBucket> out;
    out.reserve(r.rows.size());
    for (const Row& row : r.rows) {
      TrafficBucket b;
      b.start_ms = q.from_ms + row.Int(0) * q.bucket_ms;
      b.requests = row.Int(1);
      b.errors_4xx = row.Int(2);
      b.errors_5xx = row.Int(3);
      b.no_answer = row.Int(4);
      b.input_tokens = row.Int(5);
      b.output_tokens = row.Int(6);
      b.cost_micros = row.Int(7);
      b.latency = {.count = b.requests, .sum_ms = row.Int(8), .max_ms = row.Int(9)};
      b.ttfb = {.count = row.Int(10), .sum_ms = row.Int(11), .max_ms = row.Int(12)};
      constexpr size_t kFirst = 13;
      for (size_t i = 0; i < kTrafficBounds; ++i) {
        b.latency.below[i] = row.Int(kFirst + i);
        b.ttfb.below[i] = row.Int(kFirst + kTrafficBounds + i);
      }
      out.push_back(b);
    }
    return out;
  }

  StatusOr<int64_t> LedgerSpendMicros(int64_t key_id) override {
    KG_ASSIGN_OR_RETURN(Result r, Read("SELECT COALESCE((SELECT cost_micros FROM"
                                       " upstream_key_usage WHERE upstream_key_id = k.id), 0)"
                                       " - k.ledger_base_micros FROM upstream_keys k"
                                       " WHERE k.id = ?",
                                       {key_id}));
    if (r.rows.empty()) return NotFoundError("key " + std::to_string(key_id) + " does not exist");
    return r.rows[0].Int(0);
  }

  StatusOr<KeysUsed> KeysUsedAfter(int64_t after_record_id, int64_t since_ms) override {
    KG_ASSIGN_OR_RETURN(Result r,
                        Read("SELECT upstream_key_id, MAX(created_at), MAX(id) FROM usage_records"
                             " WHERE id > ? AND created_at >= ? GROUP BY upstream_key_id",
                             {after_record_id, since_ms}));
    KeysUsed used;
    used.max_record_id = after_record_id;
    for (const Row& row : r.rows) {
      used.max_record_id = std::max(used.max_record_id, row.Int(2));
      if (row.OptInt(0)) used.keys.push_back({.key_id = row.Int(0), .last_used_ms = row.Int(1)});
    }
    return used;
  }

  // ---------------------------------------------------------------- credits

  StatusOr<ReserveOutcome> ReserveCredits(const ReserveRequest& q) override {
    if (q.request_id.empty()) return InvalidArgumentError("a reservation needs a request_id");
    if (q.amount_micros < 0) return InvalidArgumentError("a reservation must not be negative");
    // A refusal rolls the whole transaction back (so it changes nothing): the outcome is kept
    // here and the transaction function fails with a marker status.
    std::optional<ReserveOutcome> refused;
    auto refuse = [&](ReserveOutcome o) -> Status {
      refused = o;
      return FailedPreconditionError("reservation refused");
    };
    auto result = WriteTxn([&](Connection& c) -> StatusOr<ReserveOutcome> {
      refused.reset();
      ReserveOutcome out;
      const int64_t now = clock_.NowMs();
      // The no-op update locks the key's row (PostgreSQL; SQLite's write lock already
      // serializes): every reservation of one key is serialized, across instances, so the
      // concurrency count and the per-minute counters below are exact.
      KG_ASSIGN_OR_RETURN(Result k, Exec(c,
                                         "UPDATE client_keys SET updated_at = updated_at"
                                         " WHERE id = ? RETURNING parent_id, rpm_limit,"
                                         " tpm_limit, concurrency_limit",
                                         {q.client_key_id}));
      if (k.rows.empty()) return refuse({.verdict = ReserveVerdict::kUnknownKey});
      const Row& key = k.rows[0];
      const int64_t payer = key.IsNull(0) ? q.client_key_id : key.Int(0);
      const std::optional<int64_t> rpm = key.OptInt(1), tpm = key.OptInt(2), conc = key.OptInt(3);
      if (conc) {
        KG_ASSIGN_OR_RETURN(Result n, Exec(c,
                                           "SELECT COUNT(*) FROM credit_reservations WHERE"
                                           " client_key_id = ?",
                                           {q.client_key_id}));
        if (!n.rows.empty() && n.rows[0].Int(0) >= *conc) {
          return refuse({.verdict = ReserveVerdict::kRateLimited,
                         .limit = "concurrency",
                         .retry_after_ms = 1000});
        }
      }
      if (rpm || tpm) {
        // Fixed one-minute windows: the request counts now; tokens are added at settlement.
        const int64_t minute = now / 60'000;
        const int64_t next_ms = (minute + 1) * 60'000 - now;
        KG_ASSIGN_OR_RETURN(Result w, Exec(c,
                                           "SELECT requests, tokens FROM rate_windows WHERE"
                                           " client_key_id = ? AND minute = ?",
                                           {q.client_key_id, minute}));
        const int64_t requests = w.rows.empty() ? 0 : w.rows[0].Int(0);
        const int64_t tokens = w.rows.empty() ? 0 : w.rows[0].Int(1);
        if (rpm && requests >= *rpm) {
          return refuse({.verdict = ReserveVerdict::kRateLimited,
                         .limit = "rpm",
                         .retry_after_ms = next_ms});
        }
        if (tpm && tokens >= *tpm) {
          return refuse({.verdict = ReserveVerdict::kRateLimited,
                         .limit = "tpm",
                         .retry_after_ms = next_ms});
        }
        KG_ASSIGN_OR_RETURN(Result up, Exec(c,
                                            "INSERT INTO rate_windows (client_key_id, minute,"
                                            " requests, tokens) VALUES (?, ?, 1, 0)"
                                            " ON CONFLICT (client_key_id, minute) DO UPDATE SET"
                                            " requests = rate_windows.requests + 1",
                                            {q.client_key_id, minute}));
      }
      KG_ASSIGN_OR_RETURN(std::optional<std::string> cap, FindCap(c, q.client_key_id, q.model));
      if (cap) {
        KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                           "UPDATE client_key_caps SET spent_micros ="
                                           " spent_micros + ? WHERE client_key_id = ? AND"
                                           " model = ? AND spent_micros + ? <= cap_micros",
                                           {q.amount_micros, q.client_key_id, *cap,
                                            q.amount_micros}));
        if (r.rows_affected != 1) return refuse({.verdict = ReserveVerdict::kCapReached});
      }
      KG_ASSIGN_OR_RETURN(Result d, Exec(c,
                                         "UPDATE client_keys SET credits_micros = credits_micros"
                                         " - ? WHERE id = ? AND credits_micros >= ?"
                                         " RETURNING credits_micros",
                                         {q.amount_micros, payer, q.amount_micros}));
      if (d.rows.empty()) {
        KG_ASSIGN_OR_RETURN(Result b, Exec(c, "SELECT credits_micros FROM client_keys WHERE id = ?",
                                           {payer}));
        if (!b.rows.empty() && !b.rows[0].IsNull(0)) {
          return refuse({.verdict = ReserveVerdict::kNoCredits,
                         .balance_micros = b.rows[0].Int(0)});
        }
        // Unlimited payer (or deleted parent): only the cap, the limits and the reservation.
      } else {
        out.balance_micros = d.rows[0].Int(0);
      }
      auto ins = Exec(c,
                      "INSERT INTO credit_reservations (request_id, client_key_id, payer_id,"
                      " cap_model, amount_micros, owner, expires_at, created_at)"
                      " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      {q.request_id, q.client_key_id, payer, cap ? Value(*cap) : Null(),
                       q.amount_micros, q.owner, q.expires_at_ms, now});
      if (!ins.ok()) return ins.status();
      return out;
    });
    if (!result.ok() && refused) return *refused;
    return result;
  }

  StatusOr<int64_t> ReleaseExpiredReservations() override {
    return WriteTxn([&](Connection& c) -> StatusOr<int64_t> {
      KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                         "DELETE FROM credit_reservations WHERE expires_at <= ?"
                                         " RETURNING client_key_id, payer_id, cap_model,"
                                         " amount_micros",
                                         {clock_.NowMs()}));
      for (const Row& row : r.rows) {
        std::optional<std::string> cap;
        if (!row.IsNull(2)) cap = row.Str(2);
        KG_RETURN_IF_ERROR(GiveBack(c, row.Int(0), row.Int(1), cap, row.Int(3)));
      }
      return static_cast<int64_t>(r.rows.size());
    });
  }

  StatusOr<int64_t> CountReservations() override {
    KG_ASSIGN_OR_RETURN(Result r, Read("SELECT COUNT(*) FROM credit_reservations", {}));
    return r.rows.empty() ? int64_t{0} : r.rows[0].Int(0);
  }

  // ---------------------------------------------------------------- leases

  StatusOr<bool> TryAcquireLease(std::string_view name, std::string_view holder,
                                 int64_t ttl_ms) override {
    if (name.empty() || holder.empty()) {
      return InvalidArgumentError("a lease needs a name and a holder");
    }
    if (ttl_ms <= 0) return InvalidArgumentError("a lease needs a positive ttl");
    return WriteTxn([&](Connection& c) -> StatusOr<bool> {
      int64_t now = clock_.NowMs();
      // One statement decides: insert when free; otherwise update only when the row is ours
      // (renew) or expired (take over). A row that is someone else's and running matches neither,
      // so nothing changes and rows_affected is 0. The unique name serializes concurrent callers
      // (PostgreSQL: the conflicting insert waits for the other transaction, then re-checks the
      // WHERE on the committed row; SQLite: BEGIN IMMEDIATE serializes writers).
      KG_ASSIGN_OR_RETURN(
          Result r, Exec(c,
                         "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)"
                         " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                         " expires_at = excluded.expires_at"
                         " WHERE leases.holder = excluded.holder OR leases.expires_at <= ?",
                         {std::string(name), std::string(holder), now + ttl_ms, now}));
      if (r.rows_affected > 1) return InternalError("lease upsert changed several rows");
      return r.rows_affected == 1;
    });
  }

  Status ReleaseLease(std::string_view name, std::string_view holder) override {
    return WriteTxn([&](Connection& c) -> StatusOr<bool> {
             KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                                "DELETE FROM leases WHERE name = ? AND holder = ?",
                                                {std::string(name), std::string(holder)}));
             return r.rows_affected == 1;
           })
        .status();
  }

  // ---------------------------------------------------------------- client keys

  StatusOr<ClientKey> CreateClientKey(const NewClientKey& key) override {
    if (Trim(key.name).empty()) return InvalidArgumentError("client key name must not be empty");
    KG_RETURN_IF_ERROR(ValidateModels(key.allowed_models));
    KG_RETURN_IF_ERROR(ValidateLimit("credits", key.credits_micros));
    KG_RETURN_IF_ERROR(ValidateLimit("rpm", key.rpm_limit));
    KG_RETURN_IF_ERROR(ValidateLimit("tpm", key.tpm_limit));
    KG_RETURN_IF_ERROR(ValidateLimit("concurrency", key.concurrency_limit));
    for (const ModelCap& cap : key.caps) {
      KG_RETURN_IF_ERROR(ValidateModels({cap.model}));
      if (cap.cap_micros < 0) return InvalidArgumentError("a cap must not be negative");
    }
    if (key.parent_id && key.credits_micros) {
      return InvalidArgumentError("a sub-key has no credits of its own: it spends its parent's");
    }
    KG_ASSIGN_OR_RETURN(int64_t id, WriteTxn([&](Connection& c) -> StatusOr<int64_t> {
      if (key.parent_id) {
        KG_ASSIGN_OR_RETURN(Result p, Exec(c, "SELECT parent_id FROM client_keys WHERE id = ?",
                                           {*key.parent_id}));
        if (p.rows.empty()) {
          return NotFoundError("client key " + std::to_string(*key.parent_id) +
                               " does not exist");
        }
        if (!p.rows[0].IsNull(0)) {
          return FailedPreconditionError("client key " + std::to_string(*key.parent_id) +
                                         " is a sub-key; sub-keys cannot have sub-keys");
        }
      }
      int64_t now = clock_.NowMs();
      KG_ASSIGN_OR_RETURN(
          Result r,
          Exec(c,
               "INSERT INTO client_keys (name, key_hash, hint, enabled, created_at, updated_at,"
               " parent_id, credits_micros, allowed_models, rpm_limit, tpm_limit,"
               " concurrency_limit, expires_at) VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
               " ON CONFLICT (key_hash) DO NOTHING RETURNING id",
               {key.name, key.key_hash, key.hint, now, now, OptInt(key.parent_id),
                OptInt(key.credits_micros), JoinModels(key.allowed_models),
                OptInt(key.rpm_limit), OptInt(key.tpm_limit), OptInt(key.concurrency_limit),
                OptInt(key.expires_at_ms)}));
      if (r.rows.empty()) return AlreadyExistsError("a client key with this hash already exists");
      int64_t new_id = r.rows[0].Int(0);
      for (const ModelCap& cap : key.caps) KG_RETURN_IF_ERROR(UpsertCap(c, new_id, cap));
      return new_id;
    }));
    return GetClientKey(id);
  }

  StatusOr<ClientKey> GetClientKey(int64_t id) override {
    KG_ASSIGN_OR_RETURN(Result r, Read(std::string("SELECT ") + kClientKeyColumns +
                                           " FROM client_keys WHERE id = ?",
                                       {id}));
    if (r.rows.empty()) {
      return NotFoundError("client key " + std::to_string(id) + " does not exist");
    }
    ClientKey k = ClientKeyFromRow(r.rows[0]);
    KG_ASSIGN_OR_RETURN(Result caps, Read("SELECT client_key_id, model, cap_micros, spent_micros"
                                          " FROM client_key_caps WHERE client_key_id = ?"
                                          " ORDER BY model",
                                          {id}));
    for (const Row& row : caps.rows) k.caps.push_back({row.Str(1), row.Int(2), row.Int(3)});
    return k;
  }

  StatusOr<std::vector<ClientKey>> ListClientKeys() override {
    KG_ASSIGN_OR_RETURN(Result r, Read(std::string("SELECT ") + kClientKeyColumns +
                                           " FROM client_keys ORDER BY id",
                                       {}));
    KG_ASSIGN_OR_RETURN(Result caps, Read("SELECT client_key_id, model, cap_micros, spent_micros"
                                          " FROM client_key_caps ORDER BY client_key_id, model",
                                          {}));
    std::unordered_map<int64_t, std::vector<ModelCap>> by_key;
    for (const Row& row : caps.rows) {
      by_key[row.Int(0)].push_back({row.Str(1), row.Int(2), row.Int(3)});
    }
    std::vector<ClientKey> out;
    for (const Row& row : r.rows) {
      out.push_back(ClientKeyFromRow(row));
      if (auto it = by_key.find(out.back().id); it != by_key.end()) {
        out.back().caps = std::move(it->second);
      }
    }
    return out;
  }

  StatusOr<ClientKey> UpdateClientKey(int64_t id, const ClientKeyUpdate& u) override {
    if (u.allowed_models) KG_RETURN_IF_ERROR(ValidateModels(*u.allowed_models));
    if (u.credits_micros) KG_RETURN_IF_ERROR(ValidateLimit("credits", *u.credits_micros));
    if (u.rpm_limit) KG_RETURN_IF_ERROR(ValidateLimit("rpm", *u.rpm_limit));
    if (u.tpm_limit) KG_RETURN_IF_ERROR(ValidateLimit("tpm", *u.tpm_limit));
    if (u.concurrency_limit) {
      KG_RETURN_IF_ERROR(ValidateLimit("concurrency", *u.concurrency_limit));
    }
    for (const ModelCap& cap : u.caps) KG_RETURN_IF_ERROR(ValidateModels({cap.model}));
    KG_RETURN_IF_ERROR(WriteTxn([&](Connection& c) -> StatusOr<bool> {
      KG_ASSIGN_OR_RETURN(Result k, Exec(c,
                                         "SELECT parent_id, credits_micros FROM client_keys"
                                         " WHERE id = ?",
                                         {id}));
      if (k.rows.empty()) {
        return NotFoundError("client key " + std::to_string(id) + " does not exist");
      }
      const bool sub_key = !k.rows[0].IsNull(0);
      if (sub_key && ((u.credits_micros && *u.credits_micros) || u.add_credits_micros)) {
        return FailedPreconditionError("client key " + std::to_string(id) +
                                       " is a sub-key: it spends its parent's credits");
      }
      const int64_t now = clock_.NowMs();
      auto set = [&](const char* column, const Value& v) -> Status {
        KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                           std::string("UPDATE client_keys SET ") + column +
                                               " = ?, updated_at = ? WHERE id = ?",
                                           {v, now, id}));
        return OkStatus();
      };
      if (u.enabled) KG_RETURN_IF_ERROR(set("enabled", int64_t{*u.enabled ? 1 : 0}));
      if (u.allowed_models) KG_RETURN_IF_ERROR(set("allowed_models", JoinModels(*u.allowed_models)));
      if (u.rpm_limit) KG_RETURN_IF_ERROR(set("rpm_limit", OptInt(*u.rpm_limit)));
      if (u.tpm_limit) KG_RETURN_IF_ERROR(set("tpm_limit", OptInt(*u.tpm_limit)));
      if (u.concurrency_limit) {
        KG_RETURN_IF_ERROR(set("concurrency_limit", OptInt(*u.concurrency_limit)));
      }
      if (u.expires_at_ms) KG_RETURN_IF_ERROR(set("expires_at", OptInt(*u.expires_at_ms)));
      if (u.credits_micros) KG_RETURN_IF_ERROR(set("credits_micros", OptInt(*u.credits_micros)));
      if (u.add_credits_micros) {
        // Relative, so it composes with requests settling at the same moment.
        KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                           "UPDATE client_keys SET credits_micros ="
                                           " credits_micros + ?, updated_at = ?"
                                           " WHERE id = ? AND credits_micros IS NOT NULL",
                                           {*u.add_credits_micros, now, id}));
        if (r.rows_affected != 1) {
          return FailedPreconditionError("client key " + std::to_string(id) +
                                         " has unlimited credits; set a balance first");
        }
      }
      for (const ModelCap& cap : u.caps) {
        if (cap.cap_micros < 0) {
          KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                             "DELETE FROM client_key_caps WHERE client_key_id = ?"
                                             " AND model = ?",
                                             {id, cap.model}));
        } else {
          KG_RETURN_IF_ERROR(UpsertCap(c, id, cap));
        }
      }
      return true;
    }).status());
    return GetClientKey(id);
  }

  StatusOr<bool> RollClientKey(int64_t id, std::string_view key_hash,
                               std::string_view hint) override {
    return WriteTxn([&](Connection& c) -> StatusOr<bool> {
      auto r = Exec(c, "UPDATE client_keys SET key_hash = ?, hint = ?, updated_at = ? WHERE id = ?",
                    {std::string(key_hash), std::string(hint), clock_.NowMs(), id});
      if (!r.ok() && r.status().code() == StatusCode::kAlreadyExists) {
        return AlreadyExistsError("a client key with this hash already exists");
      }
      if (!r.ok()) return r.status();
      return r->rows_affected == 1;
    });
  }

  StatusOr<bool> DeleteClientKey(int64_t id) override {
    return WriteTxn([&](Connection& c) -> StatusOr<bool> {
      KG_ASSIGN_OR_RETURN(Result subs, Exec(c, "SELECT COUNT(*) FROM client_keys WHERE parent_id = ?",
                                            {id}));
      if (!subs.rows.empty() && subs.rows[0].Int(0) > 0) {
        return FailedPreconditionError("client key " + std::to_string(id) + " has " +
                                       std::to_string(subs.rows[0].Int(0)) +
                                       " sub-key(s); delete them first");
      }
      KG_ASSIGN_OR_RETURN(Result caps,
                          Exec(c, "DELETE FROM client_key_caps WHERE client_key_id = ?", {id}));
      KG_ASSIGN_OR_RETURN(Result d, Exec(c, "DELETE FROM client_keys WHERE id = ?", {id}));
      return d.rows_affected == 1;
    });
  }

  // ---------------------------------------------------------------- admin keys and audit

  StatusOr<AdminKey> CreateAdminKey(std::string_view name, std::string_view key_hash,
                                    std::string_view hint) override {
    if (Trim(name).empty()) return InvalidArgumentError("admin key name must not be empty");
    return WriteTxn([&](Connection& c) -> StatusOr<AdminKey> {
      int64_t now = clock_.NowMs();
      KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                         "INSERT INTO admin_keys (name, key_hash, hint, created_at)"
                                         " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
                                         {std::string(name), std::string(key_hash),
                                          std::string(hint), now}));
      if (r.rows.empty()) {
        return AlreadyExistsError("an admin key named '" + std::string(name) + "' already exists");
      }
      AdminKey k;
      k.id = r.rows[0].Int(0);
      k.name = name;
      k.key_hash = key_hash;
      k.hint = hint;
      k.created_at_ms = now;
      return k;
    });
  }

  StatusOr<std::vector<AdminKey>> ListAdminKeys() override {
    KG_ASSIGN_OR_RETURN(Result r, Read(std::string("SELECT ") + kAdminKeyColumns +
                                           " FROM admin_keys ORDER BY id",
                                       {}));
    std::vector<AdminKey> out;
    for (const Row& row : r.rows) out.push_back(AdminKeyFromRow(row));
    return out;
  }

  StatusOr<bool> DeleteAdminKey(std::string_view name) override {
    return WriteTxn([&](Connection& c) -> StatusOr<bool> {
      KG_ASSIGN_OR_RETURN(Result r, Exec(c, "DELETE FROM admin_keys WHERE name = ?",
                                         {std::string(name)}));
      return r.rows_affected > 0;
    });
  }

  StatusOr<int64_t> AddAuditRecord(const AuditRecord& a) override {
    return WriteTxn([&](Connection& c) -> StatusOr<int64_t> {
      int64_t at = a.created_at_ms != 0 ? a.created_at_ms : clock_.NowMs();
      KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                         "INSERT INTO audit_log (admin, action, target, result,"
                                         " created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
                                         {a.admin, a.action, a.target, a.result, at}));
      if (r.rows.empty()) return InternalError("audit insert returned no id");
      return r.rows[0].Int(0);
    });
  }

  StatusOr<std::vector<AuditRecord>> ListAuditRecords(const HistoryFilter& filter) override {
    Where where;
    where.AddPaging(filter);
    KG_ASSIGN_OR_RETURN(Result r, ReadSpan(std::string("SELECT ") + kAuditColumns +
                                               " FROM audit_log" + where.Finish(filter),
                                           where.params()));
    std::vector<AuditRecord> out;
    for (const Row& row : r.rows) out.push_back(AuditFromRow(row));
    return out;
  }

 private:
  // InsertUsage's transaction: inserts the records (those already stored are skipped), adds the
  // new ones' costs to their keys' totals and settles the new ones that settle; returns how many
  // were new. Without `returning`, a multi-row statement that inserted some but not all of its
  // records fails the transaction and sets *ambiguous (which of them were new is unknown).
  StatusOr<int64_t> WriteUsage(Connection& c, const std::vector<UsageRecord>& records,
                               bool returning, bool* ambiguous) {
    int64_t inserted = 0;
    // What the inserted records add to each upstream key's total. Only new records count: a
    // record re-written after an unknown outcome (a retried flush) is skipped by the insert and
    // must not count twice. Ordered: see AddKeyTotals.
    std::map<int64_t, int64_t> costs;
    auto add_cost = [&](std::optional<int64_t> key, int64_t cost) {
      if (key && cost != 0) costs[*key] += cost;
    };
    // Runs of records that settle nothing go in multi-row statements (one statement per
    // kUsageRowsPerInsert records instead of one per record: under load the usage writer's
    // statements were a tenth of keygate's CPU). A record that settles goes alone: only its
    // own count tells whether it was new, and so whether to settle it. Order is kept.
    std::vector<Value> params;
    params.reserve(kUsageParams * std::min(records.size(), kUsageRowsPerInsert));
    size_t first = 0, run = 0;  // the records in `params`: records[first, first + run)
    // Inserts the records in `params`; returns how many were new.
    auto flush = [&]() -> StatusOr<int64_t> {
      if (run == 0) return int64_t{0};
      KG_ASSIGN_OR_RETURN(Result r, c.Exec(UsageInsertSql(dialect_, run, returning), params));
      if (returning) {
        if (r.rows.size() != static_cast<size_t>(r.rows_affected)) {
          return InternalError("usage insert returned " + std::to_string(r.rows.size()) +
                               " rows for " + std::to_string(r.rows_affected) + " inserted");
        }
        for (const Row& row : r.rows) {
          add_cost(row.IsNull(0) ? std::nullopt : std::optional<int64_t>(row.Int(0)), row.Int(1));
        }
      } else if (r.rows_affected == static_cast<int64_t>(run)) {
        for (size_t i = first; i < first + run; ++i) {
          add_cost(records[i].upstream_key_id, records[i].cost_micros);
        }
      } else if (r.rows_affected != 0) {
        *ambiguous = true;
        return FailedPreconditionError("usage batch partly stored before");
      }
      inserted += r.rows_affected;
      params.clear();
      first += run;
      run = 0;
      return r.rows_affected;
    };
    for (const UsageRecord& u : records) {
      if (u.settle) KG_RETURN_IF_ERROR(flush().status());
      AppendUsageParams(u, params);
      ++run;
      if (u.settle) {
        KG_ASSIGN_OR_RETURN(int64_t is_new, flush());
        if (is_new == 1) KG_RETURN_IF_ERROR(Settle(c, u));
      } else if (run == kUsageRowsPerInsert) {
        KG_RETURN_IF_ERROR(flush().status());
      }
    }
    KG_RETURN_IF_ERROR(flush().status());
    KG_RETURN_IF_ERROR(AddKeyTotals(c, costs));
    return inserted;
  }

  // Appends one usage record's 15 parameters, in UsageInsertSql's column order. One by one into
  // the reserved vector: an initializer list would build each value twice (its elements are
  // const, so they are copied, not moved: two copies of request_id per record).
  void AppendUsageParams(const UsageRecord& u, std::vector<Value>& params) {
    params.emplace_back(u.request_id);
    params.emplace_back(OptInt(u.client_key_id));
    params.emplace_back(OptInt(u.upstream_key_id));
    params.emplace_back(OptInt(u.pool_id));
    params.emplace_back(u.model);
    for (int64_t v : {u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens,
                      u.cost_micros, u.latency_ms, u.ttfb_ms, u.status, u.attempts}) {
      params.emplace_back(v);
    }
    params.emplace_back(u.created_at_ms != 0 ? u.created_at_ms : clock_.NowMs());
  }

  // Adds `costs` (upstream key id -> micro-USD) to the keys' running totals, in ascending key
  // order: on PostgreSQL each upsert locks its rows, and one fixed order across all writers
  // (every instance's usage writer) means two of them never wait for each other in a cycle.
  Status AddKeyTotals(Connection& c, const std::map<int64_t, int64_t>& costs) {
    std::vector<Value> params;
    size_t rows = 0;
    auto flush = [&]() -> Status {
      if (rows == 0) return OkStatus();
      KG_ASSIGN_OR_RETURN(Result r, c.Exec(KeyTotalsUpsertSql(rows), params));
      if (r.rows_affected != static_cast<int64_t>(rows)) {
        return InternalError("usage totals upsert changed " + std::to_string(r.rows_affected) +
                             " rows of " + std::to_string(rows));
      }
      params.clear();
      rows = 0;
      return OkStatus();
    };
    for (const auto& [key, cost] : costs) {
      if (cost == 0) continue;  // a sum of zero changes nothing
      params.insert(params.end(), {key, cost});
      if (++rows == kUsageRowsPerInsert) KG_RETURN_IF_ERROR(flush());
    }
    return flush();
  }

  // Runs `fn` inside a write transaction, committing when it returns OK and rolling back
  // otherwise. Reruns the whole transaction (bounded) when the database asks for it (Aborted).
  template <typename Fn>
  auto WriteTxn(Fn&& fn) -> decltype(fn(std::declval<Connection&>())) {
    using R = decltype(fn(std::declval<Connection&>()));
    Status last;
    for (int attempt = 0; attempt < kMaxTxnAttempts; ++attempt) {
      auto lease = pool_.Acquire();
      if (!lease.ok()) return R(lease.status());
      Connection& conn = **lease;
      Status begin = conn.BeginWrite();
      if (!begin.ok()) {
        if (Retriable(begin)) {
          last = begin;
          continue;
        }
        return R(begin);
      }
      R result = fn(conn);
      if (!result.ok()) {
        (void)conn.Rollback();
        if (Retriable(result.status())) {
          last = result.status();
          continue;
        }
        return result;
      }
      Status commit = conn.Commit();
      if (!commit.ok()) {
        (void)conn.Rollback();
        if (Retriable(commit)) {
          last = commit;
          continue;
        }
        return R(commit);
      }
      return result;
    }
    return R(last.WithContext("transaction kept conflicting"));
  }

  StatusOr<Result> Read(std::string_view sql, std::initializer_list<Value> params) {
    return ReadSpan(sql, std::span<const Value>(params.begin(), params.size()));
  }

  StatusOr<Result> ReadSpan(std::string_view sql, std::span<const Value> params) {
    KG_ASSIGN_OR_RETURN(ConnectionPool::Lease lease, pool_.Acquire());
    return lease->Exec(sql, params);
  }

  // The cap of `key` that applies to `model`: its own, else "*", else none.
  StatusOr<std::optional<std::string>> FindCap(Connection& c, int64_t key,
                                               const std::string& model) {
    KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                       "SELECT model FROM client_key_caps WHERE client_key_id = ?"
                                       " AND (model = ? OR model = '*')",
                                       {key, model}));
    std::optional<std::string> found;
    for (const Row& row : r.rows) {
      if (row.Str(0) == model || !found) found = row.Str(0);
    }
    return found;
  }

  // Gives `amount` back to the payer's balance (when limited) and the key's cap (when capped).
  Status GiveBack(Connection& c, int64_t key, int64_t payer, const std::optional<std::string>& cap,
                  int64_t amount) {
    if (amount == 0) return OkStatus();
    KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                       "UPDATE client_keys SET credits_micros = credits_micros"
                                       " + ? WHERE id = ? AND credits_micros IS NOT NULL",
                                       {amount, payer}));
    if (cap) {
      KG_ASSIGN_OR_RETURN(Result r2, Exec(c,
                                          "UPDATE client_key_caps SET spent_micros = spent_micros"
                                          " - ? WHERE client_key_id = ? AND model = ?",
                                          {amount, key, *cap}));
    }
    return OkStatus();
  }

  // Settles one inserted usage record (see InsertUsage): its reservation, if the sweep did not
  // release it, is replaced by the actual cost; without one, the cost is taken outright.
  Status Settle(Connection& c, const UsageRecord& u) {
    if (!u.client_key_id) return OkStatus();
    KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                       "DELETE FROM credit_reservations WHERE request_id = ?"
                                       " RETURNING payer_id, cap_model, amount_micros",
                                       {u.request_id}));
    int64_t payer = 0, reserved = 0;
    std::optional<std::string> cap;
    if (!r.rows.empty()) {
      payer = r.rows[0].Int(0);
      if (!r.rows[0].IsNull(1)) cap = r.rows[0].Str(1);
      reserved = r.rows[0].Int(2);
    } else {
      KG_ASSIGN_OR_RETURN(Result k, Exec(c, "SELECT parent_id FROM client_keys WHERE id = ?",
                                         {*u.client_key_id}));
      if (k.rows.empty()) return OkStatus();  // the key was deleted: its record stays
      payer = k.rows[0].IsNull(0) ? *u.client_key_id : k.rows[0].Int(0);
      KG_ASSIGN_OR_RETURN(cap, FindCap(c, *u.client_key_id, u.model));
    }
    KG_RETURN_IF_ERROR(GiveBack(c, *u.client_key_id, payer, cap, reserved - u.cost_micros));
    // Tokens count against the key's TPM in the minute they are settled in.
    const int64_t tokens = u.input_tokens + u.output_tokens;
    if (tokens > 0) {
      KG_ASSIGN_OR_RETURN(Result t, Exec(c,
                                         "SELECT tpm_limit FROM client_keys WHERE id = ?",
                                         {*u.client_key_id}));
      if (!t.rows.empty() && !t.rows[0].IsNull(0)) {
        KG_ASSIGN_OR_RETURN(Result w, Exec(c,
                                           "INSERT INTO rate_windows (client_key_id, minute,"
                                           " requests, tokens) VALUES (?, ?, 0, ?)"
                                           " ON CONFLICT (client_key_id, minute) DO UPDATE SET"
                                           " tokens = rate_windows.tokens + excluded.tokens",
                                           {*u.client_key_id, clock_.NowMs() / 60'000, tokens}));
      }
    }
    return OkStatus();
  }

  // Sets a cap (keeping what was spent under it).
  Status UpsertCap(Connection& c, int64_t client_key_id, const ModelCap& cap) {
    KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                       "INSERT INTO client_key_caps (client_key_id, model,"
                                       " cap_micros, spent_micros) VALUES (?, ?, ?, 0)"
                                       " ON CONFLICT (client_key_id, model) DO UPDATE SET"
                                       " cap_micros = excluded.cap_micros",
                                       {client_key_id, cap.model, cap.cap_micros}));
    return OkStatus();
  }

  Status RequirePool(Connection& c, int64_t pool_id) {
    KG_ASSIGN_OR_RETURN(Result r, Exec(c, "SELECT id FROM pools WHERE id = ?", {pool_id}));
    if (r.rows.empty()) return NotFoundError("pool " + std::to_string(pool_id) + " does not exist");
    return OkStatus();
  }

  Status RequireProxy(Connection& c, int64_t proxy_id) {
    KG_ASSIGN_OR_RETURN(Result r, Exec(c, "SELECT id FROM egress_proxies WHERE id = ?", {proxy_id}));
    if (r.rows.empty()) {
      return NotFoundError("proxy " + std::to_string(proxy_id) + " does not exist");
    }
    return OkStatus();
  }

  StatusOr<int64_t> KeyPool(Connection& c, int64_t key_id) {
    KG_ASSIGN_OR_RETURN(Result r, Exec(c, "SELECT pool_id FROM upstream_keys WHERE id = ?", {key_id}));
    if (r.rows.empty()) return NotFoundError("key " + std::to_string(key_id) + " does not exist");
    return r.rows[0].Int(0);
  }

  // For state changes that matched no row: false when the key exists (wrong state), else NotFound.
  StatusOr<bool> ExistsOrNotFound(Connection& c, int64_t key_id) {
    KG_ASSIGN_OR_RETURN(int64_t pool, KeyPool(c, key_id));
    (void)pool;
    return false;
  }

  // Every change to a pool's keys or bindings bumps its version, inside the same transaction, so
  // instances polling versions (or listening, on PostgreSQL) never miss a change.
  Status BumpPoolVersion(Connection& c, int64_t pool_id) {
    KG_ASSIGN_OR_RETURN(Result r, Exec(c,
                                       "UPDATE pools SET version = version + 1, updated_at = ?"
                                       " WHERE id = ? RETURNING version",
                                       {clock_.NowMs(), pool_id}));
    if (r.rows.empty()) return NotFoundError("pool " + std::to_string(pool_id) + " does not exist");
    if (dialect_ == Dialect::kPostgres) {
      // Delivered at commit, and only if the transaction commits.
      KG_ASSIGN_OR_RETURN(
          Result n, Exec(c, "SELECT pg_notify('keygate_pool_version', ?)",
                         {std::to_string(pool_id) + ":" + std::to_string(r.rows[0].Int(0))}));
    }
    return OkStatus();
  }

  // Moves the failed key's bindings to its replacement. A proxy the replacement is already bound
  // to keeps the replacement's binding; the failed key's duplicate is dropped.
  Status MoveBindings(Connection& c, int64_t from, int64_t to) {
    KG_ASSIGN_OR_RETURN(
        Result moved,
        Exec(c,
             "UPDATE key_proxy_bindings SET key_id = ? WHERE key_id = ? AND proxy_id NOT IN"
             " (SELECT proxy_id FROM key_proxy_bindings WHERE key_id = ?)",
             {to, from, to}));
    KG_ASSIGN_OR_RETURN(Result dropped,
                        Exec(c, "DELETE FROM key_proxy_bindings WHERE key_id = ?", {from}));
    return OkStatus();
  }

  StatusOr<int64_t> InsertRotation(Connection& c, int64_t pool_id, int64_t failed,
                                   std::optional<int64_t> new_id, std::string_view reason,
                                   std::string_view outcome, std::string_view actor, int64_t now) {
    KG_ASSIGN_OR_RETURN(
        Result r,
        Exec(c,
             "INSERT INTO rotations (pool_id, failed_key_id, new_key_id, reason, outcome, actor,"
             " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
             {pool_id, failed, OptInt(new_id), std::string(reason), std::string(outcome),
              std::string(actor), now}));
    if (r.rows.empty()) return InternalError("rotation record insert returned no id");
    return r.rows[0].Int(0);
  }

  StatusOr<UpstreamKey> KeyFromRow(const Row& r, bool with_secret) {
    UpstreamKey k;
    k.id = r.Int(0);
    k.pool_id = r.Int(1);
    if (with_secret) {
      auto secret = secrets_->Open(r.Str(2), kUpstreamKeyContext);
      if (!secret.ok()) return secret.status().WithContext("key " + std::to_string(k.id));
      k.secret = std::move(secret).value();
    }
    k.masked = r.Str(3);
    k.fingerprint = r.Str(4);
    k.state = ParseKeyState(r.Str(5)).value_or(KeyState::kRetired);
    k.priority = r.Int(6);
    k.budget_micros = r.OptInt(7);
    k.spend_micros = r.Int(8);
    k.cooldown_until_ms = r.Int(9);
    k.last_error = r.Str(10);
    k.label = r.Str(11);
    k.created_at_ms = r.Int(12);
    k.updated_at_ms = r.Int(13);
    k.activated_at_ms = r.OptInt(14);
    k.retired_at_ms = r.OptInt(15);
    k.replaced_by = r.OptInt(16);
    k.replaces = r.OptInt(17);
    return k;
  }

  StatusOr<Proxy> ProxyFromRow(const Row& r, bool with_secret) {
    Proxy p;
    p.id = r.Int(0);
    p.url.scheme = r.Str(1);
    p.url.host = r.Str(2);
    p.url.port = static_cast<uint16_t>(r.Int(3));
    p.url.username = r.Str(4);
    p.has_password = !r.IsNull(5);
    if (with_secret && p.has_password) {
      auto pw = secrets_->Open(r.Str(5), kProxyPasswordContext);
      if (!pw.ok()) return pw.status().WithContext("proxy " + std::to_string(p.id));
      p.url.password = std::move(pw).value();
    }
    p.healthy = r.Int(6) != 0;
    p.last_error = r.Str(7);
    p.checked_at_ms = r.Int(8);
    p.created_at_ms = r.Int(9);
    return p;
  }

  // A store remembers which master key created it (a keyed hash, not the key). Opening it with
  // another key fails here, before anything could be sealed with the wrong key.
  Status CheckMasterKey(Connection& c, bool read_only) {
    const std::string expected = secrets_->KeyCheck();
    KG_ASSIGN_OR_RETURN(
        Result r, Exec(c, "SELECT value FROM keygate_meta WHERE name = 'master_key_check'", {}));
    if (r.rows.empty()) {
      if (read_only) return OkStatus();
      KG_RETURN_IF_ERROR(c.BeginWrite());
      auto ins = Exec(c,
                      "INSERT INTO keygate_meta (name, value) VALUES ('master_key_check', ?)"
                      " ON CONFLICT (name) DO NOTHING",
                      {expected});
      if (!ins.ok()) {
        (void)c.Rollback();
        return ins.status();
      }
      KG_RETURN_IF_ERROR(c.Commit());
      // Another process may have won the insert with another key: read back what is stored.
      KG_ASSIGN_OR_RETURN(
          r, Exec(c, "SELECT value FROM keygate_meta WHERE name = 'master_key_check'", {}));
      if (r.rows.empty()) return InternalError("master key check vanished");
    }
    if (r.rows[0].Str(0) != expected) {
      return FailedPreconditionError(
          "the master key does not match the one this store was created with "
          "(check KEYGATE_MASTER_KEY or the master key file)");
    }
    return OkStatus();
  }

  std::unique_ptr<Driver> driver_;
  const Dialect dialect_;
  std::shared_ptr<const SecretBox> secrets_;
  const Clock& clock_;
  ConnectionPool pool_;
  int64_t schema_version_ = 0;
};

}  // namespace

StatusOr<std::unique_ptr<Store>> NewSqlStore(std::unique_ptr<Driver> driver,
                                             const StoreOptions& options) {
  if (!options.secrets) return InvalidArgumentError("store opened without a master key");
  auto store = std::make_unique<SqlStore>(std::move(driver), options);
  KG_RETURN_IF_ERROR(store->Open(options.read_only));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace keygate::store::sql
