#include "tests/race/pool_invariants.h"

#include <algorithm>
#include <memory>
#include <unordered_map>

#include "store/postgres/pg_driver.h"
#include "store/sql/sql.h"
#include "store/sqlite/sqlite_driver.h"

namespace keygate::testing {

namespace {

using store::KeyState;

std::string Id(int64_t id) { return std::to_string(id); }

class Violations {
 public:
  void Add(std::string line) { lines_.push_back(std::move(line)); }
  std::vector<std::string> Take() { return std::move(lines_); }

 private:
  std::vector<std::string> lines_;
};

// Keys by id; reports duplicate ids.
std::unordered_map<int64_t, const KeyRow*> IndexKeys(const PoolSnapshot& snap, Violations& out) {
  std::unordered_map<int64_t, const KeyRow*> by_id;
  for (const KeyRow& k : snap.keys) {
    if (!by_id.emplace(k.id, &k).second) out.Add("key " + Id(k.id) + " appears twice");
  }
  return by_id;
}

void CheckConservation(const PoolSnapshot& snap, const PoolExpectation& expect,
                       const std::unordered_map<int64_t, const KeyRow*>& by_id, Violations& out) {
  for (int64_t id : expect.imported) {
    if (!by_id.contains(id)) out.Add("key " + Id(id) + " was imported and is gone (lost)");
  }
  for (const KeyRow& k : snap.keys) {
    if (!expect.imported.contains(k.id)) out.Add("key " + Id(k.id) + " was never imported");
    if (!store::ParseKeyState(k.state)) {
      out.Add("key " + Id(k.id) + " is in no known state ('" + k.state + "')");
    }
  }
  store::StateCounts c = snap.Counts();
  if (c.total() != static_cast<int64_t>(expect.imported.size())) {
    out.Add("active+backup+cooling+exhausted+retired = " + Id(c.total()) + ", imported " +
            Id(static_cast<int64_t>(expect.imported.size())));
  }
  // Every rotation keeps the number of serving slots; only NoBackup turns one into `exhausted`.
  int64_t slots = c.active + c.cooling + c.exhausted;
  if (slots != static_cast<int64_t>(expect.initial_active.size())) {
    out.Add("active+cooling+exhausted = " + Id(slots) + ", expected the initial active count " +
            Id(static_cast<int64_t>(expect.initial_active.size())));
  }
  if (c.exhausted > 0 && c.backup > 0) {
    out.Add(Id(c.exhausted) + " key(s) exhausted (NoBackup) while " + Id(c.backup) +
            " backup(s) remain: the active count dropped with backups available");
  }
}

void CheckRotations(const PoolSnapshot& snap, const PoolExpectation& expect,
                    const std::unordered_map<int64_t, const KeyRow*>& by_id, Violations& out) {
  std::map<int64_t, int> records_of_failed;    // failed key -> number of records
  std::map<int64_t, int> records_of_new;       // new key -> number of records
  std::map<int64_t, const RotationRow*> rotated_of_failed;
  int64_t rotated_records = 0, no_backup_records = 0;
  for (const RotationRow& r : snap.rotations) {
    ++records_of_failed[r.failed_key_id];
    auto failed_it = by_id.find(r.failed_key_id);
    const KeyRow* failed = failed_it == by_id.end() ? nullptr : failed_it->second;
    if (failed == nullptr) {
      out.Add("rotation " + Id(r.id) + " names unknown failed key " + Id(r.failed_key_id));
      continue;
    }
    if (r.outcome == "rotated") {
      ++rotated_records;
      rotated_of_failed[r.failed_key_id] = &r;
      if (!r.new_key_id) {
        out.Add("rotation " + Id(r.id) + " is `rotated` without a new key");
        continue;
      }
      if (++records_of_new[*r.new_key_id] > 1) {
        out.Add("backup " + Id(*r.new_key_id) + " was activated by more than one rotation");
      }
      if (failed->state != "retired" || failed->replaced_by != r.new_key_id) {
        out.Add("rotation " + Id(r.id) + ": failed key " + Id(failed->id) + " is '" +
                failed->state + "' with replaced_by " +
                (failed->replaced_by ? Id(*failed->replaced_by) : "null") + ", expected retired/" +
                Id(*r.new_key_id));
      }
      auto new_it = by_id.find(*r.new_key_id);
      if (new_it == by_id.end()) {
        out.Add("rotation " + Id(r.id) + " names unknown new key " + Id(*r.new_key_id));
        continue;
      }
      const KeyRow& repl = *new_it->second;
      if (repl.replaces != r.failed_key_id) {
        out.Add("replacement " + Id(repl.id) + " does not point back to " + Id(r.failed_key_id));
      }
      // Active, or rotated/exhausted/cooled later; never back in the reserve.
      if (repl.state == "backup") {
        out.Add("replacement " + Id(repl.id) + " of rotation " + Id(r.id) + " is still a backup");
      }
    } else if (r.outcome == "no_backup") {
      ++no_backup_records;
      if (r.new_key_id) out.Add("no_backup rotation " + Id(r.id) + " has a new key");
      if (failed->state != "exhausted") {
        out.Add("no_backup rotation " + Id(r.id) + ": key " + Id(failed->id) + " is '" +
                failed->state + "', expected exhausted");
      }
    } else {
      out.Add("rotation " + Id(r.id) + " has unknown outcome '" + r.outcome + "'");
    }
  }
  for (const auto& [key, n] : records_of_failed) {
    if (n > 1) out.Add("key " + Id(key) + " has " + Id(n) + " rotation records");
  }

  store::StateCounts c = snap.Counts();
  if (rotated_records != c.retired) {
    out.Add(Id(rotated_records) + " `rotated` records but " + Id(c.retired) + " retired keys");
  }
  if (no_backup_records != c.exhausted) {
    out.Add(Id(no_backup_records) + " `no_backup` records but " + Id(c.exhausted) +
            " exhausted keys");
  }
  for (const KeyRow& k : snap.keys) {
    if (k.state == "retired") {
      if (!k.replaced_by) out.Add("retired key " + Id(k.id) + " has no replacement");
      if (!rotated_of_failed.contains(k.id)) {
        out.Add("retired key " + Id(k.id) + " has no `rotated` record");
      }
    } else if (k.state == "backup") {
      if (k.replaced_by || k.replaces || records_of_new.contains(k.id)) {
        out.Add("backup " + Id(k.id) + " carries rotation links");
      }
    } else if (k.state == "active" && !expect.initial_active.contains(k.id)) {
      // A key that became active after the import did so through exactly one rotation.
      if (!k.replaces || records_of_new[k.id] != 1) {
        out.Add("active key " + Id(k.id) + " was activated without a rotation record");
      }
    }
    if (k.replaces) {
      auto it = by_id.find(*k.replaces);
      if (it == by_id.end() || it->second->replaced_by != k.id) {
        out.Add("key " + Id(k.id) + " replaces " + Id(*k.replaces) +
                ", which does not name it as replaced_by");
      }
    }
  }
}

void CheckBindings(const PoolSnapshot& snap, const PoolExpectation& expect,
                   const std::unordered_map<int64_t, const KeyRow*>& by_id, Violations& out) {
  std::map<int64_t, std::vector<int64_t>> keys_of_proxy;
  for (const BindingRow& b : snap.bindings) {
    auto it = by_id.find(b.key_id);
    if (it == by_id.end()) {
      out.Add("binding to proxy " + Id(b.proxy_id) + " names missing key " + Id(b.key_id));
      continue;
    }
    const std::string& state = it->second->state;
    if (state == "retired" || state == "backup") {
      out.Add("binding to proxy " + Id(b.proxy_id) + " stayed on " + state + " key " +
              Id(b.key_id));
    }
    keys_of_proxy[b.proxy_id].push_back(b.key_id);
  }
  for (const auto& [proxy, initial_key] : expect.initial_key_of_proxy) {
    // Follow the replacement chain from the initial key to the key that serves today.
    int64_t key = initial_key;
    size_t steps = 0;
    while (true) {
      auto it = by_id.find(key);
      if (it == by_id.end() || !it->second->replaced_by) break;
      key = *it->second->replaced_by;
      if (++steps > snap.keys.size()) {
        out.Add("replacement chain from key " + Id(initial_key) + " loops");
        break;
      }
    }
    const std::vector<int64_t>& bound = keys_of_proxy[proxy];
    if (bound.size() != 1 || bound[0] != key) {
      std::string got;
      for (int64_t k : bound) got += " " + Id(k);
      out.Add("proxy " + Id(proxy) + " of initial key " + Id(initial_key) +
              " should be bound to the end of its chain, key " + Id(key) + "; bound to:" +
              (got.empty() ? " nothing" : got));
    }
  }
}

StatusOr<PoolSnapshot> ReadRawSnapshotOn(store::sql::Connection& conn, int64_t pool_id) {
  using store::sql::Value;
  PoolSnapshot snap;
  const Value params[] = {pool_id};
  KG_ASSIGN_OR_RETURN(
      store::sql::Result keys,
      conn.Exec("SELECT id, state, replaced_by, replaces FROM upstream_keys WHERE pool_id = ?"
                " ORDER BY id",
                params));
  for (const auto& row : keys.rows) {
    snap.keys.push_back({row.Int(0), row.Str(1), row.OptInt(2), row.OptInt(3)});
  }
  KG_ASSIGN_OR_RETURN(
      store::sql::Result rotations,
      conn.Exec("SELECT id, failed_key_id, new_key_id, outcome FROM rotations WHERE pool_id = ?"
                " ORDER BY id",
                params));
  for (const auto& row : rotations.rows) {
    snap.rotations.push_back({row.Int(0), row.Int(1), row.OptInt(2), row.Str(3)});
  }
  // All bindings whose key is in the pool or in no table at all (a dangling binding).
  KG_ASSIGN_OR_RETURN(
      store::sql::Result bindings,
      conn.Exec("SELECT b.key_id, b.proxy_id FROM key_proxy_bindings b"
                " LEFT JOIN upstream_keys k ON k.id = b.key_id"
                " WHERE k.pool_id = ? OR k.id IS NULL ORDER BY b.id",
                params));
  for (const auto& row : bindings.rows) snap.bindings.push_back({row.Int(0), row.Int(1)});
  return snap;
}

}  // namespace

store::StateCounts PoolSnapshot::Counts() const {
  store::StateCounts c;
  for (const KeyRow& k : keys) {
    if (auto s = store::ParseKeyState(k.state)) ++c[*s];
  }
  return c;
}

std::vector<std::string> CheckPool(const PoolSnapshot& snap, const PoolExpectation& expect) {
  Violations out;
  auto by_id = IndexKeys(snap, out);
  CheckConservation(snap, expect, by_id, out);
  CheckRotations(snap, expect, by_id, out);
  CheckBindings(snap, expect, by_id, out);
  return out.Take();
}

StatusOr<PoolSnapshot> ReadSnapshot(store::Store& store, int64_t pool_id) {
  PoolSnapshot snap;
  KG_ASSIGN_OR_RETURN(std::vector<store::UpstreamKey> keys, store.ListKeys({.pool_id = pool_id}));
  for (const auto& k : keys) {
    snap.keys.push_back(
        {k.id, std::string(store::KeyStateName(k.state)), k.replaced_by, k.replaces});
  }
  KG_ASSIGN_OR_RETURN(std::vector<store::RotationRecord> rotations,
                      store.ListRotations({.pool_id = pool_id, .limit = int64_t{1} << 40}));
  for (const auto& r : rotations) {
    snap.rotations.push_back({r.id, r.failed_key_id, r.new_key_id, r.outcome});
  }
  // The listing is newest first; snapshots are oldest first, like the raw reader's.
  std::sort(snap.rotations.begin(), snap.rotations.end(),
            [](const RotationRow& a, const RotationRow& b) { return a.id < b.id; });
  KG_ASSIGN_OR_RETURN(std::vector<store::Binding> bindings, store.ListBindings(pool_id));
  for (const auto& b : bindings) snap.bindings.push_back({b.key_id, b.proxy_id});
  return snap;
}

StatusOr<PoolSnapshot> ReadRawSnapshot(const std::string& url, int64_t pool_id) {
  const bool pg = store::IsPostgresUrl(url);
  std::unique_ptr<store::sql::Driver> driver =
      pg ? store::postgres::NewPostgresDriver(url)
         : store::sqlite::NewSqliteDriver(store::SqlitePath(url), /*busy_timeout_ms=*/10000,
                                          /*read_only=*/false);
  KG_ASSIGN_OR_RETURN(std::unique_ptr<store::sql::Connection> conn, driver->Connect());
  // SQLite (WAL): a deferred transaction takes its read snapshot at the first SELECT and keeps
  // it to COMMIT, beside the writer. PostgreSQL: REPEATABLE READ keeps the first statement's
  // snapshot for the whole transaction (READ COMMITTED would take one per statement).
  KG_RETURN_IF_ERROR(conn->ExecScript(pg ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                                         : "BEGIN DEFERRED"));
  StatusOr<PoolSnapshot> snap = ReadRawSnapshotOn(*conn, pool_id);
  (void)conn->Rollback();  // read only: nothing to keep
  return snap;
}

std::string JoinViolations(const std::vector<std::string>& v, size_t max) {
  std::string out;
  for (size_t i = 0; i < v.size() && i < max; ++i) out += "\n  - " + v[i];
  if (v.size() > max) out += "\n  … and " + std::to_string(v.size() - max) + " more";
  return out;
}

}  // namespace keygate::testing
