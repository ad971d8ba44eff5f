#include "store/migrations.h"

#include <string>
#include <string_view>
#include <utility>

namespace keygate::store {

namespace {

struct Migration {
  int64_t version;
  const char* name;
  // `{pk}` becomes the dialect's auto-increment 64-bit primary key; `{id}` a 64-bit primary key
  // the writer gives (SQLite: INTEGER PRIMARY KEY, the rowid itself, so the table is one b-tree
  // rather than a table and an index beside it).
  const char* sql;
};

// Append only. Never edit a migration that has shipped: add a new one.
constexpr Migration kMigrations[] = {
    {1, "initial schema", R"SQL(
CREATE TABLE keygate_meta (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE pools (
  id         {pk},
  name       TEXT NOT NULL UNIQUE,
  provider   TEXT NOT NULL,
  settings   TEXT NOT NULL DEFAULT '{}',
  version    BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE upstream_keys (
  id               {pk},
  pool_id          BIGINT NOT NULL REFERENCES pools(id),
  secret_sealed    TEXT NOT NULL,
  fingerprint      TEXT NOT NULL UNIQUE,
  masked           TEXT NOT NULL,
  state            TEXT NOT NULL
                   CHECK (state IN ('active','backup','cooling','exhausted','retired')),
  priority         BIGINT NOT NULL DEFAULT 0,
  budget_micros    BIGINT,
  spend_micros     BIGINT NOT NULL DEFAULT 0,
  spend_checked_at BIGINT,
  cooldown_until   BIGINT NOT NULL DEFAULT 0,
  last_error       TEXT NOT NULL DEFAULT '',
  label            TEXT NOT NULL DEFAULT '',
  created_at       BIGINT NOT NULL,
  updated_at       BIGINT NOT NULL,
  activated_at     BIGINT,
  retired_at       BIGINT,
  replaced_by      BIGINT,
  replaces         BIGINT
);
CREATE INDEX upstream_keys_pool_state ON upstream_keys (pool_id, state, priority);
CREATE TABLE egress_proxies (
  id              {pk},
  scheme          TEXT NOT NULL CHECK (scheme IN ('http','https','socks5','socks5h')),
  host            TEXT NOT NULL,
  port            BIGINT NOT NULL,
  username        TEXT NOT NULL DEFAULT '',
  password_sealed TEXT,
  display_url     TEXT NOT NULL UNIQUE,
  healthy         BIGINT NOT NULL DEFAULT 1,
  last_error      TEXT NOT NULL DEFAULT '',
  checked_at      BIGINT NOT NULL DEFAULT 0,
  created_at      BIGINT NOT NULL,
  updated_at      BIGINT NOT NULL
);
CREATE TABLE key_proxy_bindings (
  id         {pk},
  key_id     BIGINT NOT NULL REFERENCES upstream_keys(id),
  proxy_id   BIGINT NOT NULL REFERENCES egress_proxies(id),
  priority   BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  UNIQUE (key_id, proxy_id)
);
CREATE INDEX key_proxy_bindings_proxy ON key_proxy_bindings (proxy_id);
CREATE TABLE rotations (
  id            {pk},
  pool_id       BIGINT NOT NULL,
  failed_key_id BIGINT NOT NULL,
  new_key_id    BIGINT,
  reason        TEXT NOT NULL,
  outcome       TEXT NOT NULL CHECK (outcome IN ('rotated','no_backup')),
  actor         TEXT NOT NULL DEFAULT '',
  created_at    BIGINT NOT NULL
);
CREATE INDEX rotations_pool ON rotations (pool_id, id);
CREATE INDEX rotations_failed_key ON rotations (failed_key_id);
CREATE TABLE spend_records (
  id            {pk},
  key_id        BIGINT NOT NULL,
  pool_id       BIGINT NOT NULL,
  spend_micros  BIGINT NOT NULL,
  budget_micros BIGINT,
  action        TEXT NOT NULL,
  reason        TEXT NOT NULL DEFAULT '',
  new_key_id    BIGINT,
  error         TEXT NOT NULL DEFAULT '',
  created_at    BIGINT NOT NULL
);
CREATE INDEX spend_records_key ON spend_records (key_id, id);
CREATE TABLE client_keys (
  id         {pk},
  name       TEXT NOT NULL,
  key_hash   TEXT NOT NULL UNIQUE,
  hint       TEXT NOT NULL,
  enabled    BIGINT NOT NULL DEFAULT 1,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE usage_records (
  id                 {pk},
  request_id         TEXT NOT NULL UNIQUE,
  client_key_id      BIGINT,
  upstream_key_id    BIGINT,
  pool_id            BIGINT,
  model              TEXT NOT NULL,
  input_tokens       BIGINT NOT NULL DEFAULT 0,
  output_tokens      BIGINT NOT NULL DEFAULT 0,
  cache_read_tokens  BIGINT NOT NULL DEFAULT 0,
  cache_write_tokens BIGINT NOT NULL DEFAULT 0,
  cost_micros        BIGINT NOT NULL DEFAULT 0,
  latency_ms         BIGINT NOT NULL DEFAULT 0,
  ttfb_ms            BIGINT NOT NULL DEFAULT 0,
  status             BIGINT NOT NULL DEFAULT 0,
  attempts           BIGINT NOT NULL DEFAULT 1,
  created_at         BIGINT NOT NULL
);
CREATE INDEX usage_records_created ON usage_records (created_at);
CREATE INDEX usage_records_client ON usage_records (client_key_id, created_at);
)SQL"},
    // Rotate claims the backup first in (priority DESC, id) order. The index of migration 1,
    // (pool_id, state, priority), does not give that order, so both databases sorted every
    // backup of the pool on each rotation, inside the write transaction: at 40 000 backups,
    // 11 ms per rotation on SQLite (enough to starve 16 processes into "database is locked")
    // and 30-45 ms on PostgreSQL. This index gives the order, so the claim reads one entry. It
    // replaces the old one, which is its prefix: left in place, PostgreSQL without statistics
    // for a new pool (before autovacuum analyzes it) kept choosing the old index and a sort.
    {2, "index for the backup claim", R"SQL(
DROP INDEX upstream_keys_pool_state;
CREATE INDEX upstream_keys_claim ON upstream_keys (pool_id, state, priority DESC, id);
)SQL"},
    // Leader election across instances (the spend checker): a row per lease, taken with one
    // conditional upsert (Store::TryAcquireLease). The usage index served the ledger spend probe
    // (then a sum of one key's costs since its activation; migration 6 replaced both).
    {3, "leases and usage by upstream key", R"SQL(
CREATE TABLE leases (
  name       TEXT PRIMARY KEY,
  holder     TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX usage_records_upstream_key ON usage_records (upstream_key_id, created_at);
)SQL"},
    // Client keys as operators sell them (docs/design.md, "Client keys and credits"): balance,
    // allowed models, rate limits, expiry, sub-keys spending a parent's credits under per-model
    // caps; credit reservations (one row per request in flight, owned by an instance and
    // expiring, so a sweep releases those of a dead process); per-minute request/token counters
    // for the rate limits.
    {4, "client key credits, limits, reservations", R"SQL(
ALTER TABLE client_keys ADD COLUMN parent_id BIGINT;
ALTER TABLE client_keys ADD COLUMN credits_micros BIGINT;
ALTER TABLE client_keys ADD COLUMN allowed_models TEXT NOT NULL DEFAULT '';
ALTER TABLE client_keys ADD COLUMN rpm_limit BIGINT;
ALTER TABLE client_keys ADD COLUMN tpm_limit BIGINT;
ALTER TABLE client_keys ADD COLUMN concurrency_limit BIGINT;
ALTER TABLE client_keys ADD COLUMN expires_at BIGINT;
CREATE INDEX client_keys_parent ON client_keys (parent_id);
CREATE TABLE client_key_caps (
  client_key_id BIGINT NOT NULL,
  model         TEXT NOT NULL,
  cap_micros    BIGINT NOT NULL,
  spent_micros  BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (client_key_id, model)
);
CREATE TABLE credit_reservations (
  id             {pk},
  request_id     TEXT NOT NULL UNIQUE,
  client_key_id  BIGINT NOT NULL,
  payer_id       BIGINT NOT NULL,
  cap_model      TEXT,
  amount_micros  BIGINT NOT NULL,
  owner          TEXT NOT NULL,
  expires_at     BIGINT NOT NULL,
  created_at     BIGINT NOT NULL
);
CREATE INDEX credit_reservations_expiry ON credit_reservations (expires_at);
CREATE INDEX credit_reservations_client ON credit_reservations (client_key_id);
CREATE TABLE rate_windows (
  client_key_id BIGINT NOT NULL,
  minute        BIGINT NOT NULL,
  requests      BIGINT NOT NULL DEFAULT 0,
  tokens        BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (client_key_id, minute)
);
)SQL"},
    // The admin API: operators' keys (hash only) and the audit log of what they did.
    {5, "admin keys and audit log", R"SQL(
CREATE TABLE admin_keys (
  id         {pk},
  name       TEXT NOT NULL UNIQUE,
  key_hash   TEXT NOT NULL UNIQUE,
  hint       TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE TABLE audit_log (
  id         {pk},
  admin      TEXT NOT NULL,
  action     TEXT NOT NULL,
  target     TEXT NOT NULL,
  result     TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
)SQL"},
    // The ledger spend probe as a running total instead of a sum over an index (issue 7). The
    // index of migration 3 put each usage record on its key's leaf of (upstream_key_id,
    // created_at): with a 1,000-key pool a 256-record write transaction dirtied ~220 pages of it
    // (SQLite: ~2 pwrite64 and ~1 pread64 per request, in WAL writes and checkpoints). Now
    // InsertUsage adds each inserted record's cost to its key's row of upstream_key_usage, one
    // upsert per key and batch, and activating a key copies that total into ledger_base_micros:
    // the ledger spend is total - base (Store::LedgerSpendMicros). The backfill keeps the answer
    // of existing stores: the base is what the key's records created before its activation (or
    // its creation, when never activated) cost, as the old sum left them out.
    {6, "running usage totals per upstream key", R"SQL(
CREATE TABLE upstream_key_usage (
  upstream_key_id {id},
  cost_micros     BIGINT NOT NULL DEFAULT 0
);
ALTER TABLE upstream_keys ADD COLUMN ledger_base_micros BIGINT NOT NULL DEFAULT 0;
INSERT INTO upstream_key_usage (upstream_key_id, cost_micros)
  SELECT upstream_key_id, SUM(cost_micros) FROM usage_records
  WHERE upstream_key_id IS NOT NULL GROUP BY upstream_key_id;
UPDATE upstream_keys SET ledger_base_micros = COALESCE((
  SELECT SUM(u.cost_micros) FROM usage_records u WHERE u.upstream_key_id = upstream_keys.id
    AND u.created_at < COALESCE(upstream_keys.activated_at, upstream_keys.created_at)), 0);
DROP INDEX usage_records_upstream_key;
)SQL"},
};

std::string Render(const Migration& m, sql::Dialect dialect) {
  const bool sqlite = dialect == sql::Dialect::kSqlite;
  const std::pair<std::string_view, std::string_view> placeholders[] = {
      {"{pk}", sqlite ? "INTEGER PRIMARY KEY AUTOINCREMENT" : "BIGSERIAL PRIMARY KEY"},
      {"{id}", sqlite ? "INTEGER PRIMARY KEY" : "BIGINT PRIMARY KEY"}};
  std::string out = m.sql;
  for (const auto& [from, to] : placeholders) {
    for (size_t pos = out.find(from); pos != std::string::npos; pos = out.find(from, pos)) {
      out.replace(pos, from.size(), to);
      pos += to.size();
    }
  }
  return out;
}

constexpr const char* kBootstrap =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)";

// Returns the applied version, or 0 when the bookkeeping table does not exist yet.
StatusOr<int64_t> CurrentVersion(sql::Connection& conn, sql::Dialect dialect) {
  const char* exists_sql =
      dialect == sql::Dialect::kSqlite
          ? "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='schema_migrations'"
          : "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_name = 'schema_migrations'";
  KG_ASSIGN_OR_RETURN(sql::Result exists, conn.Exec(exists_sql, {}));
  if (exists.rows.empty() || exists.rows[0].Int(0) == 0) return int64_t{0};
  KG_ASSIGN_OR_RETURN(sql::Result r,
                      conn.Exec("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", {}));
  return r.rows.empty() ? int64_t{0} : r.rows[0].Int(0);
}

Status TooNew(int64_t found) {
  return FailedPreconditionError("the store has schema version " + std::to_string(found) +
                                 ", newer than this keygate understands (" +
                                 std::to_string(LatestSchemaVersion()) +
                                 "); upgrade keygate before using this store");
}

// Brings the schema up to `target` (<= LatestSchemaVersion()); see ApplyMigrations.
StatusOr<int64_t> MigrateTo(sql::Driver& driver, sql::Connection& conn, const Clock& clock,
                            bool read_only, int64_t target) {
  // Fast path without taking the write lock: a store that is up to date (or read-only).
  KG_ASSIGN_OR_RETURN(int64_t current, CurrentVersion(conn, driver.dialect()));
  if (current > LatestSchemaVersion()) return TooNew(current);
  if (current >= target) return current;
  if (read_only) {
    return FailedPreconditionError("the store needs migrating (schema version " +
                                   std::to_string(current) + " of " +
                                   std::to_string(LatestSchemaVersion()) +
                                   ") but was opened read-only");
  }

  KG_RETURN_IF_ERROR(conn.BeginWrite());
  auto run = [&]() -> StatusOr<int64_t> {
    KG_RETURN_IF_ERROR(driver.LockForMigration(conn));
    KG_RETURN_IF_ERROR(conn.ExecScript(kBootstrap));
    // Another process may have migrated while we waited for the lock: read again.
    KG_ASSIGN_OR_RETURN(int64_t version, CurrentVersion(conn, driver.dialect()));
    if (version > LatestSchemaVersion()) return TooNew(version);
    for (const Migration& m : kMigrations) {
      if (m.version <= version || m.version > target) continue;
      KG_RETURN_IF_ERROR(conn.ExecScript(Render(m, driver.dialect()))
                             .WithContext("migration " + std::to_string(m.version)));
      const sql::Value params[] = {m.version, std::string(m.name), clock.NowMs()};
      KG_ASSIGN_OR_RETURN(
          sql::Result r,
          conn.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    params));
      version = m.version;
    }
    return version;
  };
  StatusOr<int64_t> result = run();
  if (!result.ok()) {
    (void)conn.Rollback();
    return result;
  }
  KG_RETURN_IF_ERROR(conn.Commit());
  return result;
}

}  // namespace

int64_t LatestSchemaVersion() { return kMigrations[std::size(kMigrations) - 1].version; }

StatusOr<int64_t> ApplyMigrations(sql::Driver& driver, sql::Connection& conn, const Clock& clock,
                                  bool read_only) {
  return MigrateTo(driver, conn, clock, read_only, LatestSchemaVersion());
}

StatusOr<int64_t> ApplyMigrationsUpToForTest(sql::Driver& driver, sql::Connection& conn,
                                             const Clock& clock, int64_t version) {
  if (version < 1 || version > LatestSchemaVersion()) {
    return InvalidArgumentError("no schema version " + std::to_string(version));
  }
  return MigrateTo(driver, conn, clock, /*read_only=*/false, version);
}

}  // namespace keygate::store
